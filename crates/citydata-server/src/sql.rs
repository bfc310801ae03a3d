//! The native SQL endpoint, `/api/v1/sql`: one read-only `SELECT` over the public data tables (each
//! named by its resource id, double-quoted), run in the store's sandbox and streamed as JSON, CSV,
//! TSV or NDJSON.
//!
//! The database engine confines it (read-only connection, authorizer allow-list, limits, a time
//! limit); nothing here parses the SQL.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use citydata_store::SqlLimits;

use crate::stream::{run_response, RowFormat, Run, Tail};
use crate::{ApiError, AppState};

/// The most rows one answer holds; more end it early, marked truncated in the JSON form.
const MAX_ROWS: u64 = 100_000;

/// `GET|POST /api/v1/sql?sql=...&_format=json|csv|tsv|ndjson`; a POST may send the SQL as its
/// `text/plain` or form body.
pub(crate) async fn sql(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut pairs = crate::ckan::form_urlencoded(raw.as_deref().unwrap_or(""));
    if method == Method::POST && !body.is_empty() {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::BadRequest("the body is not UTF-8 text".into()))?;
        if form {
            pairs.extend(crate::ckan::form_urlencoded(text));
        } else {
            pairs.push(("sql".into(), text.to_owned()));
        }
    }
    let mut sql = None;
    let mut format = "json".to_owned();
    let mut bom = false;
    let mut max_rows = MAX_ROWS;
    let mut time = Duration::from_secs(1);
    for (k, v) in pairs {
        match k.as_str() {
            "sql" => sql = Some(v),
            "_format" => format = v,
            "_bom" => bom = matches!(v.as_str(), "1" | "true" | "yes"),
            "_size" | "_limit" => {
                max_rows =
                    v.parse::<u64>().ok().filter(|n| *n <= MAX_ROWS).ok_or_else(|| {
                        ApiError::BadRequest(format!("{k}: a whole number up to {MAX_ROWS}"))
                    })?;
            }
            "_timelimit" => {
                let ms =
                    v.parse::<u64>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                        ApiError::BadRequest("_timelimit: milliseconds from 1 to 1000".into())
                    })?;
                time = Duration::from_millis(ms);
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{other}: unknown parameter (sql, _format, _bom, _size, _timelimit)"
                )))
            }
        }
    }
    let sql = sql
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest("sql: give one SELECT statement".into()))?;
    let format = RowFormat::parse(&format, bom)?;
    if format == RowFormat::GeoJson {
        return Err(ApiError::BadRequest("_format: SQL results come as json, csv, tsv or ndjson".into()));
    }
    let limits = SqlLimits { time, max_rows, ..SqlLimits::default() };
    run_response(
        s,
        move |_| {
            let run: Run = Box::new(move |store, sink| {
                store.user_sql(&sql, &limits, sink).map(|o| Tail { next: None, truncated: o.truncated })
            });
            Ok((run, None, None))
        },
        format,
    )
    .await
}
