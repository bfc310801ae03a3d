//! The CKAN Action API v3, as DATA.GOV.HK (a CKAN site) serves it and as CKAN clients (`ckanapi`,
//! harvesters, scripts) expect it.
//!
//! Every action answers at `/api/3/action/{name}` and `/api/action/{name}` (the path `ckanapi`
//! calls), to GET with a query string and POST with a JSON body, never redirected. Answers use
//! CKAN's envelope `{"help", "success", "result"}`; errors use CKAN's shapes (`error.__type`:
//! `Validation Error` with 409 and messages per field, `Not Found Error` with 404, `Authorization
//! Error` with 403, `Bad Request` with 400), which clients turn back into their exceptions.
//!
//! The dictionaries (package, resource, organization, tag, group, activity) are built here from
//! the store's types: CKAN's wire shapes stay in this module. Themes are served as CKAN groups.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use citydata_model::{FieldType, LangText, Value};
use citydata_store::{
    Dataset, FacetField, Filter, Head, Op, Organization, Resource, RowBuffer, RowQuery, SearchQuery,
    SearchSort, SortKey, SqlLimits, Store, StoreError,
};
use serde_json::{json, Map, Value as Json};

use crate::AppState;

/// The CKAN version whose Action API this module follows.
const CKAN_API_VERSION: &str = "2.10";

/// The most rows `package_search` returns in one call, as in CKAN.
const MAX_SEARCH_ROWS: u64 = 1000;

/// Actions that change the catalogue: publishing goes through `citydata publish` (and later the
/// publish API with a token), so through this API they are refused as CKAN refuses an anonymous
/// caller.
const WRITE_ACTIONS: &[&str] = &[
    "package_create",
    "package_update",
    "package_patch",
    "package_delete",
    "resource_create",
    "resource_update",
    "resource_patch",
    "resource_delete",
    "organization_create",
    "organization_update",
    "organization_delete",
    "group_create",
    "group_update",
    "group_delete",
    "datastore_create",
    "datastore_upsert",
    "datastore_delete",
    "member_create",
    "user_create",
];

/// The parameters of one call: the query string and the JSON body, merged (the body wins).
pub(crate) struct Params(Map<String, Json>);

/// A CKAN error, turned into CKAN's error shape by [`CkanError::into_response`].
#[derive(Debug)]
pub(crate) enum CkanError {
    /// 404 `Not Found Error`.
    NotFound(String),
    /// 409 `Validation Error` with messages per field.
    Validation(BTreeMap<String, Vec<String>>),
    /// 403 `Authorization Error`.
    Authorization(String),
    /// 400 `Bad Request`.
    BadRequest(String),
    /// 409 `Search Query Error`: `q` or `fq` cannot be understood.
    SearchQuery(String),
    /// 503: the work could not be started now; try again shortly.
    Busy(String),
    /// 500, logged; the client gets a generic message.
    Internal(String),
}

impl CkanError {
    /// The error as one line of text, for answers outside CKAN's envelope.
    fn message(&self) -> String {
        match self {
            CkanError::Validation(fields) => {
                fields.iter().map(|(k, v)| format!("{k}: {}", v.join("; "))).collect::<Vec<_>>().join(", ")
            }
            CkanError::NotFound(m)
            | CkanError::Authorization(m)
            | CkanError::BadRequest(m)
            | CkanError::SearchQuery(m)
            | CkanError::Busy(m)
            | CkanError::Internal(m) => m.clone(),
        }
    }

    fn field(name: &str, message: impl Into<String>) -> Self {
        CkanError::Validation(BTreeMap::from([(name.to_owned(), vec![message.into()])]))
    }
}

impl From<StoreError> for CkanError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => CkanError::NotFound(format!("{what} not found")),
            StoreError::Invalid(m) => CkanError::BadRequest(m),
            StoreError::Forbidden(m) => CkanError::Authorization(m),
            StoreError::Busy(m) => CkanError::Busy(m),
            other => CkanError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for CkanError {
    fn from(e: tokio::task::JoinError) -> Self {
        CkanError::Internal(e.to_string())
    }
}

/// What a call answers: its result, or an error; `help` is added around either.
struct Answer {
    help: String,
    result: Result<Json, CkanError>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let (status, body) = match self.result {
            Ok(result) => (StatusCode::OK, json!({ "help": self.help, "success": true, "result": result })),
            Err(e) => {
                let (status, error) = match e {
                    CkanError::NotFound(m) => (
                        StatusCode::NOT_FOUND,
                        json!({ "__type": "Not Found Error", "message": format!("Not found: {m}") }),
                    ),
                    CkanError::Validation(fields) => {
                        let mut err: Map<String, Json> =
                            fields.into_iter().map(|(k, v)| (k, json!(v))).collect();
                        err.insert("__type".into(), json!("Validation Error"));
                        (StatusCode::CONFLICT, Json::Object(err))
                    }
                    CkanError::Authorization(m) => (
                        StatusCode::FORBIDDEN,
                        json!({ "__type": "Authorization Error", "message": format!("Access denied: {m}") }),
                    ),
                    CkanError::BadRequest(m) => (
                        StatusCode::BAD_REQUEST,
                        json!({ "__type": "Bad Request", "message": format!("Bad request - {m}") }),
                    ),
                    CkanError::SearchQuery(m) => (
                        StatusCode::CONFLICT,
                        json!({ "__type": "Search Query Error", "message": format!("Search Query is invalid: {m}") }),
                    ),
                    CkanError::Busy(m) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({ "__type": "Service Unavailable", "message": m }),
                    ),
                    CkanError::Internal(cause) => {
                        tracing::error!(%cause, "internal error in a CKAN action");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            json!({ "__type": "Internal Error", "message": "internal error; it has been logged" }),
                        )
                    }
                };
                (status, json!({ "help": self.help, "success": false, "error": error }))
            }
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
        resp
    }
}

/// The site's base URL as the client reached it (for `help` and resource URLs).
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let proto = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    format!("{proto}://{host}")
}

impl Params {
    fn parse(
        query: Option<&str>,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, CkanError> {
        let mut map = Map::new();
        for (k, v) in form_urlencoded(query.unwrap_or("")) {
            map.insert(k, Json::String(v));
        }
        if *method == Method::POST && !body.iter().all(u8::is_ascii_whitespace) {
            let form = headers
                .get(header::CONTENT_TYPE)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
            if form {
                for (k, v) in form_urlencoded(&String::from_utf8_lossy(body)) {
                    map.insert(k, Json::String(v));
                }
            } else {
                match serde_json::from_slice::<Json>(body) {
                    Ok(Json::Object(o)) => map.extend(o),
                    Ok(_) => {
                        return Err(CkanError::BadRequest(
                            "JSON Error: the body must be a JSON object".into(),
                        ))
                    }
                    Err(e) => return Err(CkanError::BadRequest(format!("JSON Error: {e}"))),
                }
            }
        }
        Ok(Self(map))
    }

    /// A text parameter; numbers are accepted as their text.
    fn str(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.to_string()),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn required(&self, name: &str) -> Result<String, CkanError> {
        match self.str(name) {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(CkanError::field(name, "Missing value")),
        }
    }

    /// A non-negative integer parameter, with CKAN's messages.
    fn uint(&self, name: &str, default: u64, max: Option<u64>) -> Result<u64, CkanError> {
        let v = match self.0.get(name) {
            None | Some(Json::Null) => return Ok(default),
            Some(Json::Number(n)) => {
                n.as_u64().ok_or_else(|| CkanError::field(name, "Must be a natural number"))?
            }
            Some(Json::String(s)) if s.is_empty() => return Ok(default),
            Some(Json::String(s)) => {
                s.trim().parse().map_err(|_| CkanError::field(name, "Invalid integer"))?
            }
            Some(_) => return Err(CkanError::field(name, "Invalid integer")),
        };
        match max {
            Some(m) if v > m => Err(CkanError::field(name, format!("Must be less than or equal to {m}"))),
            _ => Ok(v),
        }
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, CkanError> {
        match self.0.get(name) {
            None | Some(Json::Null) => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(Json::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" | "" => Ok(false),
                _ => Err(CkanError::field(name, "Must be a boolean")),
            },
            Some(Json::Number(n)) => Ok(n.as_i64() != Some(0)),
            Some(_) => Err(CkanError::field(name, "Must be a boolean")),
        }
    }

    /// A list parameter: a JSON array, or a text holding one (CKAN's GET habit), or one value.
    fn list(&self, name: &str) -> Result<Vec<String>, CkanError> {
        let item = |v: &Json| match v {
            Json::String(s) => Ok(s.clone()),
            Json::Number(n) => Ok(n.to_string()),
            _ => Err(CkanError::field(name, "Must be a list of strings")),
        };
        match self.0.get(name) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(a)) => a.iter().map(item).collect(),
            Some(Json::String(s)) if s.trim_start().starts_with('[') => {
                match serde_json::from_str::<Json>(s) {
                    Ok(Json::Array(a)) => a.iter().map(item).collect(),
                    _ => Err(CkanError::field(name, "Must be a JSON list of strings")),
                }
            }
            Some(Json::String(s)) if s.is_empty() => Ok(Vec::new()),
            Some(v) => Ok(vec![item(v)?]),
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space), keeping malformed escapes as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `a=1&b=x+y` pairs.
pub(crate) fn form_urlencoded(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// `GET|POST /api/3/action/{name}` and `/api/action/{name}`.
pub(crate) async fn action(
    State(s): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let base = base_url(&headers);
    let name = match name {
        Ok(Path(name)) => name,
        Err(e) => {
            let help = format!("{base}/api/3/action/help_show");
            return Answer { help, result: Err(CkanError::BadRequest(e.body_text())) }.into_response();
        }
    };
    let help = format!("{base}/api/3/action/help_show?name={}", crate::native::encode(&name));
    let result = match Params::parse(query.as_deref(), &method, &headers, &body) {
        Err(e) => Err(e),
        Ok(p) => {
            let store = s.store.clone();
            tokio::task::spawn_blocking(move || dispatch(&store, &name, &p, &base))
                .await
                .unwrap_or_else(|e| Err(e.into()))
        }
    };
    Answer { help, result }.into_response()
}

/// The actions this server knows, for `help_show` and the error for unknown names.
const ACTIONS: &[&str] = &[
    "status_show",
    "site_read",
    "help_show",
    "package_list",
    "current_package_list_with_resources",
    "package_search",
    "package_show",
    "resource_show",
    "organization_list",
    "organization_show",
    "tag_list",
    "tag_show",
    "group_list",
    "group_show",
    "package_activity_list",
    "license_list",
    "datastore_search",
    "datastore_search_sql",
];

fn dispatch(store: &Store, name: &str, p: &Params, base: &str) -> Result<Json, CkanError> {
    let ctx = Ctx { store, base };
    match name {
        "status_show" => Ok(json!({
            "ckan_version": CKAN_API_VERSION,
            "site_title": "citydata",
            "site_description": "Open city data",
            "site_url": base,
            "locale_default": "en",
            "extensions": ["datastore", "dcat", "activity"],
            "citydata_version": env!("CARGO_PKG_VERSION"),
        })),
        "site_read" => Ok(json!(true)),
        "help_show" => {
            let n = p.required("name")?;
            if ACTIONS.contains(&n.as_str()) {
                Ok(json!(format!("{n}: see the CKAN Action API documentation; served by citydata")))
            } else {
                Err(CkanError::NotFound(format!("action {n}")))
            }
        }
        "package_list" => package_list(&ctx, p),
        "package_search" => package_search(&ctx, p),
        "datastore_search" => datastore_search(&ctx, p),
        "datastore_search_sql" => datastore_search_sql(&ctx, p),
        "current_package_list_with_resources" => {
            let names = ctx.paged_slugs(p)?;
            names.iter().map(|n| ctx.package(n)).collect::<Result<Vec<_>, _>>().map(Json::Array)
        }
        "package_show" => ctx.package(&p.required("id")?),
        "resource_show" => resource_show(&ctx, p),
        "organization_list" => organization_list(&ctx, p),
        "organization_show" => organization_show(&ctx, p),
        "tag_list" => tag_list(&ctx, p),
        "tag_show" => {
            let id = p.required("id")?;
            if ctx.values(FacetField::Tag)?.iter().any(|(t, _)| *t == id) {
                Ok(tag_json(&id))
            } else {
                Err(CkanError::NotFound(format!("tag {id}")))
            }
        }
        "group_list" => group_list(&ctx, p),
        "group_show" => group_show(&ctx, p),
        "package_activity_list" => package_activity_list(&ctx, p),
        "license_list" => {
            let licenses = ctx.values(FacetField::License)?;
            Ok(Json::Array(licenses.iter().map(|(l, _)| license_json(l)).collect()))
        }
        w if WRITE_ACTIONS.contains(&w) => Err(CkanError::Authorization(format!(
            "{w} needs a publisher's token; this server takes none yet"
        ))),
        other => Err(CkanError::BadRequest(format!("Action name not known: {other}"))),
    }
}

struct Ctx<'a> {
    store: &'a Store,
    base: &'a str,
}

impl Ctx<'_> {
    /// The dataset named by a slug or by its id.
    fn dataset(&self, id_or_name: &str) -> Result<Dataset, CkanError> {
        if let Some(d) = self.store.dataset(id_or_name)? {
            return Ok(d);
        }
        if id_or_name.len() == 36 {
            for slug in self.store.dataset_slugs()? {
                if citydata_store::dataset_id(&slug) == id_or_name {
                    if let Some(d) = self.store.dataset(&slug)? {
                        return Ok(d);
                    }
                }
            }
        }
        Err(CkanError::NotFound(format!("dataset {id_or_name:?}")))
    }

    fn package(&self, id_or_name: &str) -> Result<Json, CkanError> {
        Ok(package_json(&self.dataset(id_or_name)?, self.base))
    }

    fn paged_slugs(&self, p: &Params) -> Result<Vec<String>, CkanError> {
        let slugs = self.store.dataset_slugs()?;
        let offset = usize::try_from(p.uint("offset", 0, None)?).unwrap_or(usize::MAX);
        let limit = usize::try_from(p.uint("limit", u64::MAX, None)?).unwrap_or(usize::MAX);
        Ok(slugs.into_iter().skip(offset).take(limit).collect())
    }

    /// Every value of a facet over the whole catalogue, with its count (from the search index).
    fn values(&self, field: FacetField) -> Result<Vec<(String, u64)>, CkanError> {
        let q =
            SearchQuery { rows: 0, facets: vec![field], facet_limit: usize::MAX, ..SearchQuery::default() };
        let mut found = self.store.search(&q)?;
        Ok(found.facets.pop().map(|(_, v)| v).unwrap_or_default())
    }

    /// Up to 1000 package dictionaries of the datasets with `value` in facet `field`.
    fn packages_with(&self, field: FacetField, value: &str) -> Result<Json, CkanError> {
        let q = SearchQuery {
            filters: vec![(field, value.to_owned())],
            sort: SearchSort::NameAsc,
            rows: u32::try_from(MAX_SEARCH_ROWS).unwrap_or(u32::MAX),
            ..SearchQuery::default()
        };
        let found = self.store.search(&q)?;
        found.slugs.iter().map(|s| self.package(s)).collect::<Result<Vec<_>, _>>().map(Json::Array)
    }
}

fn package_list(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    Ok(json!(ctx.paged_slugs(p)?))
}

/// CKAN's timestamps: ISO 8601 in UTC without a zone designator, microseconds.
pub(crate) fn ckan_time(rfc3339: &str) -> String {
    let t = rfc3339.trim_end_matches('Z');
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut micros: String = frac.chars().take_while(char::is_ascii_digit).take(6).collect();
    while micros.len() < 6 {
        micros.push('0');
    }
    format!("{secs}.{micros}")
}

fn text(t: &LangText) -> String {
    t.best().unwrap_or_default().to_owned()
}

/// A language map with CKAN's (ckanext-fluent) keys: `en`, `zh_Hant`, `zh_Hans`.
fn translated(t: &LangText) -> Json {
    Json::Object(t.0.iter().map(|(k, v)| (k.replace('-', "_"), json!(v))).collect())
}

fn tag_json(name: &str) -> Json {
    json!({
        "id": citydata_store::name_uuid(&["citydata-tag", name]),
        "name": name,
        "display_name": name,
        "state": "active",
        "vocabulary_id": null,
    })
}

fn license_json(license: &str) -> Json {
    json!({
        "id": license,
        "title": license,
        "url": "",
        "status": "active",
        "od_conformance": "approved",
        "is_okd_compliant": true,
    })
}

/// The stable id of a group (`kind` "group") or an organisation (`kind` "organization").
fn group_like_id(kind: &str, name: &str) -> String {
    citydata_store::name_uuid(&[&format!("citydata-{kind}"), name])
}

/// CKAN's dictionary of a group or an organisation (CKAN stores both as groups).
fn group_like_json(kind: &str, name: &str, title: &LangText, count: Option<u64>) -> Json {
    let organization = kind == "organization";
    let mut out = json!({
        "id": group_like_id(kind, name),
        "name": name,
        "title": text(title),
        "title_translated": translated(title),
        "display_name": text(title),
        "description": "",
        "image_url": "",
        "image_display_url": "",
        "type": kind,
        "is_organization": organization,
        "approval_status": "approved",
        "state": "active",
    });
    if let Some(n) = count {
        out["package_count"] = json!(n);
    }
    out
}

fn organization_json(o: &Organization, count: Option<u64>) -> Json {
    group_like_json("organization", &o.slug, &o.title, count)
}

/// Themes are CKAN groups; their names are their titles.
fn group_json(theme: &str, count: Option<u64>) -> Json {
    group_like_json("group", theme, &LangText::en(theme), count)
}

fn resource_json(d: &Dataset, r: &Resource, position: usize, base: &str) -> Json {
    let cur = r.current();
    let title = if r.title.is_empty() { r.name.clone() } else { text(&r.title) };
    json!({
        "id": r.id,
        "package_id": d.id,
        "name": title,
        "name_translated": translated(&r.title),
        "description": text(&r.description),
        "format": cur.map(|v| v.format.to_ascii_uppercase()),
        "mimetype": cur.map(|v| v.media_type.clone()),
        "url": crate::archive::resource_url(base, d, r),
        "size": cur.map(|v| v.bytes),
        "hash": cur.map(|v| format!("sha256:{}", v.sha256)),
        "created": cur.and(r.versions.first()).map(|v| ckan_time(&v.created)),
        "last_modified": cur.map(|v| ckan_time(&v.created)),
        "metadata_modified": cur.map(|v| ckan_time(&v.created)),
        "position": position,
        "state": "active",
        "datastore_active": cur.is_some(),
        "url_type": null,
        "resource_type": null,
        "citydata_name": r.name,
        "citydata_version": cur.map(|v| v.number),
        "citydata_row_count": cur.map(|v| v.row_count),
    })
}

/// A CKAN package dictionary.
pub(crate) fn package_json(d: &Dataset, base: &str) -> Json {
    let m = &d.meta;
    let tags: Vec<Json> = m.tags.iter().map(|t| tag_json(t)).collect();
    let groups: Vec<Json> = m.theme.iter().map(|t| group_json(t, None)).collect();
    let resources: Vec<Json> =
        d.resources.iter().enumerate().map(|(i, r)| resource_json(d, r, i, base)).collect();
    json!({
        "id": d.id,
        "name": d.slug,
        "title": text(&m.title),
        "title_translated": translated(&m.title),
        "notes": text(&m.description),
        "notes_translated": translated(&m.description),
        "type": "dataset",
        "state": "active",
        "private": false,
        "author": null,
        "author_email": null,
        "maintainer": d.organization.as_ref().map(|o| text(&o.title)),
        "maintainer_email": null,
        "license_id": m.license,
        "license_title": m.license,
        "license_url": null,
        "isopen": m.license.is_some(),
        "url": m.source,
        "version": null,
        "metadata_created": ckan_time(&d.created),
        "metadata_modified": ckan_time(&d.modified),
        "owner_org": d.organization.as_ref().map(|o| group_like_id("organization", &o.slug)),
        "organization": d.organization.as_ref().map(|o| organization_json(o, None)),
        "num_tags": tags.len(),
        "tags": tags,
        "groups": groups,
        "num_resources": resources.len(),
        "resources": resources,
        "extras": [
            { "key": "update_frequency", "value": m.frequency.clone().unwrap_or_default() },
            { "key": "theme", "value": m.theme.clone().unwrap_or_default() },
        ],
        "frequency": m.frequency,
        "theme": m.theme,
        "relationships_as_subject": [],
        "relationships_as_object": [],
    })
}

fn resource_show(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let id = p.required("id")?;
    let slug =
        ctx.store.dataset_of_resource(&id)?.ok_or_else(|| CkanError::NotFound(format!("resource {id:?}")))?;
    let d = ctx.dataset(&slug)?;
    let (i, r) = d
        .resources
        .iter()
        .enumerate()
        .find(|(_, r)| r.id == id)
        .ok_or_else(|| CkanError::NotFound(format!("resource {id:?}")))?;
    Ok(resource_json(&d, r, i, ctx.base))
}

/// Sorts `items` by CKAN's `sort` parameter (`name asc`, `title desc`, `package_count desc`, ...).
fn sort_items(items: &mut [Json], sort: &str) -> Result<(), CkanError> {
    let mut parts = sort.split_whitespace();
    let field = parts.next().unwrap_or("name");
    let desc = match parts.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(CkanError::field("sort", "Must be a field name followed by asc or desc")),
    };
    if !["name", "title", "package_count"].contains(&field) {
        return Err(CkanError::field("sort", "Can only sort by name, title or package_count"));
    }
    items.sort_by(|a, b| {
        let o = match (&a[field], &b[field]) {
            (Json::Number(x), Json::Number(y)) => x.as_u64().cmp(&y.as_u64()),
            (x, y) => x.as_str().unwrap_or("").to_lowercase().cmp(&y.as_str().unwrap_or("").to_lowercase()),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    Ok(())
}

/// The `all_fields`, `sort`, `limit`, `offset` habits shared by organization_list and group_list.
fn list_answer(mut items: Vec<Json>, p: &Params) -> Result<Json, CkanError> {
    sort_items(&mut items, &p.str("sort").unwrap_or_else(|| "name asc".into()))?;
    let offset = usize::try_from(p.uint("offset", 0, None)?).unwrap_or(usize::MAX);
    let limit = usize::try_from(p.uint("limit", 1000, None)?).unwrap_or(usize::MAX);
    let items = items.into_iter().skip(offset).take(limit);
    if p.bool("all_fields", false)? {
        Ok(Json::Array(items.collect()))
    } else {
        Ok(Json::Array(items.map(|i| i["name"].clone()).collect()))
    }
}

fn organization_list(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let orgs = ctx.store.organizations()?;
    let wanted = p.list("organizations")?;
    let items = orgs
        .iter()
        .filter(|(o, _)| wanted.is_empty() || wanted.contains(&o.slug))
        .map(|(o, n)| organization_json(o, Some(*n)))
        .collect();
    list_answer(items, p)
}

fn organization_show(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let id = p.required("id")?;
    let orgs = ctx.store.organizations()?;
    let (o, n) = orgs
        .iter()
        .find(|(o, _)| o.slug == id || group_like_id("organization", &o.slug) == id)
        .ok_or_else(|| CkanError::NotFound(format!("organization {id:?}")))?;
    group_like_show(ctx, p, organization_json(o, Some(*n)), FacetField::Organization, &o.slug)
}

/// What `organization_show` and `group_show` add to the dictionary: the datasets when asked, and
/// the lists citydata has nothing for.
fn group_like_show(
    ctx: &Ctx<'_>,
    p: &Params,
    mut out: Json,
    field: FacetField,
    name: &str,
) -> Result<Json, CkanError> {
    if p.bool("include_datasets", false)? {
        out["packages"] = ctx.packages_with(field, name)?;
    }
    for empty in ["users", "extras", "tags", "groups"] {
        out[empty] = json!([]);
    }
    Ok(out)
}

fn tag_list(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let tags = ctx.values(FacetField::Tag)?;
    let query = p.str("query").or_else(|| p.str("q")).map(|q| q.to_lowercase());
    let mut names: Vec<&String> = tags.iter().map(|(t, _)| t).collect();
    names.sort();
    let names =
        names.into_iter().filter(|t| query.as_ref().is_none_or(|q| t.to_lowercase().contains(q.as_str())));
    if p.bool("all_fields", false)? {
        Ok(Json::Array(names.map(|t| tag_json(t)).collect()))
    } else {
        Ok(json!(names.collect::<Vec<_>>()))
    }
}

fn group_list(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let themes = ctx.values(FacetField::Theme)?;
    let wanted = p.list("groups")?;
    let items = themes
        .iter()
        .filter(|(t, _)| wanted.is_empty() || wanted.contains(t))
        .map(|(t, n)| group_json(t, Some(*n)))
        .collect();
    list_answer(items, p)
}

fn group_show(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let id = p.required("id")?;
    let themes = ctx.values(FacetField::Theme)?;
    let (theme, n) = themes
        .iter()
        .find(|(t, _)| *t == id || group_like_id("group", t) == id)
        .ok_or_else(|| CkanError::NotFound(format!("group {id:?}")))?;
    group_like_show(ctx, p, group_json(theme, Some(*n)), FacetField::Theme, theme)
}

/// Each version of each resource is an activity, newest first; the dataset's first version is
/// `new package`, later ones `changed package`.
fn package_activity_list(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let d = ctx.dataset(&p.required("id")?)?;
    let offset = usize::try_from(p.uint("offset", 0, None)?).unwrap_or(usize::MAX);
    let limit = usize::try_from(p.uint("limit", 31, Some(100))?).unwrap_or(usize::MAX);
    let mut events: Vec<(&str, &Resource, &citydata_store::Version)> =
        d.resources.iter().flat_map(|r| r.versions.iter().map(move |v| (v.created.as_str(), r, v))).collect();
    events.sort_by(|a, b| a.0.cmp(b.0).then(a.2.number.cmp(&b.2.number)));
    let first = events.first().map(|(t, r, v)| (t.to_string(), r.id.clone(), v.number));
    let list: Vec<Json> = events
        .iter()
        .rev()
        .skip(offset)
        .take(limit)
        .map(|(t, r, v)| {
            let is_first = first.as_ref().is_some_and(|f| f.1 == r.id && f.2 == v.number);
            json!({
                "id": citydata_store::name_uuid(&["citydata-activity", &r.id, &v.number.to_string()]),
                "timestamp": ckan_time(t),
                "user_id": v.publisher,
                "object_id": d.id,
                "activity_type": if is_first { "new package" } else { "changed package" },
                "data": {
                    "package": { "id": d.id, "name": d.slug, "title": text(&d.meta.title) },
                    "resource": { "id": r.id, "name": r.name, "version": v.number, "sha256": v.sha256,
                                  "row_count": v.row_count, "format": v.format },
                },
            })
        })
        .collect();
    Ok(Json::Array(list))
}

/// Splits CKAN's `fq` (and `field:value` terms of `q`) into facet filters and the remaining words:
/// `organization:epd +tags:"air quality" res_format:CSV`.
/// In `q` (not `strict`), a term on another field (`title:air`) searches its value as words.
fn split_field_terms(text: &str, strict: bool) -> Result<(Vec<(FacetField, String)>, String), CkanError> {
    let mut filters = Vec::new();
    let mut words = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (term, after) = match rest.find(':') {
            Some(colon) if !rest[..colon].contains(char::is_whitespace) => {
                let name = rest[..colon].trim_start_matches('+');
                let value_part = &rest[colon + 1..];
                let (value, after) = if let Some(quoted) = value_part.strip_prefix('"') {
                    match quoted.find('"') {
                        Some(end) => (&quoted[..end], &quoted[end + 1..]),
                        None => return Err(CkanError::SearchQuery(format!("unclosed quote in {text:?}"))),
                    }
                } else {
                    let end = value_part.find(char::is_whitespace).unwrap_or(value_part.len());
                    (&value_part[..end], &value_part[end..])
                };
                match FacetField::parse(name) {
                    Some(f) => filters.push((f, value.to_owned())),
                    None if !strict || name == "name" || name == "id" => words.push(value.to_owned()),
                    None => {
                        return Err(CkanError::SearchQuery(format!(
                            "unknown field {name:?}: filter on organization, tags, res_format, groups or license_id"
                        )))
                    }
                }
                (None::<&str>, after)
            }
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (Some(&rest[..end]), &rest[end..])
            }
        };
        if let Some(t) = term {
            if !matches!(t, "AND" | "+" | "*:*") {
                words.push(t.to_owned());
            }
        }
        rest = after.trim_start();
    }
    Ok((filters, words.join(" ")))
}

fn search_sort(sort: Option<&str>) -> Result<SearchSort, CkanError> {
    let Some(sort) = sort.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(SearchSort::Relevance) };
    // The first key decides; CKAN's default "score desc, metadata_modified desc" is relevance.
    let first = sort.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
    let mut parts = first.split_whitespace();
    let field = parts.next().unwrap_or("");
    let desc = match parts.next() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(CkanError::field("sort", "Must be field names each followed by asc or desc")),
    };
    Ok(match (field, desc) {
        ("score" | "rank", _) => SearchSort::Relevance,
        ("metadata_modified", true) => SearchSort::ModifiedDesc,
        ("metadata_modified", false) => SearchSort::ModifiedAsc,
        ("title_string" | "title", false) => SearchSort::TitleAsc,
        ("title_string" | "title", true) => SearchSort::TitleDesc,
        ("name", false) => SearchSort::NameAsc,
        ("name", true) => SearchSort::NameDesc,
        _ => {
            return Err(CkanError::field(
                "sort",
                "Can sort by score, metadata_modified, title_string or name, each asc or desc",
            ))
        }
    })
}

fn package_search(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let (mut filters, words) = split_field_terms(&p.str("q").unwrap_or_default(), false)?;
    let (fq_filters, fq_words) = split_field_terms(&p.str("fq").unwrap_or_default(), true)?;
    if !fq_words.trim().is_empty() {
        return Err(CkanError::SearchQuery(format!("fq takes field:value terms only, not {fq_words:?}")));
    }
    filters.extend(fq_filters);
    let rows = p.uint("rows", 10, Some(MAX_SEARCH_ROWS))?;
    let start = p.uint("start", 0, None)?;
    let facet_names = p.list("facet.field")?;
    let facets = facet_names
        .iter()
        .map(|n| {
            FacetField::parse(n).ok_or_else(|| {
                CkanError::SearchQuery(format!(
                    "cannot facet on {n:?}: use organization, tags, res_format, groups or license_id"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let facet_limit = match p.0.get("facet.limit") {
        Some(Json::Number(n)) if n.as_i64() == Some(-1) => usize::MAX,
        Some(Json::String(s)) if s == "-1" => usize::MAX,
        _ => usize::try_from(p.uint("facet.limit", 50, None)?).unwrap_or(usize::MAX),
    };
    let query = SearchQuery {
        q: words,
        filters,
        sort: search_sort(p.str("sort").as_deref())?,
        rows: u32::try_from(rows).unwrap_or(u32::MAX),
        start: u32::try_from(start).unwrap_or(u32::MAX),
        facets,
        facet_limit,
    };
    let found = ctx.store.search(&query)?;
    let results = found.slugs.iter().map(|s| ctx.package(s)).collect::<Result<Vec<_>, _>>()?;
    let org_titles: BTreeMap<String, String> = if query.facets.contains(&FacetField::Organization) {
        ctx.store.organizations()?.into_iter().map(|(o, _)| (o.slug.clone(), text(&o.title))).collect()
    } else {
        BTreeMap::new()
    };
    let mut facets_old = Map::new();
    let mut search_facets = Map::new();
    for (field, values) in &found.facets {
        let shown = |v: &str| match field {
            FacetField::Format => v.to_ascii_uppercase(),
            _ => v.to_owned(),
        };
        let display = |v: &str| match field {
            FacetField::Organization => org_titles.get(v).cloned().unwrap_or_else(|| v.to_owned()),
            _ => shown(v),
        };
        facets_old.insert(
            field.name().to_owned(),
            Json::Object(values.iter().map(|(v, n)| (shown(v), json!(n))).collect()),
        );
        let items: Vec<Json> = values
            .iter()
            .map(|(v, n)| json!({ "name": shown(v), "display_name": display(v), "count": n }))
            .collect();
        search_facets.insert(field.name().to_owned(), json!({ "title": field.name(), "items": items }));
    }
    Ok(json!({
        "count": found.count,
        "sort": p.str("sort").unwrap_or_else(|| "score desc, metadata_modified desc".into()),
        "results": results,
        "facets": facets_old,
        "search_facets": search_facets,
    }))
}

/// CKAN DataStore's name for a column type.
fn datastore_type(t: FieldType) -> &'static str {
    match t {
        FieldType::Integer => "int",
        FieldType::Number => "numeric",
        FieldType::Boolean => "bool",
        FieldType::Date => "date",
        FieldType::Datetime => "timestamp",
        FieldType::Time => "time",
        FieldType::String => "text",
        FieldType::Geometry => "geojson",
    }
}

/// The most rows one `datastore_search` or `datastore_search_sql` call returns, as CKAN's default.
const DATASTORE_MAX_ROWS: u64 = 32_000;

/// CKAN's `sort`: `"col asc, col2 desc"` or a list of such.
fn datastore_sort(p: &Params) -> Result<Vec<SortKey>, CkanError> {
    let mut keys = Vec::new();
    for item in p.list("sort")? {
        for part in item.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (col, dir) = match part.rsplit_once(char::is_whitespace) {
                Some((c, d)) if d.eq_ignore_ascii_case("asc") || d.eq_ignore_ascii_case("desc") => {
                    (c.trim(), d)
                }
                _ => (part, "asc"),
            };
            let col = col.trim_matches('"');
            keys.push(if dir.eq_ignore_ascii_case("desc") { SortKey::desc(col) } else { SortKey::asc(col) });
        }
    }
    Ok(keys)
}

/// `filters`: an object of column -> value or list of values (equality, any of the list).
fn datastore_filters(p: &Params) -> Result<Vec<Filter>, CkanError> {
    let raw = match p.0.get("filters") {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Json::String(s)) => serde_json::from_str::<Json>(s)
            .map_err(|_| CkanError::field("filters", "Must be a JSON object of column names and values"))?,
        Some(v) => v.clone(),
    };
    let Json::Object(map) = raw else {
        return Err(CkanError::field("filters", "Must be a JSON object of column names and values"));
    };
    let scalar = |v: &Json| match v {
        Json::String(s) => Ok(Some(s.clone())),
        Json::Number(n) => Ok(Some(n.to_string())),
        Json::Bool(b) => Ok(Some(b.to_string())),
        Json::Null => Ok(None),
        _ => Err(CkanError::field("filters", "Values must be strings, numbers, booleans or lists of them")),
    };
    let mut out = Vec::new();
    for (col, v) in map {
        let values = match &v {
            Json::Array(a) => a.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar(other)?],
        };
        if values.iter().any(Option::is_none) {
            out.push(Filter::new(col.clone(), Op::IsNull, Vec::<String>::new()));
        } else {
            out.push(Filter::new(col.clone(), Op::Eq, values.into_iter().flatten().collect::<Vec<_>>()));
        }
    }
    Ok(out)
}

fn datastore_error(e: StoreError) -> CkanError {
    match e {
        StoreError::NotFound(what) => CkanError::NotFound(format!("{what} not found")),
        StoreError::Invalid(m) if m.starts_with("unknown column") => CkanError::field("fields", m),
        StoreError::Invalid(m) if m.starts_with("filter") => CkanError::field("filters", m),
        StoreError::Invalid(m) => CkanError::field("query", m),
        other => other.into(),
    }
}

/// The field list of a result, as CKAN gives it.
fn datastore_fields(head: &Head) -> Json {
    Json::Array(
        head.columns
            .iter()
            .map(|c| {
                let t = if c.name == "_id" { "int" } else { datastore_type(c.field_type) };
                json!({ "id": c.name, "type": t })
            })
            .collect(),
    )
}

/// Records as CKAN's `records_format` asks: objects, lists, csv or tsv.
fn datastore_records(head: &Head, rows: &[Vec<Value<'static>>], format: &str) -> Result<Json, CkanError> {
    let types: Vec<FieldType> = head.columns.iter().map(|c| c.field_type).collect();
    match format {
        "objects" => Ok(Json::Array(
            rows.iter()
                .map(|r| {
                    Json::Object(
                        head.columns
                            .iter()
                            .zip(r)
                            .zip(&types)
                            .map(|((c, v), t)| (c.name.clone(), crate::stream::to_json(v, *t)))
                            .collect(),
                    )
                })
                .collect(),
        )),
        "lists" => Ok(Json::Array(
            rows.iter()
                .map(|r| {
                    Json::Array(r.iter().zip(&types).map(|(v, t)| crate::stream::to_json(v, *t)).collect())
                })
                .collect(),
        )),
        "csv" | "tsv" => {
            let delimiter = if format == "csv" { b',' } else { b'\t' };
            let mut out = Vec::new();
            for r in rows {
                for (i, (v, t)) in r.iter().zip(&types).enumerate() {
                    if i > 0 {
                        out.push(delimiter);
                    }
                    crate::stream::csv_field(&mut out, &crate::stream::text_value(v, *t), delimiter);
                }
                out.push(b'\n');
            }
            Ok(Json::String(String::from_utf8_lossy(&out).into_owned()))
        }
        _ => Err(CkanError::field("records_format", "Must be objects, lists, csv or tsv")),
    }
}

fn datastore_search(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let rid = p.str("resource_id").or_else(|| p.str("id")).filter(|s| !s.is_empty());
    let rid = rid.ok_or_else(|| CkanError::field("resource_id", "Missing value"))?;
    let limit = p.uint("limit", 100, Some(DATASTORE_MAX_ROWS))?;
    let offset = p.uint("offset", 0, None)?;
    let include_total = p.bool("include_total", true)?;
    let records_format = p.str("records_format").unwrap_or_else(|| "objects".into());
    let mut filters = datastore_filters(p)?;
    // `q` is text over every column, or an object of column -> text.
    let q = match p.0.get("q") {
        Some(Json::Object(per_column)) => {
            for (col, v) in per_column {
                let words = v.as_str().unwrap_or_default();
                for w in words.split_whitespace() {
                    filters.push(Filter::new(col.clone(), Op::Contains, vec![w.to_owned()]));
                }
            }
            None
        }
        Some(Json::String(s)) if s.trim_start().starts_with('{') => {
            match serde_json::from_str::<Map<String, Json>>(s) {
                Ok(per_column) => {
                    for (col, v) in per_column {
                        for w in v.as_str().unwrap_or_default().split_whitespace() {
                            filters.push(Filter::new(col.clone(), Op::Contains, vec![w.to_owned()]));
                        }
                    }
                    None
                }
                Err(_) => Some(s.clone()),
            }
        }
        _ => p.str("q").filter(|s| !s.trim().is_empty()),
    };
    let fields = match p.list("fields")? {
        f if f.is_empty() => None,
        f => Some(
            f.iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    let query = RowQuery {
        filters,
        q,
        sort: datastore_sort(p)?,
        fields,
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        offset,
        after: None,
        total: include_total.then_some(u64::MAX),
        facets: Vec::new(),
        facet_limit: 0,
        distinct: p.bool("distinct", false)?,
        cond: datastore_spatial(ctx, p)?,
    };
    let mut buf = RowBuffer::default();
    ctx.store.query_rows(&rid, &query, &mut buf).map_err(datastore_error)?;
    let head = buf.head.ok_or_else(|| CkanError::Internal("no head".into()))?;
    let link = |off: u64| {
        let mut q = format!("/api/3/action/datastore_search?resource_id={}", crate::native::encode(&rid));
        if off > 0 {
            q = format!("{q}&offset={off}");
        }
        if limit != 100 {
            q = format!("{q}&limit={limit}");
        }
        q
    };
    let mut out = json!({
        "include_total": include_total,
        "resource_id": rid,
        "fields": datastore_fields(&head),
        "records_format": records_format,
        "records": datastore_records(&head, &buf.rows, &records_format)?,
        "limit": limit,
        "offset": offset,
        "_links": { "start": link(0), "next": link(offset.saturating_add(limit)) },
    });
    if let Some(t) = head.total {
        out["total"] = json!(t.count);
        out["total_was_estimated"] = json!(!t.exact);
    }
    for key in ["q", "filters", "sort", "distinct"] {
        if let Some(v) = p.0.get(key) {
            out[key] = v.clone();
        }
    }
    Ok(out)
}

/// citydata's spatial filters of `datastore_search` (beyond CKAN's): `bbox` (`min lon,min lat,max
/// lon,max lat`), `near` (`lon,lat,metres`) and `district` (a district's name), ANDed.
fn datastore_spatial(ctx: &Ctx<'_>, p: &Params) -> Result<Option<citydata_store::Cond>, CkanError> {
    let mut conds = Vec::new();
    if let Some(b) = p.str("bbox").filter(|s| !s.is_empty()) {
        conds.push(
            crate::spatial::bbox_cond(&b, citydata_geo::Crs::Crs84)
                .map_err(|e| CkanError::field("bbox", e))?,
        );
    }
    if let Some(n) = p.str("near").filter(|s| !s.is_empty()) {
        conds.push(crate::spatial::near_cond(&n).map_err(|e| CkanError::field("near", e))?);
    }
    if let Some(d) = p.str("district").filter(|s| !s.is_empty()) {
        conds.push(crate::spatial::district_cond(ctx.store, &d).map_err(|e| match e {
            crate::ApiError::BadRequest(m) => CkanError::field("district", m),
            other => CkanError::Internal(format!("{other:?}")),
        })?);
    }
    Ok((!conds.is_empty()).then(|| citydata_store::Cond::all(conds)))
}

fn datastore_search_sql(ctx: &Ctx<'_>, p: &Params) -> Result<Json, CkanError> {
    let sql = p.required("sql")?;
    let limits = SqlLimits { max_rows: DATASTORE_MAX_ROWS, ..SqlLimits::default() };
    let mut buf = RowBuffer::default();
    let outcome = ctx.store.user_sql(&sql, &limits, &mut buf).map_err(|e| match e {
        StoreError::Forbidden(m) => CkanError::Authorization(m),
        StoreError::Invalid(m) => CkanError::field("query", m),
        other => other.into(),
    })?;
    let head = buf.head.ok_or_else(|| CkanError::Internal("no head".into()))?;
    let mut out = json!({
        "sql": sql,
        "fields": datastore_fields(&head),
        "records": datastore_records(&head, &buf.rows, "objects")?,
    });
    if outcome.truncated {
        out["records_truncated"] = json!(true);
    }
    Ok(out)
}

/// `GET /datastore/dump/{resource_id}`: the whole table as CSV (default), TSV, JSON or NDJSON,
/// streamed; `bom=true` puts a byte order mark first. Takes `q`, `fields`, `sort`, `limit` and
/// `offset` as `datastore_search` does.
pub(crate) async fn dump(
    State(s): State<AppState>,
    crate::extract::Path(resource_id): crate::extract::Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, crate::ApiError> {
    let pairs = form_urlencoded(query.as_deref().unwrap_or(""));
    let p = Params(pairs.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect());
    let bad = |e: CkanError| crate::ApiError::BadRequest(e.message());
    let bom = p.bool("bom", false).map_err(bad)?;
    let format = crate::stream::RowFormat::parse(&p.str("format").unwrap_or_else(|| "csv".into()), bom)?;
    let fields = match p.list("fields").map_err(bad)? {
        f if f.is_empty() => None,
        f => Some(
            f.iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    let limit = p.uint("limit", u64::from(u32::MAX), None).map_err(bad)?;
    let q = RowQuery {
        filters: datastore_filters(&p).map_err(bad)?,
        q: p.str("q").filter(|s| !s.trim().is_empty()),
        sort: datastore_sort(&p).map_err(bad)?,
        fields,
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        offset: p.uint("offset", 0, None).map_err(bad)?,
        total: None,
        ..RowQuery::default()
    };
    let ext = match format {
        crate::stream::RowFormat::Csv { delimiter: b'\t', .. } => "tsv",
        crate::stream::RowFormat::Csv { .. } => "csv",
        crate::stream::RowFormat::Json => "json",
        crate::stream::RowFormat::Ndjson => "ndjson",
        crate::stream::RowFormat::GeoJson => "geojson",
    };
    let name: String = resource_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let target = crate::stream::Target { resource_id, frame: None, filename: Some(format!("{name}.{ext}")) };
    crate::stream::rows_response(s, move |_| Ok(target), q, format).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_ckan_form() {
        assert_eq!(ckan_time("2026-11-25T07:24:28.123456789Z"), "2026-11-25T07:24:28.123456");
        assert_eq!(ckan_time("2026-11-25T07:24:28Z"), "2026-11-25T07:24:28.000000");
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            form_urlencoded("q=air+quality&fq=tags%3A%E7%A9%BA%E6%B0%A3&x&bad=%zz"),
            [
                ("q".to_owned(), "air quality".to_owned()),
                ("fq".to_owned(), "tags:空氣".to_owned()),
                ("x".to_owned(), String::new()),
                ("bad".to_owned(), "%zz".to_owned()),
            ]
        );
    }
}
