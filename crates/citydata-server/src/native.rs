//! The native JSON API under `/api/v1`: datasets with their resources, schemas and versions, rows,
//! and the original bytes of every version.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use citydata_store::{
    Dataset, FacetField, Filter, Op, Resource, RowQuery, SearchQuery, SearchSort, SortKey, Version,
};
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};

use crate::extract::{Path, Query};
use crate::stream::{self, JsonFrame, RowFormat};
use crate::{ApiError, AppState};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// `GET /api/v1/status`
pub(crate) async fn status(State(s): State<AppState>) -> Result<Json<JsonValue>, ApiError> {
    let n = blocking(move || Ok(s.store.dataset_slugs()?.len())).await?;
    Ok(Json(json!({ "name": "citydata", "version": env!("CARGO_PKG_VERSION"), "datasets": n })))
}

fn version_json(slug: &str, r: &Resource, v: &Version) -> JsonValue {
    json!({
        "number": v.number,
        "sha256": v.sha256,
        "bytes": v.bytes,
        "filename": v.filename,
        "format": v.format,
        "media_type": v.media_type,
        "encoding": v.encoding,
        "row_count": v.row_count,
        "created": v.created,
        "publisher": v.publisher,
        "schema": v.schema,
        "skipped_rows": v.skipped,
        "spatial": v.spatial,
        "download_url": format!("/api/v1/datasets/{slug}/resources/{}/versions/{}/download", r.name, v.number),
    })
}

fn dataset_json(d: &Dataset, full: bool) -> JsonValue {
    let m = &d.meta;
    let mut out = json!({
        "slug": d.slug,
        "title": m.title,
        "description": m.description,
        "organization": d.organization.as_ref().map(|o| json!({ "slug": o.slug, "title": o.title })),
        "tags": m.tags,
        "license": m.license,
        "frequency": m.frequency,
        "theme": m.theme,
        "source": m.source,
        "created": d.created,
        "modified": d.modified,
        "url": format!("/api/v1/datasets/{}", d.slug),
    });
    let resources: Vec<JsonValue> = d
        .resources
        .iter()
        .map(|r| {
            let cur = r.current();
            let mut res = json!({
                "id": r.id,
                "name": r.name,
                "title": r.title,
                "description": r.description,
                "format": cur.map(|v| v.format.clone()),
                "row_count": cur.map(|v| v.row_count),
                "current_version": cur.map(|v| v.number),
                "rows_url": format!("/api/v1/datasets/{}/resources/{}/rows", d.slug, r.name),
            });
            if full {
                res["schema"] = json!(cur.map(|v| &v.schema));
                res["download_url"] = json!(cur.map(|v| format!(
                    "/api/v1/datasets/{}/resources/{}/versions/{}/download",
                    d.slug, r.name, v.number
                )));
                res["versions"] = r.versions.iter().map(|v| version_json(&d.slug, r, v)).collect();
            }
            res
        })
        .collect();
    out["resources"] = JsonValue::Array(resources);
    out
}

/// `GET /api/v1/datasets`: the catalogue, searched and paged (see the OpenAPI document).
pub(crate) async fn datasets(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<JsonValue>, ApiError> {
    let pairs = crate::ckan::form_urlencoded(raw.as_deref().unwrap_or(""));
    let mut q = SearchQuery { rows: 100, ..SearchQuery::default() };
    let bad = |k: &str, what: &str| ApiError::BadRequest(format!("{k}: {what}"));
    for (k, v) in &pairs {
        match k.as_str() {
            "q" => q.q.clone_from(v),
            "limit" => {
                q.rows = v.parse().map_err(|_| bad(k, "must be a whole number"))?;
                if q.rows > 1000 {
                    return Err(bad(k, "must be at most 1000"));
                }
            }
            "offset" => q.start = v.parse().map_err(|_| bad(k, "must be a whole number"))?,
            "sort" => {
                q.sort = match v.as_str() {
                    "relevance" => SearchSort::Relevance,
                    "-modified" => SearchSort::ModifiedDesc,
                    "modified" => SearchSort::ModifiedAsc,
                    "title" => SearchSort::TitleAsc,
                    "-title" => SearchSort::TitleDesc,
                    "name" => SearchSort::NameAsc,
                    "-name" => SearchSort::NameDesc,
                    _ => return Err(bad(k, "must be relevance, modified, -modified, title, -title, name or -name")),
                }
            }
            "facets" => {
                for f in v.split(',').filter(|f| !f.is_empty()) {
                    q.facets.push(FacetField::parse(f).ok_or_else(|| {
                        bad(k, "facets are organization, tag, format, theme and license")
                    })?);
                }
                q.facet_limit = 50;
            }
            other => match FacetField::parse(other) {
                Some(f) => q.filters.push((f, v.clone())),
                None => {
                    return Err(bad(
                        other,
                        "unknown parameter: use q, limit, offset, sort, facets, or a filter on organization, tag, format, theme, license",
                    ))
                }
            },
        }
    }
    let wants_orgs = q.facets.contains(&FacetField::Organization);
    let (found, list, org_titles) = blocking(move || {
        let found = s.store.search(&q)?;
        let mut out = Vec::new();
        for slug in &found.slugs {
            if let Some(d) = s.store.dataset(slug)? {
                out.push(dataset_json(&d, false));
            }
        }
        // The organisation facet gives slugs; readers want names.
        let titles: std::collections::HashMap<String, JsonValue> = if wants_orgs {
            s.store.organizations()?.into_iter().map(|(o, _)| (o.slug, json!(o.title))).collect()
        } else {
            Default::default()
        };
        Ok((found, out, titles))
    })
    .await?;
    let facets: serde_json::Map<String, JsonValue> = found
        .facets
        .iter()
        .map(|(f, values)| {
            let items: Vec<JsonValue> = values
                .iter()
                .map(|(v, n)| match (f, org_titles.get(v)) {
                    (FacetField::Organization, Some(title)) => {
                        json!({ "value": v, "count": n, "title": title })
                    }
                    _ => json!({ "value": v, "count": n }),
                })
                .collect();
            (facet_name(*f).to_owned(), JsonValue::Array(items))
        })
        .collect();
    Ok(Json(json!({ "count": found.count, "datasets": list, "facets": facets })))
}

/// The native name of a facet (the metadata key it comes from).
fn facet_name(f: FacetField) -> &'static str {
    match f {
        FacetField::Organization => "organization",
        FacetField::Tag => "tag",
        FacetField::Format => "format",
        FacetField::Theme => "theme",
        FacetField::License => "license",
    }
}

fn find_dataset(s: &AppState, slug: &str) -> Result<Dataset, ApiError> {
    s.store.dataset(slug)?.ok_or_else(|| ApiError::NotFound(format!("dataset {slug:?} not found")))
}

fn find_resource<'d>(d: &'d Dataset, name: &str) -> Result<&'d Resource, ApiError> {
    d.resources
        .iter()
        .find(|r| r.name == name || r.id == name)
        .ok_or_else(|| ApiError::NotFound(format!("dataset {:?} has no resource {name:?}", d.slug)))
}

/// The native JSON of a dataset (as `GET /api/v1/datasets/{slug}` gives it), or None.
pub(crate) async fn dataset_value(s: &AppState, slug: String) -> Result<Option<JsonValue>, ApiError> {
    let s = s.clone();
    blocking(move || Ok(s.store.dataset(&slug)?.map(|d| dataset_json(&d, true)))).await
}

/// `GET /api/v1/datasets/{slug}`
pub(crate) async fn dataset(
    State(s): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<JsonValue>, ApiError> {
    let d = blocking(move || find_dataset(&s, &slug)).await?;
    Ok(Json(dataset_json(&d, true)))
}

/// The most rows one page of `rows` returns.
const MAX_LIMIT: u32 = 10_000;

/// The default cap of exact totals: counted exactly up to it, estimated beyond.
const TOTAL_CAP: u64 = 10_000;

/// Parses the native rows query: `_`-prefixed controls, every other parameter a column filter
/// (`col=v` for equality, `col__op=v` for the other operators; repeated values match any). The
/// spatial controls `_bbox` and `_near` become the query's condition; `_district` is returned for
/// the caller to look up.
pub(crate) fn row_query(
    pairs: &[(String, String)],
) -> Result<(RowQuery, RowFormat, Option<String>), ApiError> {
    let mut q = RowQuery { limit: 100, total: Some(TOTAL_CAP), ..RowQuery::default() };
    let mut format = "json".to_owned();
    let mut bom = false;
    let mut filters: Vec<Filter> = Vec::new();
    let mut conds = Vec::new();
    let mut district = None;
    let bad = |name: &str, what: &str| ApiError::BadRequest(format!("{name}: {what}"));
    for (k, v) in pairs {
        match k.as_str() {
            "_limit" | "_size" => {
                q.limit = v.parse().map_err(|_| bad(k, "must be a whole number"))?;
                if q.limit > MAX_LIMIT {
                    return Err(bad(k, &format!("must be at most {MAX_LIMIT}")));
                }
            }
            "_offset" => q.offset = v.parse().map_err(|_| bad(k, "must be a whole number"))?,
            "_next" => q.after = Some(v.clone()),
            "_q" | "_search" => q.q = Some(v.clone()).filter(|v| !v.trim().is_empty()),
            "_sort" => {
                for key in v.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    q.sort.push(match key.strip_prefix('-') {
                        Some(c) => SortKey::desc(c),
                        None => SortKey::asc(key),
                    });
                }
            }
            "_sort_desc" => q.sort.push(SortKey::desc(v.clone())),
            "_fields" | "_col" => {
                q.fields
                    .get_or_insert_with(Vec::new)
                    .extend(v.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            }
            "_total" => {
                q.total = match v.as_str() {
                    "false" | "0" | "none" => None,
                    "exact" => Some(u64::MAX),
                    n => Some(n.parse().map_err(|_| bad(k, "must be a count cap, exact or none"))?),
                }
            }
            "_facet" => q.facets.push(v.clone()),
            "_facet_size" => q.facet_limit = v.parse().map_err(|_| bad(k, "must be a whole number"))?,
            "_distinct" => q.distinct = flag(v).ok_or_else(|| bad(k, "must be true or false"))?,
            "_format" => format.clone_from(v),
            "_bom" => bom = flag(v).ok_or_else(|| bad(k, "must be true or false"))?,
            "_bbox" => {
                conds.push(crate::spatial::bbox_cond(v, citydata_geo::Crs::Crs84).map_err(|e| bad(k, &e))?)
            }
            "_near" => conds.push(crate::spatial::near_cond(v).map_err(|e| bad(k, &e))?),
            "_district" => district = Some(v.clone()),
            k if k.starts_with('_') && k != "_id" && !k.starts_with("_id__") => {
                return Err(bad(k, "unknown parameter (controls are _limit, _offset, _next, _sort, _sort_desc, _fields, _q, _total, _facet, _facet_size, _distinct, _format, _bom, _bbox, _near, _district; anything else filters a column)"));
            }
            k => {
                let (column, op) = match k.rsplit_once("__") {
                    Some((c, o)) => match Op::from_name(o) {
                        Some(op) => (c, op),
                        None => match o {
                            "exact" => (c, Op::Eq),
                            "not" => (c, Op::Ne),
                            "lte" => (c, Op::Le),
                            "gte" => (c, Op::Ge),
                            "startswith" | "starts" => (c, Op::StartsWith),
                            _ => (k, Op::Eq),
                        },
                    },
                    None => (k, Op::Eq),
                };
                let values: Vec<String> = match op {
                    Op::In => v.split(',').map(str::to_owned).collect(),
                    Op::IsNull | Op::NotNull => Vec::new(),
                    _ => vec![v.clone()],
                };
                match filters
                    .iter_mut()
                    .find(|f| f.column == column && f.op == op && matches!(op, Op::Eq | Op::In))
                {
                    Some(f) => f.values.extend(values),
                    None => filters.push(Filter::new(column, op, values)),
                }
            }
        }
    }
    q.filters = filters;
    q.cond = (!conds.is_empty()).then(|| citydata_store::Cond::all(conds));
    Ok((q, RowFormat::parse(&format, bom)?, district))
}

/// A yes-or-no parameter: `true`, `1`, `yes` or `false`, `0`, `no` (any case); empty is no.
fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

/// `GET /api/v1/datasets/{slug}/resources/{resource}/rows`
pub(crate) async fn rows(
    State(s): State<AppState>,
    Path((slug, resource)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = crate::ckan::form_urlencoded(raw.as_deref().unwrap_or(""));
    let (mut query, format, district) = row_query(&pairs)?;
    if let Some(name) = district {
        let store = s.store.clone();
        let inside = blocking(move || crate::spatial::district_cond(&store, &name)).await?;
        query.cond = Some(match query.cond.take() {
            Some(c) => citydata_store::Cond::all(vec![c, inside]),
            None => inside,
        });
    }
    // The dataset and resource are looked up in the query's own blocking task.
    let resolve = move |s: &AppState| {
        let d = find_dataset(s, &slug)?;
        let r = find_resource(&d, &resource)?;
        let name = r.name.clone();
        let kept: Vec<(String, String)> =
            pairs.into_iter().filter(|(k, _)| k != "_next" && k != "_offset").collect();
        let base = format!("/api/v1/datasets/{slug}/resources/{name}/rows");
        let frame = JsonFrame {
            next_url: Box::new(move |token| {
                let mut q: Vec<String> =
                    kept.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
                q.push(format!("_next={}", encode(token)));
                format!("{base}?{}", q.join("&"))
            }),
        };
        let filename = match format {
            RowFormat::Json => None,
            RowFormat::Csv { delimiter: b'\t', .. } => Some(format!("{name}.tsv")),
            RowFormat::Csv { .. } => Some(format!("{name}.csv")),
            RowFormat::Ndjson => Some(format!("{name}.ndjson")),
            RowFormat::GeoJson => Some(format!("{name}.geojson")),
        };
        let filename = filename.map(|f| {
            f.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect()
        });
        Ok(stream::Target { resource_id: r.id.clone(), frame: Some(frame), filename })
    };
    stream::rows_response(s, resolve, query, format).await
}

/// Percent-encodes a query-string component.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Streams a blob out of the store without holding it in memory: a blocking task writes chunks
/// into a bounded channel that the response body reads.
fn stream_blob(s: AppState, sha256: String) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);
        impl Write for ChannelWriter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .blocking_send(Ok(Bytes::copy_from_slice(buf)))
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = ChannelWriter(tx.clone());
        if let Err(e) = s.store.write_blob(&sha256, &mut w) {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Body::from_stream(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
    ))
}

pub(crate) fn blob_response(
    s: AppState,
    sha256: String,
    size: i64,
    media_type: &str,
    filename: Option<&str>,
) -> Response {
    let mut resp = Response::new(stream_blob(s, sha256.clone()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(media_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    if let Some(name) = filename {
        let ascii: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' })
            .collect();
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        if let Ok(v) =
            HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    resp
}

/// `GET /api/v1/datasets/{slug}/resources/{resource}/versions/{number}/download`
pub(crate) async fn download(
    State(s): State<AppState>,
    Path((slug, resource, number)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.bytes().all(|b| b == b'0') {
        return Err(ApiError::BadRequest(format!(
            "version {number:?} is not a version number: versions are numbered 1, 2, 3, ..."
        )));
    }
    let s2 = s.clone();
    let v = blocking(move || {
        let d = find_dataset(&s2, &slug)?;
        let r = find_resource(&d, &resource)?;
        // A number past i64 names no version, like any other number that was never published.
        let wanted = number.parse::<i64>().ok();
        r.versions
            .iter()
            .find(|v| Some(v.number) == wanted)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("resource {resource:?} has no version {number}")))
    })
    .await?;
    Ok(blob_response(s, v.sha256.clone(), v.bytes, &v.media_type, Some(&v.filename)))
}

/// When to take a resource's file: `at` as RFC 3339 or as the archive's `YYYYMMDD-HHMM` (Hong
/// Kong time); the latest version when absent.
#[derive(Deserialize)]
pub(crate) struct At {
    at: Option<String>,
}

/// `GET /api/v1/datasets/{slug}/resources/{resource}/download`: the current version's bytes, or
/// those of the version in force at `at`.
pub(crate) async fn download_at(
    State(s): State<AppState>,
    Path((slug, resource)): Path<(String, String)>,
    Query(at): Query<At>,
) -> Result<Response, ApiError> {
    let at = match at.at.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .ok()
                .or_else(|| crate::archive::parse_instant(t))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "at {t:?} is not a time: use RFC 3339 (2024-01-31T09:30:00+08:00) or YYYYMMDD-HHMM"
                    ))
                })?,
        ),
    };
    let s2 = s.clone();
    let v = blocking(move || {
        let d = find_dataset(&s2, &slug)?;
        let r = find_resource(&d, &resource)?;
        let v = match at {
            None => r.current(),
            Some(at) => crate::archive::version_at(r, at),
        };
        v.cloned()
            .ok_or_else(|| ApiError::NotFound(format!("resource {resource:?} had no version at that time")))
    })
    .await?;
    Ok(blob_response(s, v.sha256.clone(), v.bytes, &v.media_type, Some(&v.filename)))
}

/// `GET /api/v1/blobs/{sha256}`
pub(crate) async fn blob(
    State(s): State<AppState>,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(ApiError::BadRequest(
            "a blob is named by its SHA-256 in 64 lower-case hex digits".into(),
        ));
    }
    let (s2, sha2) = (s.clone(), sha256.clone());
    let size = blocking(move || Ok(s2.store.blob_size(&sha2)?)).await?;
    let size = size.ok_or_else(|| ApiError::NotFound(format!("blob {sha256} not found")))?;
    Ok(blob_response(s, sha256, size, "application/octet-stream", None).into_response())
}
