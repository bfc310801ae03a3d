//! The features of a collection: `/ogc/collections/{id}/items` (a page, filtered) and
//! `/ogc/collections/{id}/items/{featureId}` (one).
//!
//! Filters combine with AND: `bbox` (in `bbox-crs`), `datetime` (on the collection's first date
//! property; a collection without one ignores it), each property given as a query parameter (equal
//! to the value), and `filter` (CQL2 text or JSON, geometries in `filter-crs`). Pages are by
//! `offset`, which the `next` links carry. Geometries are stored in WGS 84; answers in CRS84 copy
//! them as they are, answers in another `crs` transform each one.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use citydata_geo::Crs;
use citydata_model::{FieldType, Value};
use citydata_store::{Cond, Filter, Head, Op, RowQuery, RowSink, StoreError};
use serde_json::Value as Json;

use super::{
    answer, base_url, blocking, find_collection, link, negotiate, param, strict_params, Collection, OgcError,
    Out, GEOJSON, HTML_TYPE,
};
use crate::extract::Path;
use crate::ApiError;

/// The most features in one page, and the default.
pub(crate) const MAX_LIMIT: u32 = 10_000;
const DEFAULT_LIMIT: u32 = 10;

/// Matches are counted exactly up to this many; beyond it `numberMatched` is left out.
const COUNT_CAP: u64 = 1_000_000;

/// The query parameters of the items path besides the collection's properties.
const ITEM_PARAMS: &[&str] =
    &["f", "limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang", "filter-crs"];

fn bad(name: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{name}: {what}"))
}

/// A CRS parameter: a URI of a supported CRS.
fn crs_param(pairs: &[(String, String)], name: &str) -> Result<Crs, ApiError> {
    match param(pairs, name) {
        None => Ok(Crs::Crs84),
        Some(uri) => {
            Crs::from_uri(uri.trim().trim_start_matches('[').trim_end_matches(']')).map_err(|e| bad(name, e))
        }
    }
}

/// The row query of an items request, and the CRS of its answer.
struct Request {
    query: RowQuery,
    crs: Crs,
    limit: u32,
    offset: u64,
    out: Out,
}

fn parse_items(c: &Collection, pairs: &[(String, String)], headers: &HeaderMap) -> Result<Request, ApiError> {
    let out = negotiate(param(pairs, "f"), headers)?;
    let limit = match param(pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(bad("limit", format!("{v:?} is not a whole number from 1 to {MAX_LIMIT}"))),
        },
    };
    let offset = match param(pairs, "offset") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| bad("offset", format!("{v:?} is not a whole number from 0")))?,
    };
    let crs = crs_param(pairs, "crs")?;
    let bbox_crs = crs_param(pairs, "bbox-crs")?;
    if param(pairs, "bbox-crs").is_some() && param(pairs, "bbox").is_none() {
        return Err(bad("bbox-crs", "is given without bbox"));
    }
    let mut conds = Vec::new();
    let column = c.res.spatial.column.clone();
    if let Some(b) = param(pairs, "bbox") {
        conds.push(crate::spatial::bbox_cond(b, bbox_crs).map_err(|e| bad("bbox", e))?);
    }
    if let Some(dt) = param(pairs, "datetime") {
        // Checked even when the collection has no date property (then it selects every feature).
        let cond = crate::cql2::datetime_cond(dt, c.temporal().map_or("", |f| f.name.as_str()))
            .map_err(|e| bad("datetime", e))?;
        if c.temporal().is_some() {
            conds.push(cond);
        }
    }
    let filter_crs = crs_param(pairs, "filter-crs")?;
    if let Some(text) = param(pairs, "filter") {
        let lang =
            crate::cql2::FilterLang::parse(param(pairs, "filter-lang")).map_err(|e| bad("filter-lang", e))?;
        // Geometry literals are in the filter CRS's own axis order.
        let to_wgs84 = move |a: f64, b: f64| {
            let (x, y) = if filter_crs.swaps_axes() { (b, a) } else { (a, b) };
            citydata_geo::to_wgs84(filter_crs, x, y)
        };
        conds.push(crate::cql2::parse(lang, text, &to_wgs84).map_err(|e| bad("filter", e))?);
    } else if param(pairs, "filter-lang").is_some() || param(pairs, "filter-crs").is_some() {
        return Err(bad("filter-lang", "filter-lang and filter-crs need a filter"));
    }
    let mut filters = Vec::new();
    for (k, v) in pairs {
        if ITEM_PARAMS.contains(&k.as_str()) {
            continue;
        }
        filters.push(Filter { column: k.clone(), op: Op::Eq, values: vec![v.clone()] });
    }
    let mut fields = vec!["_id".to_owned(), column];
    fields.extend(c.properties().map(|f| f.name.clone()));
    let query = RowQuery {
        filters,
        cond: if conds.is_empty() { None } else { Some(Cond::all(conds)) },
        fields: Some(fields),
        limit,
        offset,
        total: Some(COUNT_CAP),
        facet_limit: 0,
        ..RowQuery::default()
    };
    Ok(Request { query, crs, limit, offset, out })
}

/// Writes features as GeoJSON: `_id` is the id, the second column the geometry, the rest properties.
struct FeatureWriter {
    buf: Vec<u8>,
    crs: Crs,
    types: Vec<FieldType>,
    keys: Vec<Vec<u8>>,
    rows: u64,
    head: Option<Head>,
    scratch: String,
}

impl FeatureWriter {
    fn new(crs: Crs) -> Self {
        Self {
            buf: Vec::with_capacity(16 * 1024),
            crs,
            types: Vec::new(),
            keys: Vec::new(),
            rows: 0,
            head: None,
            scratch: String::new(),
        }
    }

    fn geometry(&mut self, v: &Value<'_>) {
        let Value::Text(t) = v else {
            self.buf.extend_from_slice(b"null");
            return;
        };
        if self.crs == Crs::Crs84 {
            self.buf.extend_from_slice(t.as_bytes());
            return;
        }
        let parsed =
            serde_json::from_str::<Json>(t).ok().and_then(|j| citydata_geo::geometry::parse_geojson(&j).ok());
        match parsed {
            Some(mut g) => {
                citydata_geo::geometry::transform(&mut g, Crs::Crs84, self.crs);
                self.scratch.clear();
                citydata_geo::geometry::write_geojson(
                    &g,
                    self.crs.decimals(),
                    self.crs.swaps_axes(),
                    &mut self.scratch,
                );
                self.buf.extend_from_slice(self.scratch.as_bytes());
            }
            None => self.buf.extend_from_slice(b"null"),
        }
    }
}

impl RowSink for FeatureWriter {
    fn head(&mut self, head: &Head) -> Result<(), StoreError> {
        self.types = head.columns.iter().map(|c| c.field_type).collect();
        self.keys = crate::stream::json_keys(head);
        self.head = Some(head.clone());
        Ok(())
    }

    fn row(&mut self, values: &[Value<'_>]) -> Result<(), StoreError> {
        if self.rows > 0 {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(b"{\"type\":\"Feature\",\"id\":");
        crate::stream::json_value(&mut self.buf, values.first().unwrap_or(&Value::Null), FieldType::Integer);
        self.buf.extend_from_slice(b",\"geometry\":");
        self.geometry(values.get(1).unwrap_or(&Value::Null));
        self.buf.extend_from_slice(b",\"properties\":{");
        for (i, v) in values.iter().enumerate().skip(2) {
            if i > 2 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(&self.keys[i]);
            self.buf.push(b':');
            crate::stream::json_value(&mut self.buf, v, self.types[i]);
        }
        self.buf.extend_from_slice(b"}}");
        self.rows += 1;
        Ok(())
    }
}

fn now() -> String {
    let t = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn with_content_crs(mut resp: Response, crs: Crs) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("<{}>", crs.uri())) {
        resp.headers_mut().insert("content-crs", v);
    }
    resp
}

/// The query string of `pairs` with `offset` set to `offset` (for paging links) and `f` to `f`.
fn page_url(base: &str, pairs: &[(String, String)], offset: u64, f: Option<&str>) -> String {
    let mut out: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| k != "offset" && k != "f").cloned().collect();
    if offset > 0 {
        out.push(("offset".into(), offset.to_string()));
    }
    if let Some(f) = f {
        out.push(("f".into(), f.into()));
    }
    let qs = serde_urlencoded::to_string(&out).unwrap_or_default();
    if qs.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{qs}")
    }
}

/// `GET /ogc/collections/{collectionId}/items`
pub(crate) async fn items(
    State(s): State<crate::AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, OgcError> {
    let base = base_url(&headers);
    let (c, req, pairs, w, more) = blocking(move || {
        let c = find_collection(&s, &id)?;
        let props: Vec<String> = c.properties().map(|f| f.name.clone()).collect();
        let mut allowed: Vec<&str> = ITEM_PARAMS.to_vec();
        allowed.extend(props.iter().map(String::as_str));
        let pairs = strict_params(raw.as_deref(), &allowed)?;
        let req = parse_items(&c, &pairs, &headers)?;
        let mut w = FeatureWriter::new(req.crs);
        w.buf.extend_from_slice(b"{\"type\":\"FeatureCollection\",\"features\":[");
        let next = s.store.query_rows(&c.res.id, &req.query, &mut w)?;
        Ok((c, req, pairs, w, next.is_some()))
    })
    .await?;
    let FeatureWriter { mut buf, rows, head, .. } = w;
    let url = format!("{base}/ogc/collections/{}/items", c.id);
    let matched = head.and_then(|h| h.total).filter(|t| t.exact).map(|t| t.count);
    let mut links = vec![
        link(&page_url(&url, &pairs, req.offset, None), "self", GEOJSON, "This page"),
        link(&page_url(&url, &pairs, req.offset, Some("html")), "alternate", HTML_TYPE, "This page as HTML"),
        link(&format!("{base}/ogc/collections/{}", c.id), "collection", "application/json", "The collection"),
        link(
            &format!("{base}/ogc/collections/{}/queryables", c.id),
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "application/schema+json",
            "The queryable properties",
        ),
    ];
    let has_next = more || matched.is_some_and(|m| req.offset + rows < m && rows == u64::from(req.limit));
    if has_next {
        let next = req.offset + u64::from(req.limit);
        links.push(link(&page_url(&url, &pairs, next, None), "next", GEOJSON, "The next page"));
        links.push(link(
            &page_url(&url, &pairs, next, Some("html")),
            "next",
            HTML_TYPE,
            "The next page as HTML",
        ));
    }
    if req.offset > 0 {
        let prev = req.offset.saturating_sub(u64::from(req.limit));
        links.push(link(&page_url(&url, &pairs, prev, None), "prev", GEOJSON, "The previous page"));
        links.push(link(
            &page_url(&url, &pairs, prev, Some("html")),
            "prev",
            HTML_TYPE,
            "The previous page as HTML",
        ));
    }
    buf.extend_from_slice(b"],\"numberReturned\":");
    buf.extend_from_slice(rows.to_string().as_bytes());
    if let Some(m) = matched {
        buf.extend_from_slice(b",\"numberMatched\":");
        buf.extend_from_slice(m.to_string().as_bytes());
    }
    buf.extend_from_slice(b",\"timeStamp\":");
    let _ = serde_json::to_writer(&mut buf, &now());
    buf.extend_from_slice(b",\"links\":");
    let _ = serde_json::to_writer(&mut buf, &links);
    buf.extend_from_slice(b"}\n");
    let resp = match req.out {
        Out::Json => answer(StatusCode::OK, GEOJSON, buf, &links),
        Out::Html => {
            let doc: Json = serde_json::from_slice(&buf).map_err(|e| ApiError::Internal(e.to_string()))?;
            answer(
                StatusCode::OK,
                "text/html; charset=utf-8",
                super::html::features(&c, &doc, &links).into_bytes(),
                &links,
            )
        }
    };
    Ok(with_content_crs(resp, req.crs))
}

/// `GET /ogc/collections/{collectionId}/items/{featureId}`
pub(crate) async fn item(
    State(s): State<crate::AppState>,
    headers: HeaderMap,
    Path((id, fid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, OgcError> {
    let base = base_url(&headers);
    let pairs = strict_params(raw.as_deref(), &["f", "crs"])?;
    let out = negotiate(param(&pairs, "f"), &headers)?;
    let crs = crs_param(&pairs, "crs")?;
    let (c, w) = blocking(move || {
        let c = find_collection(&s, &id)?;
        let not_found = || ApiError::NotFound(format!("feature {fid:?} in collection {:?}", c.id));
        let n: i64 = fid.parse().ok().filter(|n| *n > 0).ok_or_else(not_found)?;
        let mut fields = vec!["_id".to_owned(), c.res.spatial.column.clone()];
        fields.extend(c.properties().map(|f| f.name.clone()));
        let q = RowQuery {
            filters: vec![Filter { column: "_id".into(), op: Op::Eq, values: vec![n.to_string()] }],
            fields: Some(fields),
            limit: 1,
            facet_limit: 0,
            ..RowQuery::default()
        };
        let mut w = FeatureWriter::new(crs);
        s.store.query_rows(&c.res.id, &q, &mut w)?;
        if w.rows == 0 {
            return Err(not_found());
        }
        Ok((c, w))
    })
    .await?;
    let mut buf = w.buf;
    let url = format!("{base}/ogc/collections/{}/items/", c.id);
    let fid = {
        let doc: Json = serde_json::from_slice(&buf).map_err(|e| ApiError::Internal(e.to_string()))?;
        doc["id"].to_string()
    };
    let links = vec![
        link(&format!("{url}{fid}"), "self", GEOJSON, "This feature"),
        link(&format!("{url}{fid}?f=html"), "alternate", HTML_TYPE, "This feature as HTML"),
        link(&format!("{base}/ogc/collections/{}", c.id), "collection", "application/json", "The collection"),
    ];
    // The feature's object is open at its end: add the links.
    buf.pop();
    buf.extend_from_slice(b",\"links\":");
    let _ = serde_json::to_writer(&mut buf, &links);
    buf.extend_from_slice(b"}\n");
    let resp = match out {
        Out::Json => answer(StatusCode::OK, GEOJSON, buf, &links),
        Out::Html => {
            let doc: Json = serde_json::from_slice(&buf).map_err(|e| ApiError::Internal(e.to_string()))?;
            answer(
                StatusCode::OK,
                "text/html; charset=utf-8",
                super::html::feature(&c, &doc).into_bytes(),
                &links,
            )
        }
    };
    Ok(with_content_crs(resp, crs))
}
