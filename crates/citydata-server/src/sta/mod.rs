//! OGC SensorThings API 1.1 (Sensing) at `/sta/v1.1`: the service root, the eight entity sets with
//! create (deep insert), read, update (PATCH, also as JSON Patch, and PUT) and delete, navigation
//! paths (`/Things(1)/Datastreams`, `/Observations(1)/Datastream/Thing`), `$ref`, `$value`, the query
//! options ([`odata`]) and the dataArray extension (`/CreateObservations`).
//!
//! Observations posted here go through the ingest (group commit, acknowledged after the commit,
//! broadcast to live subscribers); everything else calls the store. This module parses URLs, query
//! options and bodies, and writes the SensorThings JSON (`@iot.id`, `@iot.selfLink`,
//! `...@iot.navigationLink`, `@iot.count`, `@iot.nextLink`); errors are `{"code", "type", "message"}`
//! with a 4xx that says what to fix.

mod odata;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use citydata_sensors::{IngestError, NewObservation, Outcome};
use citydata_store::sensors::{
    format_time, parse_time, parse_time_or_interval, Entity, EntityQuery, EntitySet, Link, NewEntity, Page,
    SVal, Within,
};
use citydata_store::{Store, StoreError};
use serde_json::{json, Map, Value as JsonValue};
use time::OffsetDateTime;

use crate::AppState;
use odata::{Expand, Options, DEFAULT_TOP};

/// Where the API lives.
const PREFIX: &str = "/sta/v1.1";

/// The deepest deep insert accepted.
const MAX_INSERT_DEPTH: usize = 8;

/// The most entities one answer holds, expansions included (`$top` of 10,000 expanded 10,000 times
/// would otherwise build an answer of a hundred million).
const MAX_ENTITIES: usize = 200_000;

/// An error answer in the SensorThings shape.
#[derive(Debug)]
pub(crate) struct StaError {
    status: StatusCode,
    message: String,
}

impl StaError {
    fn bad(m: impl Into<String>) -> Self {
        StaError { status: StatusCode::BAD_REQUEST, message: m.into() }
    }

    fn not_found(m: impl Into<String>) -> Self {
        StaError { status: StatusCode::NOT_FOUND, message: m.into() }
    }
}

impl From<StoreError> for StaError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => StaError::not_found(format!("{what} not found")),
            StoreError::Invalid(m) => StaError::bad(m),
            StoreError::Busy(m) => StaError { status: StatusCode::SERVICE_UNAVAILABLE, message: m },
            other => {
                tracing::error!(cause = %other, "SensorThings store error");
                StaError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "internal error; it has been logged".into(),
                }
            }
        }
    }
}

impl From<IngestError> for StaError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Unavailable(m) => {
                tracing::error!(cause = %m, "ingest unavailable");
                StaError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "the ingest is unavailable; try again".into(),
                }
            }
            IngestError::TooLarge { .. } => {
                StaError { status: StatusCode::PAYLOAD_TOO_LARGE, message: e.to_string() }
            }
            other => StaError::bad(other.to_string()),
        }
    }
}

impl From<odata::ParseError> for StaError {
    fn from(e: odata::ParseError) -> Self {
        StaError::bad(e.0)
    }
}

impl From<tokio::task::JoinError> for StaError {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!(cause = %e, "SensorThings task failed");
        StaError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error; it has been logged".into(),
        }
    }
}

impl IntoResponse for StaError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.status.as_u16(), "type": "error", "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

type StaResult<T> = Result<T, StaError>;

/// The base of every link: scheme, host and the API's prefix.
fn base(headers: &HeaderMap) -> String {
    format!("{}{PREFIX}", crate::ckan::base_url(headers))
}

/// `GET /sta/v1.1`: the entity sets and the conformance classes.
pub(crate) async fn root(headers: HeaderMap) -> Response {
    let base = base(&headers);
    let value: Vec<JsonValue> = EntitySet::ALL
        .iter()
        .map(|s| json!({"name": s.plural(), "url": format!("{base}/{}", s.plural())}))
        .collect();
    let spec = "http://www.opengis.net/spec/iot_sensing/1.1/req";
    Json(json!({
        "value": value,
        "serverSettings": {
            "conformance": [
                format!("{spec}/datamodel"),
                format!("{spec}/resource-path/resource-path-to-entities"),
                format!("{spec}/request-data"),
                format!("{spec}/create-update-delete"),
                format!("{spec}/data-array/data-array"),
            ]
        }
    }))
    .into_response()
}

/// Every other request under `/sta/v1.1/`.
pub(crate) async fn resource(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(s, method, uri, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    s: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StaResult<Response> {
    let base = base(&headers);
    let rel = uri.path().strip_prefix(PREFIX).unwrap_or("").trim_start_matches('/').to_owned();
    let segs: Vec<String> = rel.split('/').map(crate::ckan::percent_decode).collect();
    let query: Vec<(String, String)> = crate::ckan::form_urlencoded(uri.query().unwrap_or(""));
    if segs.first().map(String::as_str) == Some("CreateObservations") {
        if method != Method::POST || segs.len() != 1 {
            return Err(StaError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "CreateObservations takes POST".into(),
            });
        }
        return create_observations(&s, &base, &body).await;
    }
    let store = Arc::clone(&s.store);
    let path = {
        let segs = segs.clone();
        tokio::task::spawn_blocking(move || resolve(&store, &segs)).await??
    };
    match method {
        Method::GET => {
            let options = Options::parse(query.iter().map(|(a, b)| (a.as_str(), b.as_str())), 0)?;
            let store = Arc::clone(&s.store);
            let here = format!("{base}/{rel}");
            tokio::task::spawn_blocking(move || read(&store, &base, &here, &path, &options, &query)).await?
        }
        Method::POST => post(&s, &base, &path, &body).await,
        Method::PATCH | Method::PUT => {
            let store = Arc::clone(&s.store);
            let patch = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json-patch+json"));
            tokio::task::spawn_blocking(move || update(&store, &base, &path, &body, patch)).await?
        }
        Method::DELETE => {
            let store = Arc::clone(&s.store);
            tokio::task::spawn_blocking(move || delete(&store, &path)).await?
        }
        m => Err(StaError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{m} is not supported here"),
        }),
    }
}

/// What a resource path names.
#[derive(Debug, Clone)]
enum Target {
    /// A collection, perhaps reached through a navigation property.
    Collection(EntitySet, Option<Within>),
    /// One entity.
    Entity(EntitySet, i64),
}

#[derive(Debug, Clone)]
struct Path {
    target: Target,
    /// The last step when it was a navigation property: (parent set, parent id, its nav).
    via: Option<(EntitySet, i64, &'static str)>,
    /// A property of the entity.
    property: Option<String>,
    /// `$value` after the property.
    raw: bool,
    /// `$ref` at the end.
    reference: bool,
}

/// Splits `Name(12)` into the name and the id.
fn name_id(seg: &str) -> StaResult<(&str, Option<i64>)> {
    let Some(open) = seg.find('(') else { return Ok((seg, None)) };
    let Some(inner) = seg[open + 1..].strip_suffix(')') else {
        return Err(StaError::bad(format!("{seg:?}: an id is written Name(123)")));
    };
    let id = inner
        .trim()
        .parse::<i64>()
        .map_err(|_| StaError::bad(format!("{seg:?}: ids are integers, as in Things(1)")))?;
    Ok((&seg[..open], Some(id)))
}

fn exists(store: &Store, set: EntitySet, within: Option<Within>, id: i64) -> StaResult<bool> {
    let q = EntityQuery { id: Some(id), within, top: 1, ..EntityQuery::all(set) };
    Ok(!store.sta_query(&q)?.entities.is_empty())
}

fn resolve(store: &Store, segs: &[String]) -> StaResult<Path> {
    let (first, rest) = segs.split_first().ok_or_else(|| StaError::not_found("no such path"))?;
    let (name, id) = name_id(first)?;
    let set = EntitySet::from_plural(name)
        .ok_or_else(|| StaError::not_found(format!("no entity set {name:?}; the service root lists them")))?;
    let mut path = Path {
        target: match id {
            Some(id) => Target::Entity(set, id),
            None => Target::Collection(set, None),
        },
        via: None,
        property: None,
        raw: false,
        reference: false,
    };
    if let Some(id) = id {
        if !exists(store, set, None, id)? {
            return Err(StaError::not_found(format!("{}({id}) not found", set.plural())));
        }
    }
    for seg in rest {
        if path.reference || path.raw {
            return Err(StaError::bad(format!(
                "nothing may follow {}",
                if path.raw { "$value" } else { "$ref" }
            )));
        }
        if seg == "$ref" {
            if path.property.is_some() {
                return Err(StaError::bad("$ref follows an entity or a collection, not a property"));
            }
            path.reference = true;
            continue;
        }
        if seg == "$value" {
            if path.property.is_none() {
                return Err(StaError::bad("$value follows a property, as in Things(1)/name/$value"));
            }
            path.raw = true;
            continue;
        }
        if path.property.is_some() {
            return Err(StaError::bad(format!("{seg:?}: a property has no parts in a path")));
        }
        let Target::Entity(set, id) = path.target else {
            return Err(StaError::bad(format!(
                "{seg:?}: name one entity by its id before going on, as in Things(1)/Datastreams"
            )));
        };
        let (name, sub) = name_id(seg)?;
        if let Some(nav) = set.nav(name) {
            let within = Within { parent: set, id, nav: nav.name };
            path.via = Some((set, id, nav.name));
            path.target = if nav.many {
                match sub {
                    None => Target::Collection(nav.target, Some(within)),
                    Some(sub) => {
                        if !exists(store, nav.target, Some(within), sub)? {
                            return Err(StaError::not_found(format!(
                                "{}({sub}) is not in {}({id})/{name}",
                                nav.target.plural(),
                                set.plural()
                            )));
                        }
                        Target::Entity(nav.target, sub)
                    }
                }
            } else {
                if sub.is_some() {
                    return Err(StaError::bad(format!("{name} is one entity; it takes no id")));
                }
                let q = EntityQuery { within: Some(within), top: 1, ..EntityQuery::all(nav.target) };
                match store.sta_query(&q)?.entities.first() {
                    Some(e) => Target::Entity(nav.target, e.id),
                    None => return Err(StaError::not_found(format!("{}({id}) has no {name}", set.plural()))),
                }
            };
        } else if set.properties().contains(&name) || name == "id" {
            if sub.is_some() {
                return Err(StaError::bad(format!("{name} is a property; it takes no id")));
            }
            path.property = Some(name.to_owned());
        } else {
            return Err(StaError::not_found(format!(
                "{} has no property or navigation property {name:?}",
                set.singular()
            )));
        }
    }
    Ok(path)
}

fn self_link(base: &str, set: EntitySet, id: i64) -> String {
    format!("{base}/{}({id})", set.plural())
}

fn value_json(v: &SVal) -> JsonValue {
    match v {
        SVal::Null => JsonValue::Null,
        SVal::Bool(b) => JsonValue::Bool(*b),
        SVal::Int(i) => json!(i),
        SVal::Num(f) => json!(f),
        SVal::Text(s) => JsonValue::String(s.clone()),
        SVal::Time(t) => JsonValue::String(format_time(*t)),
        SVal::Interval(a, b) => JsonValue::String(format!("{}/{}", format_time(*a), format_time(*b))),
        SVal::Json(j) => j.clone(),
    }
}

// The answers of reads are written as JSON text straight into byte buffers, with no intermediate
// `serde_json::Value` tree: the latest observation of 10,000 datastreams is 10 MB of JSON, and
// building and dropping that tree cost more than the query. Writing into a `Vec` cannot fail, so
// the writers' results are ignored.

/// A JSON string (quoted, escaped).
fn put_str(buf: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// An integer, in decimal.
fn put_int(buf: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        // A digit, 0..=9.
        digits[i] = b'0' + u8::try_from(m % 10).unwrap_or(0);
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&digits[i..]);
}

/// The separator (unless first) and a key.
fn put_key(buf: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::take(first) {
        buf.push(b',');
    }
    put_str(buf, key);
    buf.push(b':');
}

/// A property value, as [`value_json`] gives it.
fn put_value(buf: &mut Vec<u8>, v: &SVal) {
    match v {
        SVal::Null => buf.extend_from_slice(b"null"),
        SVal::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
        SVal::Int(i) => put_int(buf, *i),
        // Non-finite numbers are written as null, as `serde_json::Value` has them.
        SVal::Num(f) => {
            let _ = serde_json::to_writer(&mut *buf, f);
        }
        // Times have no character to escape.
        SVal::Time(t) => {
            buf.push(b'"');
            buf.extend_from_slice(format_time(*t).as_bytes());
            buf.push(b'"');
        }
        SVal::Interval(a, b) => {
            buf.push(b'"');
            buf.extend_from_slice(format_time(*a).as_bytes());
            buf.push(b'/');
            buf.extend_from_slice(format_time(*b).as_bytes());
            buf.push(b'"');
        }
        SVal::Text(s) => put_str(buf, s),
        SVal::Json(j) => {
            let _ = serde_json::to_writer(&mut *buf, j);
        }
    }
}

/// The service's base URL as JSON text (quoted, escaped once) without the closing quote, to which
/// links are appended; and the expansions read while writing, kept to be dropped after the answer
/// (see [`drop_later`]).
struct Links {
    quoted: Vec<u8>,
    spent: std::cell::RefCell<Vec<Vec<Page>>>,
}

impl Links {
    fn new(base: &str) -> Self {
        let mut quoted = Vec::with_capacity(base.len() + 2);
        put_str(&mut quoted, base);
        quoted.pop();
        Links { quoted, spent: std::cell::RefCell::default() }
    }

    /// `"{base}/{Set}({id})` (open: the caller adds the rest and the closing quote).
    fn put_self(&self, buf: &mut Vec<u8>, set: EntitySet, id: i64) {
        buf.extend_from_slice(&self.quoted);
        buf.push(b'/');
        buf.extend_from_slice(set.plural().as_bytes());
        buf.push(b'(');
        put_int(buf, id);
        buf.push(b')');
    }
}

/// Writes an entity's JSON object without its closing brace (so that expansions can follow);
/// returns the `first` flag of its keys. Entity set and navigation names are plain ASCII.
fn open_entity(buf: &mut Vec<u8>, links: &Links, e: &Entity, select: Option<&[String]>) -> bool {
    let wants = |n: &str| select.is_none_or(|s| s.iter().any(|x| x == n));
    let mut first = true;
    buf.push(b'{');
    if wants("id") || wants("@iot.id") {
        put_key(buf, &mut first, "@iot.id");
        put_int(buf, e.id);
    }
    if select.is_none() || wants("@iot.selfLink") {
        put_key(buf, &mut first, "@iot.selfLink");
        links.put_self(buf, e.set, e.id);
        buf.push(b'"');
    }
    for (name, v) in &e.props {
        if !wants(name) || (*v == SVal::Null && *name != "result") {
            continue;
        }
        put_key(buf, &mut first, name);
        put_value(buf, v);
    }
    for nav in e.set.navigation() {
        if select.is_none() || wants(nav.name) {
            if !std::mem::take(&mut first) {
                buf.push(b',');
            }
            buf.push(b'"');
            buf.extend_from_slice(nav.name.as_bytes());
            buf.extend_from_slice(b"@iot.navigationLink\":");
            links.put_self(buf, e.set, e.id);
            buf.push(b'/');
            buf.extend_from_slice(nav.name.as_bytes());
            buf.push(b'"');
        }
    }
    first
}

/// An entity's JSON, without expansions (for the answers of writes).
fn entity_json(base: &str, e: &Entity, select: Option<&[String]>) -> Map<String, JsonValue> {
    let mut buf = Vec::with_capacity(1024);
    open_entity(&mut buf, &Links::new(base), e, select);
    buf.push(b'}');
    serde_json::from_slice(&buf).unwrap_or_default()
}

/// Writes the JSON objects of a page of entities with their expansions, separated by commas, into
/// `buf`: the whole answer is written into one buffer, once. Each expansion is read for the whole
/// page first (one query for all the parents), then written under each parent in turn.
fn write_entities(
    buf: &mut Vec<u8>,
    store: &Store,
    links: &Links,
    set: EntitySet,
    list: &[Entity],
    o: &Options,
    budget: &mut usize,
) -> StaResult<()> {
    *budget = budget.checked_sub(list.len()).ok_or_else(|| {
        StaError::bad(format!(
            "the answer would hold more than {MAX_ENTITIES} entities; ask for fewer with $top"
        ))
    })?;
    let ids: Vec<i64> = list.iter().map(|e| e.id).collect();
    let mut expansions = Vec::with_capacity(o.expand.len());
    // What the expansions read counts against the budget of the next one's read (the budget
    // itself is spent as they are written).
    let mut reading_budget = *budget;
    for (i, x) in o.expand.iter().enumerate() {
        // The same navigation expanded twice: the last one counts (a key is written once).
        if o.expand[i + 1..].iter().any(|later| later.nav == x.nav) {
            continue;
        }
        let pages = expansion(store, set, &ids, x, reading_budget)?;
        let read: usize = pages.1.iter().map(|p| p.entities.len()).sum();
        reading_budget = reading_budget.saturating_sub(read);
        expansions.push(pages);
    }
    buf.reserve(list.len() * 512);
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let mut first = open_entity(buf, links, e, o.select.as_deref());
        for (x, (nav, pages)) in o.expand.iter().filter(|x| expansions_kept(o, x)).zip(&expansions) {
            let Some(page) = pages.get(i) else { continue };
            if nav.many {
                if let Some(n) = page.count {
                    put_key(buf, &mut first, &format!("{}@iot.count", nav.name));
                    put_int(buf, i64::try_from(n).unwrap_or(i64::MAX));
                }
                put_key(buf, &mut first, nav.name);
                buf.push(b'[');
                write_entities(buf, store, links, nav.target, &page.entities, &x.options, budget)?;
                buf.push(b']');
            } else if let Some(one) = page.entities.first() {
                put_key(buf, &mut first, nav.name);
                write_entities(buf, store, links, nav.target, std::slice::from_ref(one), &x.options, budget)?;
            }
        }
        buf.push(b'}');
    }
    links.spent.borrow_mut().extend(expansions.into_iter().map(|(_, pages)| pages));
    Ok(())
}

/// Drops what a large answer was made from on the blocking pool, after the answer has left:
/// freeing tens of thousands of entities takes milliseconds that the client need not wait for.
fn drop_later<T: Send + 'static>(x: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(move || drop(x));
        }
        Err(_) => drop(x),
    }
}

fn query_of(set: EntitySet, within: Option<Within>, o: &Options) -> EntityQuery {
    EntityQuery {
        set,
        within,
        id: None,
        filter: o.filter.clone(),
        orderby: o.orderby.clone(),
        top: o.top.unwrap_or(DEFAULT_TOP),
        skip: o.skip,
        count: o.count,
    }
}

/// Whether an expansion is written (the last of those naming the same navigation).
fn expansions_kept(o: &Options, x: &Expand) -> bool {
    let at = o.expand.iter().position(|y| std::ptr::eq(y, x)).unwrap_or(0);
    !o.expand[at + 1..].iter().any(|later| later.nav == x.nav)
}

/// Reads one expansion for every parent: its navigation and a page per parent.
fn expansion(
    store: &Store,
    set: EntitySet,
    ids: &[i64],
    x: &Expand,
    budget: usize,
) -> StaResult<(&'static citydata_store::sensors::Nav, Vec<Page>)> {
    let nav = set.nav(&x.nav).ok_or_else(|| {
        StaError::bad(format!("$expand: {} has no navigation property {:?}", set.singular(), x.nav))
    })?;
    if ids.is_empty() {
        return Ok((nav, Vec::new()));
    }
    let mut q = query_of(nav.target, Some(Within { parent: set, id: 0, nav: nav.name }), &x.options);
    if !nav.many {
        q.top = 1;
        q.skip = 0;
        q.count = false;
    }
    Ok((nav, store.sta_query_each(&q, ids, budget)?))
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn next_link(here: &str, query: &[(String, String)], top: u32, skip: u64) -> String {
    let mut parts: Vec<String> = query
        .iter()
        .filter(|(k, _)| k != "$top" && k != "$skip")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    parts.push(format!("$top={top}"));
    parts.push(format!("$skip={}", skip + u64::from(top)));
    format!("{here}?{}", parts.join("&"))
}

fn json_response(status: StatusCode, v: JsonValue) -> Response {
    (status, Json(v)).into_response()
}

/// An answer whose body is JSON text already written.
fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"))], body)
        .into_response()
}

fn read(
    store: &Store,
    base: &str,
    here: &str,
    path: &Path,
    o: &Options,
    query: &[(String, String)],
) -> StaResult<Response> {
    match &path.target {
        Target::Collection(set, within) => {
            let q = query_of(*set, within.clone(), o);
            let Page { entities, count, more } = store.sta_query(&q)?;
            let mut buf = Vec::with_capacity(entities.len() * 1024 + 256);
            let mut first = true;
            buf.push(b'{');
            if let Some(n) = count {
                put_key(&mut buf, &mut first, "@iot.count");
                put_int(&mut buf, i64::try_from(n).unwrap_or(i64::MAX));
            }
            put_key(&mut buf, &mut first, "value");
            buf.push(b'[');
            let links = Links::new(base);
            if path.reference {
                for (i, e) in entities.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(b"{\"@iot.selfLink\":");
                    links.put_self(&mut buf, e.set, e.id);
                    buf.extend_from_slice(b"\"}");
                }
            } else {
                write_entities(&mut buf, store, &links, *set, &entities, o, &mut { MAX_ENTITIES })?;
            }
            buf.push(b']');
            if more {
                put_key(&mut buf, &mut first, "@iot.nextLink");
                put_str(&mut buf, &next_link(here, query, q.top, q.skip));
            }
            buf.push(b'}');
            if entities.len() >= 1000 {
                drop_later((entities, links.spent.into_inner()));
            }
            Ok(json_bytes(StatusCode::OK, buf))
        }
        Target::Entity(set, id) => {
            if path.reference {
                return Ok(json_response(
                    StatusCode::OK,
                    json!({"@iot.selfLink": self_link(base, *set, *id)}),
                ));
            }
            let q = EntityQuery { id: Some(*id), top: 1, ..EntityQuery::all(*set) };
            let page = store.sta_query(&q)?;
            let e = page
                .entities
                .first()
                .ok_or_else(|| StaError::not_found(format!("{}({id}) not found", set.plural())))?;
            if let Some(prop) = &path.property {
                let v =
                    if prop == "id" { SVal::Int(e.id) } else { e.get(prop).cloned().unwrap_or(SVal::Null) };
                let j = value_json(&v);
                if path.raw {
                    let text = match &j {
                        JsonValue::String(s) => s.clone(),
                        JsonValue::Null => return Ok(StatusCode::NO_CONTENT.into_response()),
                        other => other.to_string(),
                    };
                    return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
                }
                let mut m = Map::new();
                m.insert(prop.clone(), j);
                return Ok(json_response(StatusCode::OK, JsonValue::Object(m)));
            }
            let mut one = Vec::with_capacity(2048);
            write_entities(&mut one, store, &Links::new(base), *set, std::slice::from_ref(e), o, &mut {
                MAX_ENTITIES
            })?;
            Ok(json_bytes(StatusCode::OK, one))
        }
    }
}

/// A request body as an entity to create or a change to apply.
fn new_entity(set: EntitySet, v: &JsonValue, depth: usize) -> StaResult<NewEntity> {
    if depth > MAX_INSERT_DEPTH {
        return Err(StaError::bad(format!("a deep insert nests at most {MAX_INSERT_DEPTH} levels")));
    }
    let JsonValue::Object(m) = v else {
        return Err(StaError::bad(format!("a {} is a JSON object", set.singular())));
    };
    let mut e = NewEntity { set, props: Vec::new(), links: Vec::new() };
    for (k, v) in m {
        if k.contains("@iot.") {
            continue;
        }
        if let Some(nav) = set.nav(k) {
            let one = |x: &JsonValue| -> StaResult<Link> {
                match x.get("@iot.id") {
                    Some(id) => id
                        .as_i64()
                        .map(Link::Id)
                        .ok_or_else(|| StaError::bad(format!("{k}: @iot.id is an integer, not {id}"))),
                    None => Ok(Link::New(new_entity(nav.target, x, depth + 1)?)),
                }
            };
            match (nav.many, v) {
                (true, JsonValue::Array(xs)) => {
                    for x in xs {
                        e.links.push((k.clone(), one(x)?));
                    }
                }
                (true, _) => return Err(StaError::bad(format!("{}/{k} is a JSON array", set.singular()))),
                (false, JsonValue::Object(_)) => e.links.push((k.clone(), one(v)?)),
                (false, _) => return Err(StaError::bad(format!("{}/{k} is a JSON object", set.singular()))),
            }
        } else {
            e.props.push((k.clone(), v.clone()));
        }
    }
    Ok(e)
}

fn parse_body(body: &[u8]) -> StaResult<JsonValue> {
    serde_json::from_slice(body).map_err(|e| StaError::bad(format!("the body is not JSON: {e}")))
}

fn created(base: &str, set: EntitySet, id: i64, body: JsonValue) -> Response {
    (StatusCode::CREATED, [(header::LOCATION, self_link(base, set, id))], Json(body)).into_response()
}

fn time_of(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn micros_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(0)
}

/// An observation to post through the ingest, when the body is one it can take (its Datastream by
/// id, no result quality or valid time); `None` sends it through the store's deep insert instead.
fn as_reading(e: &NewEntity) -> StaResult<Option<(NewObservation, Option<NewEntity>)>> {
    let mut ds = None;
    let mut foi = None;
    for (nav, link) in &e.links {
        match (nav.as_str(), link) {
            ("Datastream", Link::Id(id)) => ds = Some(*id),
            ("FeatureOfInterest", Link::Id(id)) => foi = Some(Ok(*id)),
            ("FeatureOfInterest", Link::New(f)) => foi = Some(Err(f.clone())),
            _ => return Ok(None),
        }
    }
    let Some(datastream) = ds else { return Ok(None) };
    let mut o = NewObservation {
        datastream,
        phenomenon_time: OffsetDateTime::now_utc(),
        phenomenon_end: None,
        result: JsonValue::Null,
        result_time: None,
        parameters: None,
        feature_of_interest: None,
    };
    let mut has_result = false;
    for (k, v) in &e.props {
        match (k.as_str(), v) {
            ("result", v) => {
                o.result = v.clone();
                has_result = true;
            }
            ("phenomenonTime", JsonValue::String(s)) => {
                let (a, b) =
                    parse_time_or_interval(s).map_err(|m| StaError::bad(format!("phenomenonTime: {m}")))?;
                o.phenomenon_time = time_of(a);
                o.phenomenon_end = b.map(time_of);
            }
            ("resultTime", JsonValue::String(s)) => {
                o.result_time =
                    Some(time_of(parse_time(s).map_err(|m| StaError::bad(format!("resultTime: {m}")))?));
            }
            ("phenomenonTime" | "resultTime" | "parameters", JsonValue::Null) => {}
            ("parameters", JsonValue::Object(p)) => o.parameters = Some(p.clone()),
            _ => return Ok(None),
        }
    }
    if !has_result {
        return Err(StaError::bad("an Observation needs its result"));
    }
    let new_foi = match foi {
        Some(Ok(id)) => {
            o.feature_of_interest = Some(id);
            None
        }
        Some(Err(f)) => Some(f),
        None => None,
    };
    Ok(Some((o, new_foi)))
}

fn observation_json(base: &str, id: i64, o: &NewObservation) -> JsonValue {
    let pt = micros_of(o.phenomenon_time);
    let e = Entity {
        set: EntitySet::Observation,
        id,
        props: vec![
            (
                "phenomenonTime",
                match o.phenomenon_end {
                    Some(end) => SVal::Interval(pt, micros_of(end)),
                    None => SVal::Time(pt),
                },
            ),
            ("result", SVal::Json(o.result.clone())),
            ("resultTime", o.result_time.map_or(SVal::Null, |t| SVal::Time(micros_of(t)))),
            ("parameters", o.parameters.clone().map_or(SVal::Null, |p| SVal::Json(JsonValue::Object(p)))),
        ],
    };
    JsonValue::Object(entity_json(base, &e, None))
}

async fn post(s: &AppState, base: &str, path: &Path, body: &[u8]) -> StaResult<Response> {
    if path.property.is_some() {
        return Err(StaError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "a property takes no POST; PATCH its entity".into(),
        });
    }
    let v = parse_body(body)?;
    let (set, within) = match &path.target {
        Target::Collection(set, within) => (*set, within.clone()),
        Target::Entity(..) if path.reference => {
            // POST .../Things(1)/Locations(2)/$ref is not a thing; POST .../Locations/$ref is below.
            return Err(StaError::bad("POST a reference to the collection, as in Things(1)/Locations/$ref"));
        }
        Target::Entity(set, id) => {
            return Err(StaError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!("{}({id}) takes no POST; PATCH it", set.plural()),
            });
        }
    };
    if path.reference {
        // Link an existing entity into the collection: {"@iot.id": 5}.
        let Some(w) = within else {
            return Err(StaError::bad("$ref POST needs a navigation path, as in Things(1)/Locations/$ref"));
        };
        let id = v
            .get("@iot.id")
            .and_then(JsonValue::as_i64)
            .ok_or_else(|| StaError::bad("the body names the entity as {\"@iot.id\": 1}"))?;
        let back = set
            .navigation()
            .iter()
            .find(|n| n.target == w.parent)
            .ok_or_else(|| StaError::bad("that link cannot be made"))?;
        let change =
            NewEntity { set, props: Vec::new(), links: vec![(back.name.to_owned(), Link::Id(w.id))] };
        let store = Arc::clone(&s.store);
        tokio::task::spawn_blocking(move || store.sta_update(set, id, &change)).await??;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut e = new_entity(set, &v, 0)?;
    if let Some(w) = &within {
        let back = set
            .navigation()
            .iter()
            .find(|n| n.target == w.parent)
            .ok_or_else(|| StaError::bad("cannot create an entity there"))?;
        e.links.retain(|(n, _)| n != back.name);
        e.links.push((back.name.to_owned(), Link::Id(w.id)));
    }
    if set == EntitySet::Observation {
        if let Some((mut o, new_foi)) = as_reading(&e)? {
            if let Some(f) = new_foi {
                let store = Arc::clone(&s.store);
                o.feature_of_interest =
                    Some(tokio::task::spawn_blocking(move || store.sta_create(&f)).await??);
            }
            let outcome = s.ingest.submit(vec![o.clone()]).await?;
            let id = match outcome.first() {
                Some(Outcome::Stored(stored)) => stored.id,
                Some(Outcome::Duplicate { existing }) => *existing,
                None => return Err(StaError::from(IngestError::Unavailable("no outcome".into()))),
            };
            return Ok(created(base, set, id, observation_json(base, id, &o)));
        }
    }
    let store = Arc::clone(&s.store);
    let base = base.to_owned();
    tokio::task::spawn_blocking(move || {
        let id = store.sta_create(&e)?;
        let q = EntityQuery { id: Some(id), top: 1, ..EntityQuery::all(set) };
        let page = store.sta_query(&q)?;
        let body =
            page.entities.first().map_or(JsonValue::Null, |e| JsonValue::Object(entity_json(&base, e, None)));
        Ok(created(&base, set, id, body))
    })
    .await?
}

/// Applies JSON Patch operations (`add`, `replace`, `remove` on `/name` or deeper) to `doc`.
fn apply_patch(doc: &mut JsonValue, ops: &JsonValue) -> StaResult<()> {
    let ops = ops.as_array().ok_or_else(|| StaError::bad("a JSON Patch is an array of operations"))?;
    for op in ops {
        let kind = op.get("op").and_then(JsonValue::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(JsonValue::as_str)
            .ok_or_else(|| StaError::bad("each operation has a path"))?;
        let keys: Vec<String> =
            path.split('/').skip(1).map(|k| k.replace("~1", "/").replace("~0", "~")).collect();
        let Some((lastk, parents)) = keys.split_last() else {
            return Err(StaError::bad("the path names a property"));
        };
        let mut at = &mut *doc;
        for k in parents {
            if !at.get(k).is_some_and(JsonValue::is_object) {
                at[k.as_str()] = json!({});
            }
            at = &mut at[k.as_str()];
        }
        let obj =
            at.as_object_mut().ok_or_else(|| StaError::bad(format!("{path} is not inside an object")))?;
        match kind {
            "add" | "replace" => {
                obj.insert(lastk.clone(), op.get("value").cloned().unwrap_or(JsonValue::Null));
            }
            "remove" => {
                obj.insert(lastk.clone(), JsonValue::Null);
            }
            other => {
                return Err(StaError::bad(format!(
                    "JSON Patch operation {other:?} is not supported (add, replace, remove)"
                )))
            }
        }
    }
    Ok(())
}

fn update(store: &Store, base: &str, path: &Path, body: &[u8], json_patch: bool) -> StaResult<Response> {
    let (Target::Entity(set, id), None, false) = (&path.target, &path.property, path.reference) else {
        return Err(StaError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "PATCH an entity, as in Things(1)".into(),
        });
    };
    let (set, id) = (*set, *id);
    let v = parse_body(body)?;
    let change = if json_patch {
        let q = EntityQuery { id: Some(id), top: 1, ..EntityQuery::all(set) };
        let page = store.sta_query(&q)?;
        let e = page
            .entities
            .first()
            .ok_or_else(|| StaError::not_found(format!("{}({id}) not found", set.plural())))?;
        let mut doc = JsonValue::Object(entity_json(base, e, None));
        let before = doc.clone();
        apply_patch(&mut doc, &v)?;
        let mut changed = Map::new();
        for (k, v) in doc.as_object().into_iter().flatten() {
            if before.get(k) != Some(v) && !k.contains("@iot.") {
                changed.insert(k.clone(), v.clone());
            }
        }
        new_entity(set, &JsonValue::Object(changed), 0)?
    } else {
        new_entity(set, &v, 0)?
    };
    store.sta_update(set, id, &change)?;
    let q = EntityQuery { id: Some(id), top: 1, ..EntityQuery::all(set) };
    let page = store.sta_query(&q)?;
    let body =
        page.entities.first().map_or(JsonValue::Null, |e| JsonValue::Object(entity_json(base, e, None)));
    Ok(json_response(StatusCode::OK, body))
}

fn delete(store: &Store, path: &Path) -> StaResult<Response> {
    match (&path.target, path.reference, &path.property) {
        (Target::Entity(set, id), false, None) => {
            if !store.sta_delete(*set, *id)? {
                return Err(StaError::not_found(format!("{}({id}) not found", set.plural())));
            }
            Ok(StatusCode::OK.into_response())
        }
        (Target::Entity(_, id), true, None) => {
            let Some((parent, pid, nav)) = path.via else {
                return Err(StaError::bad(
                    "DELETE a reference through its navigation path, as in Things(1)/Locations(2)/$ref",
                ));
            };
            if !store.sta_unlink(parent, pid, nav, *id)? {
                return Err(StaError::not_found("no such link"));
            }
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(StaError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "DELETE an entity, as in Things(1)".into(),
        }),
    }
}

/// `POST /sta/v1.1/CreateObservations`: the dataArray extension. All the observations of the body
/// go to the ingest as one batch: stored together or (any error) not at all. Answers the list of the
/// created observations' self links, in the body's order (a duplicate answers the stored one).
async fn create_observations(s: &AppState, base: &str, body: &[u8]) -> StaResult<Response> {
    let batch = citydata_sensors::data_array::parse_create_observations(body)?;
    let outcomes = s.ingest.submit(batch).await?;
    let links: Vec<JsonValue> = outcomes
        .iter()
        .map(|o| {
            let id = match o {
                Outcome::Stored(stored) => stored.id,
                Outcome::Duplicate { existing } => *existing,
            };
            JsonValue::String(self_link(base, EntitySet::Observation, id))
        })
        .collect();
    Ok(json_response(StatusCode::CREATED, JsonValue::Array(links)))
}

#[cfg(test)]
mod tests;
