//! Rows out, streamed: a query runs on the blocking pool and its rows are written, as JSON, CSV,
//! NDJSON or GeoJSON, into chunks that a bounded channel carries to the response body. Nothing
//! holds the whole result, so a five-million-row export starts at once and memory stays flat; a
//! client that stops reading stops the query.
//!
//! Errors found before the first byte (an unknown column, a bad filter value or token) become
//! ordinary 4xx answers: the response is only built once the query's head has arrived.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use citydata_model::{FieldType, Value};
use citydata_store::{Head, RowQuery, RowSink, Store, StoreError};
use serde_json::Value as Json;

use crate::{ApiError, AppState};

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// The first buffer of an answer.
const START_BUF: usize = 8 * 1024;

/// The formats rows can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowFormat {
    /// One JSON document: head fields, then `records`, then the `next` token.
    Json,
    /// CSV with a header row (`bom`: a UTF-8 byte order mark first, for spreadsheet programs).
    Csv { bom: bool, delimiter: u8 },
    /// One JSON object per line.
    Ndjson,
    /// A GeoJSON FeatureCollection: the geometry column as each feature's geometry.
    GeoJson,
}

impl RowFormat {
    /// The format named `name` (`json`, `csv`, `tsv`, `ndjson`, `geojson`).
    pub(crate) fn parse(name: &str, bom: bool) -> Result<Self, ApiError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "json" => RowFormat::Json,
            "csv" => RowFormat::Csv { bom, delimiter: b',' },
            "tsv" => RowFormat::Csv { bom, delimiter: b'\t' },
            "ndjson" | "jsonl" => RowFormat::Ndjson,
            "geojson" => RowFormat::GeoJson,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown format {other:?}: use json, csv, tsv, ndjson or geojson"
                )))
            }
        })
    }

    fn media_type(self) -> &'static str {
        match self {
            RowFormat::Json => "application/json",
            RowFormat::Csv { delimiter: b'\t', .. } => "text/tab-separated-values; charset=utf-8",
            RowFormat::Csv { .. } => "text/csv; charset=utf-8",
            RowFormat::Ndjson => "application/x-ndjson",
            RowFormat::GeoJson => "application/geo+json",
        }
    }
}

/// How a run ended: the token of the next page, and whether a row cap cut the result short.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// The `next` token, when more rows follow.
    pub(crate) next: Option<String>,
    /// True when a row cap ended the result early.
    pub(crate) truncated: bool,
}

/// Work that writes rows into a sink: a row query, or user SQL.
pub(crate) type Run = Box<dyn FnOnce(&Store, &mut dyn RowSink) -> Result<Tail, StoreError> + Send>;

/// The table a rows answer reads, and what the answer says about it.
pub(crate) struct Target {
    /// The resource whose current table is read.
    pub(crate) resource_id: String,
    /// What the JSON form says around the records.
    pub(crate) frame: Option<JsonFrame>,
    /// The file name offered for download (`Content-Disposition`), if any.
    pub(crate) filename: Option<String>,
}

/// What the JSON form says around the records.
pub(crate) struct JsonFrame {
    /// Makes the URL of the next page from its token.
    pub(crate) next_url: Box<dyn Fn(&str) -> String + Send>,
}

/// Writes a JSON string.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The column names of `head` as JSON strings, ready to write as object keys.
pub(crate) fn json_keys(head: &Head) -> Vec<Vec<u8>> {
    head.columns
        .iter()
        .map(|c| {
            let mut k = Vec::new();
            json_str(&mut k, &c.name);
            k
        })
        .collect()
}

/// Writes one value as JSON, by its column's type.
pub(crate) fn json_value(out: &mut Vec<u8>, v: &Value<'_>, t: FieldType) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Int(i) if t == FieldType::Boolean => {
            out.extend_from_slice(if *i != 0 { b"true" } else { b"false" });
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Real(f) if f.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        Value::Real(_) => out.extend_from_slice(b"null"),
        Value::Text(s) if t == FieldType::Geometry && s.trim_start().starts_with('{') => {
            out.extend_from_slice(s.as_bytes());
        }
        Value::Text(s) => json_str(out, s),
    }
}

/// A value as JSON.
pub(crate) fn to_json(v: &Value<'_>, t: FieldType) -> Json {
    let mut out = Vec::new();
    json_value(&mut out, v, t);
    serde_json::from_slice(&out).unwrap_or(Json::Null)
}

/// Writes one value as a CSV field's text.
pub(crate) fn text_value<'v>(v: &'v Value<'_>, t: FieldType) -> std::borrow::Cow<'v, str> {
    match v {
        Value::Null => "".into(),
        Value::Int(i) if t == FieldType::Boolean => if *i != 0 { "true" } else { "false" }.into(),
        Value::Int(i) => i.to_string().into(),
        Value::Real(f) => f.to_string().into(),
        Value::Text(s) => std::borrow::Cow::Borrowed(s.as_ref()),
    }
}

/// The sink that formats rows into chunks for the response body.
struct Writer {
    format: RowFormat,
    /// Told once the head is written (with the file name to offer), or of an error before it.
    head_tx: Option<tokio::sync::oneshot::Sender<Result<Option<String>, ApiError>>>,
    filename: Option<String>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    types: Vec<FieldType>,
    keys: Vec<Vec<u8>>,
    geometry: Option<usize>,
    rows: u64,
}

impl Writer {
    fn flush(&mut self, force: bool) -> Result<(), StoreError> {
        if (force && !self.buf.is_empty()) || self.buf.len() >= CHUNK {
            // An answer that filled a chunk is a long one: its next buffer gets the full size at once.
            let next = if force { Vec::new() } else { Vec::with_capacity(CHUNK + 4096) };
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, next));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| StoreError::Invalid("the client went away".into()))?;
        }
        Ok(())
    }

    fn object(&mut self, values: &[Value<'_>], skip: Option<usize>) {
        self.buf.push(b'{');
        let mut first = true;
        for (i, v) in values.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            if !first {
                self.buf.push(b',');
            }
            first = false;
            self.buf.extend_from_slice(&self.keys[i]);
            self.buf.push(b':');
            json_value(&mut self.buf, v, self.types[i]);
        }
        self.buf.push(b'}');
    }

    /// Ends the document with the `next` token.
    fn finish(&mut self, tail: &Tail, frame: Option<&JsonFrame>) -> Result<(), StoreError> {
        let next = tail.next.as_deref();
        match self.format {
            RowFormat::Json => {
                self.buf.extend_from_slice(if tail.truncated { b"],\"truncated\":true" } else { b"]" });
                self.buf.extend_from_slice(b",\"next\":");
                match next {
                    Some(t) => json_str(&mut self.buf, t),
                    None => self.buf.extend_from_slice(b"null"),
                }
                self.buf.extend_from_slice(b",\"next_url\":");
                match (next, frame) {
                    (Some(t), Some(f)) => json_str(&mut self.buf, &(f.next_url)(t)),
                    _ => self.buf.extend_from_slice(b"null"),
                }
                self.buf.extend_from_slice(b"}\n");
            }
            RowFormat::GeoJson => self.buf.extend_from_slice(b"]}\n"),
            RowFormat::Csv { .. } | RowFormat::Ndjson => {}
        }
        self.flush(true)
    }
}

impl RowSink for Writer {
    fn head(&mut self, head: &Head) -> Result<(), StoreError> {
        self.types = head.columns.iter().map(|c| c.field_type).collect();
        self.keys = json_keys(head);
        self.geometry = head.columns.iter().position(|c| c.field_type == FieldType::Geometry);
        match self.format {
            RowFormat::GeoJson if self.geometry.is_none() => {
                let err =
                    ApiError::BadRequest("this resource has no geometry column: GeoJSON needs one".into());
                if let Some(tx) = self.head_tx.take() {
                    let _ = tx.send(Err(err));
                }
                return Err(StoreError::Invalid("no geometry".into()));
            }
            RowFormat::Json => {
                let fields: Vec<Json> = head
                    .columns
                    .iter()
                    .map(|c| serde_json::json!({ "name": c.name, "type": c.field_type }))
                    .collect();
                let facets: serde_json::Map<String, Json> = head
                    .facets
                    .iter()
                    .map(|f| {
                        let t = head
                            .columns
                            .iter()
                            .find(|c| c.name == f.column)
                            .map_or(FieldType::String, |c| c.field_type);
                        let values: Vec<Json> = f
                            .values
                            .iter()
                            .map(|v| serde_json::json!({ "value": to_json(&v.value, t), "count": v.count }))
                            .collect();
                        (f.column.clone(), Json::Array(values))
                    })
                    .collect();
                let start = serde_json::json!({
                    "fields": fields,
                    "total": head.total.map(|t| t.count),
                    "total_exact": head.total.map(|t| t.exact),
                    "facets": facets,
                });
                let mut s = serde_json::to_vec(&start).unwrap_or_default();
                s.pop(); // the closing brace: records follow
                self.buf.extend_from_slice(&s);
                self.buf.extend_from_slice(b",\"records\":[");
            }
            RowFormat::GeoJson => {
                self.buf.extend_from_slice(b"{\"type\":\"FeatureCollection\",\"features\":[")
            }
            RowFormat::Csv { bom, delimiter } => {
                if bom {
                    self.buf.extend_from_slice("\u{feff}".as_bytes());
                }
                for (i, c) in head.columns.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(delimiter);
                    }
                    csv_field(&mut self.buf, &c.name, delimiter);
                }
                self.buf.extend_from_slice(b"\r\n");
            }
            RowFormat::Ndjson => {}
        }
        if let Some(tx) = self.head_tx.take() {
            let _ = tx.send(Ok(self.filename.take()));
        }
        Ok(())
    }

    fn row(&mut self, values: &[Value<'_>]) -> Result<(), StoreError> {
        match self.format {
            RowFormat::Json => {
                if self.rows > 0 {
                    self.buf.push(b',');
                }
                self.object(values, None);
            }
            RowFormat::Ndjson => {
                self.object(values, None);
                self.buf.push(b'\n');
            }
            RowFormat::GeoJson => {
                if self.rows > 0 {
                    self.buf.push(b',');
                }
                let g = self.geometry.unwrap_or(0);
                self.buf.extend_from_slice(b"{\"type\":\"Feature\",\"geometry\":");
                match values.get(g) {
                    Some(Value::Text(t)) if t.trim_start().starts_with('{') => {
                        self.buf.extend_from_slice(t.as_bytes())
                    }
                    _ => self.buf.extend_from_slice(b"null"),
                }
                self.buf.extend_from_slice(b",\"properties\":");
                self.object(values, Some(g));
                self.buf.push(b'}');
            }
            RowFormat::Csv { delimiter, .. } => {
                for (i, (v, t)) in values.iter().zip(&self.types).enumerate() {
                    if i > 0 {
                        self.buf.push(delimiter);
                    }
                    csv_field(&mut self.buf, &text_value(v, *t), delimiter);
                }
                self.buf.extend_from_slice(b"\r\n");
            }
        }
        self.rows += 1;
        self.flush(false)
    }
}

/// Writes one CSV field (RFC 4180): quoted when it holds the delimiter, a quote or a line break,
/// with quotes doubled.
pub(crate) fn csv_field(out: &mut Vec<u8>, s: &str, delimiter: u8) {
    if s.bytes().any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r') {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Runs `query` on the table that `resolve` names (it runs on the blocking pool, in the same task
/// as the query: one hand-off per request) and answers its rows in `format`, streamed.
///
/// # Errors
/// What `resolve` returns (an unknown dataset or resource), and whatever the store finds wrong with
/// the query before the first row (unknown column, bad value, bad token): as a 4xx.
pub(crate) async fn rows_response(
    s: AppState,
    resolve: impl FnOnce(&AppState) -> Result<Target, ApiError> + Send + 'static,
    query: RowQuery,
    format: RowFormat,
) -> Result<Response, ApiError> {
    run_response(
        s,
        move |s: &AppState| {
            let target = resolve(s)?;
            let id = target.resource_id;
            let run: Run = Box::new(move |store: &Store, sink: &mut dyn RowSink| {
                store.query_rows(&id, &query, sink).map(|next| Tail { next, truncated: false })
            });
            Ok((run, target.frame, target.filename))
        },
        format,
    )
    .await
}

/// Runs the work that `prepare` gives (a row query, or user SQL) on the blocking pool, writing its
/// rows in `format`, streamed, with the JSON frame and download name `prepare` gives.
///
/// # Errors
/// What `prepare` returns, and whatever the work fails with before its head: as a 4xx.
pub(crate) async fn run_response(
    s: AppState,
    prepare: impl FnOnce(&AppState) -> Result<(Run, Option<JsonFrame>, Option<String>), ApiError> + Send + 'static,
    format: RowFormat,
) -> Result<Response, ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<Result<Option<String>, ApiError>>();
    tokio::task::spawn_blocking(move || {
        let (run, frame, filename) = match prepare(&s) {
            Ok(t) => t,
            Err(e) => {
                let _ = head_tx.send(Err(e));
                return;
            }
        };
        let mut w = Writer {
            format,
            head_tx: Some(head_tx),
            filename,
            tx: tx.clone(),
            // Small to start: most answers are a page or a row, and a big allocation per request
            // costs more than the growth of the few that stream.
            buf: Vec::with_capacity(START_BUF),
            types: Vec::new(),
            keys: Vec::new(),
            geometry: None,
            rows: 0,
        };
        let result = run(&s.store, &mut w);
        match result {
            Ok(tail) => {
                if let Err(e) = w.finish(&tail, frame.as_ref()) {
                    tracing::debug!(error = %e, "row stream ended early");
                }
            }
            Err(e) => match w.head_tx.take() {
                Some(head_tx) => {
                    let _ = head_tx.send(Err(e.into()));
                }
                None => {
                    tracing::warn!(error = %e, "row stream failed after its head");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            },
        }
    });
    let filename =
        head_rx.await.map_err(|_| ApiError::Internal("the query stopped before its head".into()))??;
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    if let Some(name) = filename {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}
