//! Live city data over HTTP: the Server-Sent Events stream of new observations and rollups
//! (`GET /api/v1/live`), the government feeds posted in their own shapes
//! (`POST /api/v1/feeds/{kind}`), and the counters of both and of the MQTT bridge
//! (`GET /api/v1/live/stats`).
//!
//! The stream sends each committed observation of the chosen datastreams as an `observation`
//! event whose `id:` is the observation's id and, when asked (`rollups=minute,hour`), each minute or
//! hour bucket a commit changed as a `rollup` event (count, min, max, mean after the commit) whose
//! `id:` is that commit's greatest observation id. A client that reconnects with `Last-Event-ID`
//! first gets what it missed that the hub still holds (the rollups of the resume id's own commit
//! again: they are snapshots, a repeat is harmless), then a `gap` event for each datastream of
//! which the hub no longer holds everything after that id. A client too slow to keep up is dropped
//! (its stream ends) rather than slowing anyone else; it reconnects and resumes. A comment is sent
//! every 15 s when nothing else is, so that proxies keep the connection open.
//!
//! **Invariant:** nothing here writes the store except through the ingest (readings) and the store's
//! SensorThings create (the Things and Datastreams of feed series met for the first time).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::{Extension, Json};
use citydata_sensors::feeds::{self, FeedKind};
use citydata_sensors::live::{LiveConfig, LiveEvent, LiveHub, Want};
use citydata_sensors::simulate::{ensure_datastreams, SeriesSpec, StoreDirectory};
use citydata_sensors::{IngestError, Outcome};
use citydata_store::sensors::{EntityQuery, EntitySet};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};

use crate::extract::{Path, Query};
use crate::{ApiError, AppState};

/// The most datastreams one stream may follow.
pub const MAX_DATASTREAMS: usize = 100;

/// What the live routes share: the fan-out hub and the datastreams of feed series.
#[derive(Clone)]
pub struct Live {
    hub: LiveHub,
    feed_series: Arc<Mutex<HashMap<String, i64>>>,
}

impl Live {
    /// A hub fed by the state's ingest. Outside a tokio runtime the hub gets no feed (it is only
    /// useful for routes that never stream).
    pub fn start(state: &AppState) -> Self {
        let hub = if tokio::runtime::Handle::try_current().is_ok() {
            LiveHub::start(&*state.ingest, LiveConfig::default())
        } else {
            LiveHub::new(LiveConfig::default())
        };
        Live { hub, feed_series: Arc::default() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiveParams {
    datastreams: Option<String>,
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
    rollups: Option<String>,
    observations: Option<String>,
}

/// What a stream asks for: observations unless `observations=false`, and the rollups named in
/// `rollups` (`minute`, `hour`, comma-separated; none by default).
fn parse_want(p: &LiveParams) -> Result<Want, ApiError> {
    let mut want = Want::default();
    for part in p.rollups.as_deref().unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "minute" => want.minute = true,
            "hour" => want.hour = true,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "rollups: {other:?} is not a rollup; give minute, hour or minute,hour"
                )))
            }
        }
    }
    want.observations = match p.observations.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!("observations: {other:?} is neither true nor false")))
        }
    };
    if !(want.observations || want.minute || want.hour) {
        return Err(ApiError::BadRequest(
            "observations=false asks for nothing unless rollups names minute or hour".into(),
        ));
    }
    Ok(want)
}

fn parse_ids(list: &str) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: i64 =
            part.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::BadRequest(format!("datastreams: {part:?} is not a datastream id"))
            })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(ApiError::BadRequest(
            "datastreams: give one or more ids, such as datastreams=1,2,3".into(),
        ));
    }
    if ids.len() > MAX_DATASTREAMS {
        return Err(ApiError::BadRequest(format!(
            "datastreams: at most {MAX_DATASTREAMS} per stream, not {}",
            ids.len()
        )));
    }
    Ok(ids)
}

fn sse_event(e: &LiveEvent) -> SseEvent {
    SseEvent::default().event(e.kind).id(e.id.to_string()).data(&e.data)
}

/// `GET /api/v1/live?datastreams=1,2,3[&rollups=minute,hour][&observations=false]`
pub(crate) async fn live(
    State(s): State<AppState>,
    Extension(live): Extension<Live>,
    Query(p): Query<LiveParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let ids = parse_ids(p.datastreams.as_deref().unwrap_or(""))?;
    let want = parse_want(&p)?;
    let last =
        match headers.get("last-event-id").map(|v| v.to_str().unwrap_or("")).or(p.last_event_id.as_deref()) {
            None | Some("") => None,
            Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
                ApiError::BadRequest(format!("Last-Event-ID {v:?} is not an event id of this stream"))
            })?),
        };
    let store = s.store.clone();
    let check = ids.clone();
    tokio::task::spawn_blocking(move || {
        for id in check {
            let mut q = EntityQuery::all(EntitySet::Datastream);
            q.id = Some(id);
            q.top = 1;
            if store.sta_query(&q)?.entities.is_empty() {
                return Err(ApiError::NotFound(format!("datastream {id} not found")));
            }
        }
        Ok(())
    })
    .await??;
    let sub = live.hub.subscribe(&ids, want, last);
    tracing::debug!(client = sub.client(), datastreams = ?ids, ?want, resume = ?last, "live stream opened");
    let mut first: Vec<SseEvent> =
        vec![SseEvent::default().retry(Duration::from_secs(2)).comment("citydata live")];
    for ds in &sub.gaps {
        first.push(
            SseEvent::default()
                .event("gap")
                .data(json!({"datastream": ds, "after": last, "message": "events after this id are no longer held; read them from the SensorThings API"}).to_string()),
        );
    }
    first.extend(sub.replay.iter().map(|e| sse_event(e)));
    let rest = stream::unfold(sub, |mut sub| async move {
        let e = sub.rx.recv().await?;
        Some((sse_event(&e), sub))
    });
    let events = stream::iter(first).chain(rest).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive")))
}

/// `POST /api/v1/feeds/{kind}`
pub(crate) async fn feed(
    State(s): State<AppState>,
    Extension(live): Extension<Live>,
    Path(kind): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<JsonValue>, ApiError> {
    let body = crate::error::body_or_error(body, feeds::MAX_FEED_BYTES)?;
    let kind = FeedKind::parse(&kind).ok_or_else(|| {
        let names: Vec<&str> = FeedKind::ALL.iter().map(|k| k.name()).collect();
        ApiError::NotFound(format!("no feed {kind:?}; the feeds are {}", names.join(", ")))
    })?;
    let batch = tokio::task::spawn_blocking(move || feeds::parse(kind, &body))
        .await?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // The datastream of each series: known, found in the store, or created.
    let mut keys: Vec<String> = batch.readings.iter().map(|r| r.key.clone()).collect();
    keys.sort_unstable();
    keys.dedup();
    let missing: Vec<String> = {
        let known = live.feed_series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter().filter(|k| !known.contains_key(*k)).cloned().collect()
    };
    if !missing.is_empty() {
        let store = s.store.clone();
        let specs: Vec<SeriesSpec> = missing.iter().map(|k| SeriesSpec::feed(k)).collect();
        let ids = tokio::task::spawn_blocking(move || {
            ensure_datastreams(&mut StoreDirectory { store: &store }, &specs)
        })
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut known = live.feed_series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.extend(missing.into_iter().zip(ids));
    }
    let ids: HashMap<String, i64> = {
        let known = live.feed_series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter().filter_map(|k| known.get(k).map(|id| (k.clone(), *id))).collect()
    };
    let readings = batch.readings.len();
    let mut observations = Vec::with_capacity(readings);
    for r in batch.readings {
        let id =
            *ids.get(&r.key).ok_or_else(|| ApiError::Internal(format!("no datastream for {}", r.key)))?;
        observations.push(r.into_observation(id));
    }
    let (mut stored, mut duplicates) = (0u64, 0u64);
    for chunk in observations.chunks(citydata_sensors::MAX_BATCH) {
        let out = s.ingest.submit(chunk.to_vec()).await.map_err(|e| match e {
            IngestError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::BadRequest(other.to_string()),
        })?;
        for o in out {
            match o {
                Outcome::Stored(_) => stored += 1,
                Outcome::Duplicate { .. } => duplicates += 1,
            }
        }
    }
    Ok(Json(json!({
        "feed": kind.name(),
        "readings": readings,
        "stored": stored,
        "duplicates": duplicates,
        "skipped": batch.skipped,
        "datastreams": keys.len(),
    })))
}

/// `GET /api/v1/live/stats`
pub(crate) async fn stats(Extension(live): Extension<Live>) -> Json<JsonValue> {
    let st = live.hub.stats();
    let mqtt: Vec<JsonValue> = citydata_sensors::mqtt::running().iter().map(|s| s.to_json()).collect();
    Json(json!({
        "live": {"subscribers": st.subscribers, "droppedClients": st.dropped_clients, "delivered": st.delivered},
        "mqtt": mqtt,
    }))
}
