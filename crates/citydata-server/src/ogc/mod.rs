//! OGC API - Features at `/ogc`: every spatial resource is a collection of features, served as
//! GeoJSON and HTML, in WGS 84 (CRS84 and EPSG:4326), the Hong Kong 1980 Grid (EPSG:2326) and Web
//! Mercator (EPSG:3857), filtered by bbox, datetime, properties and CQL2 (text and JSON).
//!
//! Conformance: Part 1 (core, GeoJSON, HTML, OpenAPI 3.0), Part 2 (CRS by reference) and Part 3
//! (queryables, queryables as query parameters, filter, features filter) with CQL2. The standard is
//! strict and so is this module: an unknown query parameter or an invalid value is a 400 that says
//! which and why; `limit` is 1..=10000 (default 10); the answer's media types are also in `Link`
//! headers.
//!
//! A collection's id is its dataset's slug when the dataset has one spatial resource, else
//! `{dataset}.{resource}`.

mod api;
mod html;
mod items;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use citydata_model::FieldType;
use citydata_store::SpatialResource;
use serde_json::{json, Value as Json};

use crate::extract::Path;
use crate::{ApiError, AppState};

pub(crate) use items::{item, items};

/// The media type of the OpenAPI 3.0 document, exactly as the standard names it.
pub(crate) const OPENAPI_MEDIA_TYPE: &str = "application/vnd.oai.openapi+json;version=3.0";
const GEOJSON: &str = "application/geo+json";
const JSON_TYPE: &str = "application/json";
const HTML_TYPE: &str = "text/html";

/// The conformance classes this implementation passes.
pub(crate) const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
];

/// The CRSs every collection can be served in, storage CRS first.
pub(crate) const CRS_LIST: &[&str] = &[
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/2326",
    "http://www.opengis.net/def/crs/EPSG/0/3857",
];

/// What a request asked to get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    Json,
    Html,
}

/// The format from `f` (`json`, `geojson`, `html`), else from the `Accept` header (HTML only when a
/// browser prefers it), else JSON.
pub(crate) fn negotiate(f: Option<&str>, headers: &HeaderMap) -> Result<Out, ApiError> {
    match f {
        Some("json" | "geojson" | "application/json" | "application/geo+json") => return Ok(Out::Json),
        Some("html" | "text/html") => return Ok(Out::Html),
        Some(other) => {
            return Err(ApiError::BadRequest(format!("f: unknown format {other:?}; use json or html")))
        }
        None => {}
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let html = accept.split(',').position(|t| t.trim().starts_with("text/html"));
    let json = accept.split(',').position(|t| {
        t.trim().starts_with("application/json") || t.trim().starts_with("application/geo+json")
    });
    Ok(match (html, json) {
        (Some(h), Some(j)) if h < j => Out::Html,
        (Some(_), None) => Out::Html,
        _ => Out::Json,
    })
}

/// Checks that the query names only `allowed` parameters (and each once), returning them.
pub(crate) fn strict_params(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = crate::ckan::form_urlencoded(raw.unwrap_or(""));
    for (i, (k, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown query parameter {k:?}; this path takes {}",
                if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") }
            )));
        }
        if pairs[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(ApiError::BadRequest(format!("the query parameter {k:?} is given twice")));
        }
    }
    Ok(pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The absolute URL of this server, from the request's `Host` (links in OGC answers are absolute,
/// which every client follows).
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// One link of an answer.
pub(crate) fn link(href: &str, rel: &str, media: &str, title: &str) -> Json {
    json!({ "href": href, "rel": rel, "type": media, "title": title })
}

/// A JSON or HTML answer with its links also in `Link` headers.
pub(crate) fn answer(status: StatusCode, media: &str, body: Vec<u8>, links: &[Json]) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(media) {
        h.insert(header::CONTENT_TYPE, v);
    }
    for l in links {
        let (Some(href), Some(rel), Some(t)) = (l["href"].as_str(), l["rel"].as_str(), l["type"].as_str())
        else {
            continue;
        };
        if let Ok(v) = HeaderValue::from_str(&format!("<{href}>; rel=\"{rel}\"; type=\"{t}\"")) {
            h.append(header::LINK, v);
        }
    }
    resp
}

fn json_answer(body: &Json, media: &str, links: &[Json]) -> Response {
    answer(StatusCode::OK, media, serde_json::to_vec(body).unwrap_or_default(), links)
}

fn html_answer(page: String, links: &[Json]) -> Response {
    answer(StatusCode::OK, "text/html; charset=utf-8", page.into_bytes(), links)
}

/// A collection: a spatial resource under the id the API gives it.
#[derive(Debug, Clone)]
pub(crate) struct Collection {
    pub(crate) id: String,
    pub(crate) res: SpatialResource,
}

impl Collection {
    /// The title: the resource's when it has one, else the dataset's.
    pub(crate) fn title(&self) -> String {
        let own = self.res.title.best().filter(|t| !t.is_empty());
        let ds = self.res.meta.title.best().filter(|t| !t.is_empty());
        match (ds, own) {
            (Some(d), Some(r)) if d != r => format!("{d}: {r}"),
            (Some(d), _) => d.to_owned(),
            (None, Some(r)) => r.to_owned(),
            (None, None) => self.id.clone(),
        }
    }

    pub(crate) fn description(&self) -> String {
        self.res
            .description
            .best()
            .filter(|t| !t.is_empty())
            .or_else(|| self.res.meta.description.best())
            .unwrap_or("")
            .to_owned()
    }

    /// The schema's fields served as properties (the geometry column is the feature's geometry).
    pub(crate) fn properties(&self) -> impl Iterator<Item = &citydata_model::Field> {
        self.res.schema.fields.iter().filter(|f| f.name != self.res.spatial.column)
    }

    /// The field whose dates place features in time (the first date or datetime field).
    pub(crate) fn temporal(&self) -> Option<&citydata_model::Field> {
        self.properties().find(|f| matches!(f.field_type, FieldType::Date | FieldType::Datetime))
    }
}

/// The collections, with their ids: the dataset slug when it has one spatial resource.
pub(crate) fn collections_of(resources: Vec<SpatialResource>) -> Vec<Collection> {
    let mut out: Vec<Collection> = Vec::with_capacity(resources.len());
    for (i, r) in resources.iter().enumerate() {
        let alone = resources.iter().enumerate().all(|(j, o)| j == i || o.dataset != r.dataset);
        let id = if alone { r.dataset.clone() } else { format!("{}.{}", r.dataset, r.name) };
        out.push(Collection { id, res: r.clone() });
    }
    out
}

/// The collection `id`, or a 404 that says so.
pub(crate) fn find_collection(s: &AppState, id: &str) -> Result<Collection, ApiError> {
    let dataset = id.split('.').next().unwrap_or(id);
    collections_of(s.store.spatial_resources(Some(dataset))?)
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("collection {id:?}; /ogc/collections lists them")))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// The JSON of a collection (in the list and on its own).
fn collection_json(c: &Collection, base: &str) -> Json {
    let id = &c.id;
    let url = format!("{base}/ogc/collections/{id}");
    let extent = c
        .res
        .spatial
        .extent
        .map_or(Json::Null, |e| json!({ "spatial": { "bbox": [e], "crs": CRS_LIST[0] } }));
    let mut links = vec![
        link(&url, "self", JSON_TYPE, "This collection"),
        link(&format!("{url}?f=html"), "alternate", HTML_TYPE, "This collection as HTML"),
        link(&format!("{url}/items"), "items", GEOJSON, "The features"),
        link(&format!("{url}/items?f=html"), "items", HTML_TYPE, "The features as HTML"),
        link(
            &format!("{url}/queryables"),
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "application/schema+json",
            "The queryable properties",
        ),
        link(
            &format!("{base}/tiles/{id}.json"),
            "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            JSON_TYPE,
            "Vector tiles (TileJSON)",
        ),
        link(&format!("{base}/api/v1/datasets/{}", c.res.dataset), "describedby", JSON_TYPE, "The dataset"),
    ];
    if let Some(l) = c.res.meta.license.as_deref() {
        links.push(json!({ "href": format!("{base}/api/v1/datasets/{}", c.res.dataset), "rel": "license", "type": JSON_TYPE, "title": l }));
    }
    json!({
        "id": id,
        "title": c.title(),
        "description": c.description(),
        "keywords": c.res.meta.tags,
        "itemType": "feature",
        "extent": extent,
        "crs": CRS_LIST,
        "storageCrs": CRS_LIST[0],
        "links": links,
    })
}

/// The answer format and the base URL of a request that takes no parameter but `f`.
fn format_only(raw: Option<&str>, headers: &HeaderMap) -> Result<(Out, String), ApiError> {
    let pairs = strict_params(raw, &["f"])?;
    Ok((negotiate(param(&pairs, "f"), headers)?, base_url(headers)))
}

/// `GET /ogc`
pub(crate) async fn landing(
    State(_s): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, OgcError> {
    let (out, base) = format_only(raw.as_deref(), &headers)?;
    let links = vec![
        link(
            &format!("{base}/ogc"),
            if out == Out::Json { "self" } else { "alternate" },
            JSON_TYPE,
            "This document",
        ),
        link(
            &format!("{base}/ogc?f=html"),
            if out == Out::Html { "self" } else { "alternate" },
            HTML_TYPE,
            "This document as HTML",
        ),
        link(&format!("{base}/ogc/api"), "service-desc", OPENAPI_MEDIA_TYPE, "The API definition"),
        link(&format!("{base}/ogc/api?f=html"), "service-doc", HTML_TYPE, "The API documentation"),
        link(&format!("{base}/ogc/conformance"), "conformance", JSON_TYPE, "Conformance classes"),
        link(&format!("{base}/ogc/collections"), "data", JSON_TYPE, "The collections"),
    ];
    let title = "citydata: OGC API - Features";
    let description = "Every spatial dataset of the city as features: GeoJSON and HTML, in WGS 84, \
                       the Hong Kong 1980 Grid and Web Mercator, filtered with CQL2.";
    Ok(match out {
        Out::Json => json_answer(
            &json!({ "title": title, "description": description, "links": links }),
            JSON_TYPE,
            &links,
        ),
        Out::Html => html_answer(html::landing(title, description, &base), &links),
    })
}

/// `GET /ogc/conformance`
pub(crate) async fn conformance(
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, OgcError> {
    let (out, base) = format_only(raw.as_deref(), &headers)?;
    let links = vec![
        link(&format!("{base}/ogc/conformance"), "self", JSON_TYPE, "This document"),
        link(&format!("{base}/ogc/conformance?f=html"), "alternate", HTML_TYPE, "This document as HTML"),
    ];
    Ok(match out {
        Out::Json => json_answer(&json!({ "conformsTo": CONFORMANCE, "links": links }), JSON_TYPE, &links),
        Out::Html => html_answer(html::conformance(), &links),
    })
}

/// `GET /ogc/api`: the OpenAPI 3.0 document of this API, with every collection's queryables as
/// parameters of its items path.
pub(crate) async fn api_definition(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, OgcError> {
    let pairs = strict_params(raw.as_deref(), &["f"])?;
    let out = match param(&pairs, "f") {
        Some("html" | "text/html") => Out::Html,
        Some("json" | "application/json" | "application/vnd.oai.openapi+json") | None => Out::Json,
        Some(other) => {
            return Err(ApiError::BadRequest(format!("f: unknown format {other:?}; use json or html")).into())
        }
    };
    let base = base_url(&headers);
    let store = s.store.clone();
    let collections = blocking(move || Ok(collections_of(store.spatial_resources(None)?))).await?;
    let doc = api::document(&base, &collections);
    let links = vec![link(&format!("{base}/ogc/api"), "self", OPENAPI_MEDIA_TYPE, "This document")];
    Ok(match out {
        Out::Json => json_answer(&doc, OPENAPI_MEDIA_TYPE, &links),
        Out::Html => html_answer(html::api_page(&doc, &base), &links),
    })
}

/// `GET /ogc/collections`
pub(crate) async fn collections(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, OgcError> {
    let (out, base) = format_only(raw.as_deref(), &headers)?;
    let store = s.store.clone();
    let all = blocking(move || Ok(collections_of(store.spatial_resources(None)?))).await?;
    let links = vec![
        link(&format!("{base}/ogc/collections"), "self", JSON_TYPE, "The collections"),
        link(&format!("{base}/ogc/collections?f=html"), "alternate", HTML_TYPE, "The collections as HTML"),
    ];
    Ok(match out {
        Out::Json => {
            let list: Vec<Json> = all.iter().map(|c| collection_json(c, &base)).collect();
            json_answer(&json!({ "collections": list, "crs": CRS_LIST, "links": links }), JSON_TYPE, &links)
        }
        Out::Html => html_answer(html::collections(&all, &base), &links),
    })
}

/// `GET /ogc/collections/{collectionId}`
pub(crate) async fn collection(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, OgcError> {
    let (out, base) = format_only(raw.as_deref(), &headers)?;
    let c = blocking(move || find_collection(&s, &id)).await?;
    let body = collection_json(&c, &base);
    let links: Vec<Json> = body["links"].as_array().cloned().unwrap_or_default();
    Ok(match out {
        Out::Json => json_answer(&body, JSON_TYPE, &links),
        Out::Html => html_answer(html::collection(&c, &base), &links),
    })
}

/// The JSON Schema type of a field, as queryables and the OpenAPI document give it.
pub(crate) fn field_schema(t: FieldType) -> Json {
    match t {
        FieldType::Integer => json!({ "type": "integer" }),
        FieldType::Number => json!({ "type": "number" }),
        FieldType::Boolean => json!({ "type": "boolean" }),
        FieldType::Date => json!({ "type": "string", "format": "date" }),
        FieldType::Datetime => json!({ "type": "string", "format": "date-time" }),
        FieldType::Time => json!({ "type": "string", "format": "time" }),
        FieldType::Geometry => json!({ "format": "geometry-any" }),
        _ => json!({ "type": "string" }),
    }
}

/// `GET /ogc/collections/{collectionId}/queryables`
pub(crate) async fn queryables(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, OgcError> {
    let (out, base) = format_only(raw.as_deref(), &headers)?;
    let c = blocking(move || find_collection(&s, &id)).await?;
    let url = format!("{base}/ogc/collections/{}/queryables", c.id);
    let mut props = serde_json::Map::new();
    props.insert(
        "geometry".to_owned(),
        json!({ "title": "The feature's geometry", "format": geometry_format(&c.res.spatial.types), "x-ogc-role": "primary-geometry" }),
    );
    for f in c.properties() {
        let mut sch = field_schema(f.field_type);
        if let Some(o) = sch.as_object_mut() {
            o.insert("title".into(), json!(f.title.as_deref().unwrap_or(&f.name)));
            if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
                o.insert("description".into(), json!(d));
            }
        }
        props.insert(f.name.clone(), sch);
    }
    let body = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": c.title(),
        "properties": props,
        "additionalProperties": false,
    });
    let links = vec![link(&url, "self", "application/schema+json", "The queryables")];
    Ok(match out {
        Out::Json => json_answer(&body, "application/schema+json", &links),
        Out::Html => html_answer(html::queryables(&c, &body, &base), &links),
    })
}

/// The queryables' `format` of a collection's geometry, from the types it holds.
fn geometry_format(types: &[String]) -> &'static str {
    match types {
        [t] => match t.as_str() {
            "Point" => "geometry-point",
            "MultiPoint" => "geometry-multipoint",
            "LineString" => "geometry-linestring",
            "MultiLineString" => "geometry-multilinestring",
            "Polygon" => "geometry-polygon",
            "MultiPolygon" => "geometry-multipolygon",
            "GeometryCollection" => "geometry-geometrycollection",
            _ => "geometry-any",
        },
        _ => "geometry-any",
    }
}

/// The answer of OGC routes to errors: the exception shape of the standard (`code`,
/// `description`), with the status of the [`ApiError`].
pub(crate) struct OgcError(pub(crate) ApiError);

impl From<ApiError> for OgcError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for OgcError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self.0 {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "NotFound", m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "InvalidParameterValue", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable", m),
            ApiError::MethodNotAllowed(m) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", m),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", m),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServerError",
                    "internal error; it has been logged".to_owned(),
                )
            }
        };
        let body = json!({ "code": code, "description": description });
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
        resp
    }
}
