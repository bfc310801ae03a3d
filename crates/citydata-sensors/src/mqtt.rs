//! The MQTT bridge (the SensorThings MQTT extension) between a broker and the ingest.
//!
//! Devices publish a SensorThings Observation (`phenomenonTime`, `result`, optional `resultTime`,
//! `parameters`) at QoS 1 on `v1.1/Datastreams({id})/Observations`; the bridge subscribes to
//! `v1.1/Datastreams(+)/Observations`, submits what it receives to the [`Ingest`] in batches, and
//! sends each message's PUBACK only after the commit that holds it (rumqttc's manual acks). Every
//! committed observation, from any path, is published back on its datastream's topic as the stored
//! entity (with its `@iot.id`), at QoS 0, for subscribers.
//!
//! Gateways publish many readings at once on [`CREATE_OBSERVATIONS`] (`v1.1/CreateObservations`):
//! the payload is a `CreateObservations` body of the dataArray extension, read by the same parser as
//! the HTTP route ([`crate::data_array`]), at most [`crate::data_array::MAX_BODY`] bytes. Such a
//! message is one batch for the ingest, stored whole or not at all, and acked after its commit.
//!
//! **Invariants:**
//! - A PUBACK is sent only after the commit of its message, or after the message was found
//!   malformed or refused (counted in [`MqttStats`], logged, never retried): a bad message never
//!   blocks the ones behind it. When the store is unavailable the batch is retried, unacked.
//!   PUBACKs leave in the order their messages arrived.
//! - A `CreateObservations` message is refused whole: malformed (counted once in `malformed`) or
//!   refused by the ingest (every reading of it counted in `rejected`); none of its readings is
//!   stored, and it never makes the other messages of its round refused.
//! - The session is persistent (clean session off, a fixed client id), so what the broker accepted
//!   while the bridge was away is delivered when it reconnects; a message delivered twice (after a
//!   lost PUBACK) is a duplicate for the ingest and is not stored twice.
//! - An ack is only sent on the connection that delivered its message: after a reconnect the broker
//!   delivers the unacked messages again, and a stale packet id is never acked.
//! - No echo loop: messages carrying an `@iot.id` are the announcements of a server (this one or
//!   another node on the same broker); they are never ingested. A device's create message has no
//!   `@iot.id` (the SensorThings create rule).
//! - Reconnects by itself with backoff (100 ms doubling to 5 s) and resubscribes on each connect.
//! - The event loop never waits on the ingest (it must keep polling for the acks to leave): the
//!   readings it hands over are bounded by the broker's in-flight limit for QoS 1 (times the
//!   message size for `CreateObservations`: keep that limit modest when gateways send large
//!   batches), and by [`MAX_BACKLOG`] for QoS 0 (beyond it they are dropped and counted).
//!   Announcements are best effort: dropped and counted when the outgoing queue is full.
//!
//! The broker bounds how many unacked messages it sends at once (mosquitto's
//! `max_inflight_messages`, 20 by default); since acks wait for the commit, raise it (for example to
//! 1000) for high rates, and `max_queued_messages` for the backlog kept while the bridge is away.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Packet, Publish, QoS};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc};

use crate::live::observation_json;
use crate::{Event, Ingest, IngestError, NewObservation, Outcome};

/// The topic filters the bridge subscribes to. MQTT's `+` wildcard must fill a whole topic level,
/// so `v1.1/Datastreams(+)/Observations` is not a valid filter: the bridge takes
/// `v1.1/+/Observations` and refuses (as malformed) topics other than `Datastreams({id})`; and
/// `v1.1/Observations`, where the payload names its datastream (`"Datastream":{"@iot.id":N}`), as
/// the SensorThings create rule allows; and [`CREATE_OBSERVATIONS`] for batches.
pub const SUBSCRIPTIONS: [&str; 3] = ["v1.1/+/Observations", "v1.1/Observations", CREATE_OBSERVATIONS];
/// The topic of `CreateObservations` batches (the payload as the HTTP route's body).
pub const CREATE_OBSERVATIONS: &str = "v1.1/CreateObservations";
/// The largest single-observation message accepted, in bytes (a `CreateObservations` message may
/// be up to [`crate::data_array::MAX_BODY`]).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The most messages submitted as one batch.
pub const MAX_BATCH: usize = 2000;
/// The readings of `CreateObservations` messages beyond which the bridge takes no further message
/// into a round of submissions (a round's messages are submitted together and acked together).
const ROUND_READINGS: usize = 50_000;
/// Readings waiting for the ingest beyond which QoS 0 readings are dropped (QoS 1 ones are bounded
/// by the broker, which sends no more unacknowledged messages than its in-flight limit).
pub const MAX_BACKLOG: usize = 100_000;

/// Why an MQTT URL or message was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MqttError {
    /// The broker URL is not `mqtt://HOST[:PORT]`.
    #[error("{0:?} is not a broker URL of the form mqtt://HOST[:PORT]")]
    Url(String),
    /// The topic is not `v1.1/Datastreams({id})/Observations`.
    #[error("topic {0:?} is not v1.1/Datastreams({{id}})/Observations")]
    Topic(String),
    /// The payload is not a valid Observation.
    #[error("message on {topic}: {reason}")]
    Payload {
        /// The topic it came on.
        topic: String,
        /// What was wrong.
        reason: String,
    },
}

/// A broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (1883 when not given).
    pub port: u16,
}

impl BrokerUrl {
    /// Parses `mqtt://HOST[:PORT]` (also `tcp://`).
    ///
    /// # Errors
    /// When it is anything else.
    pub fn parse(url: &str) -> Result<Self, MqttError> {
        let bad = || MqttError::Url(url.to_owned());
        let rest = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h.trim_matches(['[', ']']), p.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (rest, 1883),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self { host: host.to_owned(), port })
    }
}

/// The datastream id of a topic `v1.1/Datastreams({id})/Observations`.
///
/// # Errors
/// When the topic has another shape.
pub fn topic_datastream(topic: &str) -> Result<i64, MqttError> {
    topic
        .strip_prefix("v1.1/Datastreams(")
        .and_then(|r| r.strip_suffix(")/Observations"))
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| MqttError::Topic(topic.to_owned()))
}

/// The topic of a datastream's observations.
pub fn topic_of(datastream: i64) -> String {
    format!("v1.1/Datastreams({datastream})/Observations")
}

/// What a message turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A reading to store.
    Reading(Box<NewObservation>),
    /// The announcement of a stored observation (it has an `@iot.id`): not ingested.
    Announcement,
    /// A `CreateObservations` batch, to store whole or not at all.
    Batch(Vec<NewObservation>),
}

/// Parses a message: its topic names the datastream, its payload is an Observation; or, on
/// [`CREATE_OBSERVATIONS`], its payload is a `CreateObservations` body.
///
/// # Errors
/// When the topic or payload is not valid, saying why.
pub fn parse_message(topic: &str, payload: &[u8]) -> Result<Message, MqttError> {
    if topic == CREATE_OBSERVATIONS {
        let bad = |reason: String| MqttError::Payload { topic: topic.to_owned(), reason };
        let max = crate::data_array::MAX_BODY;
        if payload.len() > max {
            return Err(bad(format!("{} bytes, more than the {max} allowed", payload.len())));
        }
        return crate::data_array::parse_create_observations(payload)
            .map(Message::Batch)
            .map_err(|e| bad(e.to_string()));
    }
    let datastream = if topic == "v1.1/Observations" { None } else { Some(topic_datastream(topic)?) };
    let bad = |reason: String| MqttError::Payload { topic: topic.to_owned(), reason };
    if payload.len() > MAX_MESSAGE {
        return Err(bad(format!("{} bytes, more than the {MAX_MESSAGE} allowed", payload.len())));
    }
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    let serde_json::Value::Object(mut m) = v else {
        return Err(bad("not a JSON object".to_owned()));
    };
    if m.contains_key("@iot.id") {
        return Ok(Message::Announcement);
    }
    let datastream = match datastream {
        Some(id) => id,
        None => m
            .remove("Datastream")
            .and_then(|d| d.get("@iot.id").and_then(serde_json::Value::as_i64))
            .ok_or_else(|| {
                bad("on v1.1/Observations the payload must name its \"Datastream\": {\"@iot.id\": N}"
                    .to_owned())
            })?,
    };
    let reading = observation_from_json(datastream, &mut m).map_err(bad)?;
    Ok(Message::Reading(Box::new(reading)))
}

/// Reads a SensorThings Observation object (as a device creates it) for `datastream`.
///
/// # Errors
/// A message saying which member is missing or malformed.
pub fn observation_from_json(
    datastream: i64,
    m: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<NewObservation, String> {
    for key in m.keys() {
        if !matches!(
            key.as_str(),
            "phenomenonTime"
                | "result"
                | "resultTime"
                | "parameters"
                | "validTime"
                | "resultQuality"
                | "FeatureOfInterest"
        ) && !key.starts_with("Datastream")
        {
            return Err(format!("unknown member {key:?}"));
        }
    }
    let result = m.remove("result").ok_or("\"result\" is missing")?;
    let (phenomenon_time, phenomenon_end) = match m.get("phenomenonTime") {
        Some(serde_json::Value::String(s)) => parse_time_or_interval(s)?,
        Some(_) => return Err("\"phenomenonTime\" must be an ISO 8601 time string".to_owned()),
        None => return Err("\"phenomenonTime\" is missing".to_owned()),
    };
    let result_time = match m.get("resultTime") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(parse_time(s)?),
        Some(_) => return Err("\"resultTime\" must be an ISO 8601 time string".to_owned()),
    };
    let parameters = match m.remove("parameters") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Object(p)) => Some(p),
        Some(_) => return Err("\"parameters\" must be an object".to_owned()),
    };
    let feature_of_interest = match m.get("FeatureOfInterest") {
        None => None,
        Some(f) => Some(
            f.get("@iot.id")
                .and_then(serde_json::Value::as_i64)
                .ok_or("\"FeatureOfInterest\" must be a reference {\"@iot.id\": N}")?,
        ),
    };
    Ok(NewObservation {
        datastream,
        phenomenon_time,
        phenomenon_end,
        result,
        result_time,
        parameters,
        feature_of_interest,
    })
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("{s:?} is not an ISO 8601 time with offset: {e}"))
}

fn parse_time_or_interval(s: &str) -> Result<(OffsetDateTime, Option<OffsetDateTime>), String> {
    match s.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (parse_time(a)?, parse_time(b)?);
            if b < a {
                return Err(format!("interval {s:?} ends before it starts"));
            }
            Ok((a, Some(b)))
        }
        None => Ok((parse_time(s)?, None)),
    }
}

/// Counters of the bridge, readable while it runs.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Connected to the broker now.
    pub connected: AtomicBool,
    /// Connections made (the first and every reconnect).
    pub connections: AtomicU64,
    /// Readings received (those of `CreateObservations` messages included).
    pub received: AtomicU64,
    /// Valid `CreateObservations` messages received.
    pub batches: AtomicU64,
    /// Readings stored.
    pub stored: AtomicU64,
    /// Readings that were duplicates (already stored).
    pub duplicates: AtomicU64,
    /// Messages that were not valid Observations or `CreateObservations` bodies (logged and
    /// acked; a malformed batch counts once).
    pub malformed: AtomicU64,
    /// Readings the ingest refused (unknown datastream, wrong result type; logged and acked).
    pub rejected: AtomicU64,
    /// QoS 0 readings dropped because the ingest was too far behind.
    pub overflow: AtomicU64,
    /// Announcements received (own or another node's), ignored.
    pub announcements: AtomicU64,
    /// Observations published to subscribers.
    pub published: AtomicU64,
    /// Observations not published because the outgoing queue was full.
    pub publish_dropped: AtomicU64,
}

impl MqttStats {
    /// The counters as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "connected": self.connected.load(Ordering::Relaxed),
            "connections": g(&self.connections),
            "received": g(&self.received),
            "batches": g(&self.batches),
            "stored": g(&self.stored),
            "duplicates": g(&self.duplicates),
            "malformed": g(&self.malformed),
            "rejected": g(&self.rejected),
            "overflow": g(&self.overflow),
            "announcements": g(&self.announcements),
            "published": g(&self.published),
            "publishDropped": g(&self.publish_dropped),
        })
    }
}

/// Options of the bridge.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    /// The client id (fixed, so that the broker keeps the session across reconnects).
    pub client_id: String,
    /// Publish every committed observation on its topic.
    pub announce: bool,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        Self { client_id: "citydata-ingest".to_owned(), announce: true }
    }
}

/// A running bridge: its counters, and a way to stop it.
pub struct Bridge {
    /// The counters.
    pub stats: Arc<MqttStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Bridge {
    /// Stops the bridge's tasks (unacked messages stay with the broker).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

struct Received {
    /// The message, its payload dropped once parsed (the ack needs its packet id and QoS).
    publish: Publish,
    generation: u64,
    readings: Vec<NewObservation>,
    /// From `CreateObservations`: submitted as a batch of its own.
    bulk: bool,
}

static RUNNING: std::sync::Mutex<Vec<std::sync::Weak<MqttStats>>> = std::sync::Mutex::new(Vec::new());

/// The counters of the bridges running in this process (for status pages).
pub fn running() -> Vec<Arc<MqttStats>> {
    let mut list = RUNNING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    list.retain(|w| w.strong_count() > 0);
    list.iter().filter_map(std::sync::Weak::upgrade).collect()
}

/// Starts the bridge on the current tokio runtime.
pub fn start(broker: &BrokerUrl, ingest: Arc<dyn Ingest>, opts: BridgeOptions) -> Bridge {
    let mut mo = MqttOptions::new(opts.client_id.clone(), broker.host.clone(), broker.port);
    mo.set_keep_alive(Duration::from_secs(10))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(crate::data_array::MAX_BODY + 1024, MAX_MESSAGE + 1024);
    let (client, eventloop) = AsyncClient::new(mo, 10_000);
    let stats = Arc::new(MqttStats::default());
    RUNNING.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::downgrade(&stats));
    let generation = Arc::new(AtomicU64::new(0));
    // Unbounded so that the event loop never waits on the ingest (it must keep polling to send the
    // acks); bounded in practice by the broker's in-flight limit, and by MAX_BACKLOG for QoS 0.
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = vec![
        tokio::spawn(poll_loop(
            eventloop,
            client.clone(),
            tx,
            stats.clone(),
            generation.clone(),
            backlog.clone(),
        )),
        tokio::spawn(ingest_loop(rx, client.clone(), ingest.clone(), stats.clone(), generation, backlog)),
    ];
    if opts.announce {
        tasks.push(tokio::spawn(announce_loop(ingest.subscribe(), client, stats.clone())));
    }
    Bridge { stats, tasks }
}

async fn poll_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    tx: mpsc::UnboundedSender<Received>,
    stats: Arc<MqttStats>,
    generation: Arc<AtomicU64>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match eventloop.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) => {
                backoff = Duration::from_millis(100);
                generation.fetch_add(1, Ordering::SeqCst);
                stats.connected.store(true, Ordering::Relaxed);
                stats.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
                for filter in SUBSCRIPTIONS {
                    if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::warn!(error = %e, "cannot subscribe to {filter}");
                    }
                }
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                let gen = generation.load(Ordering::SeqCst);
                let (readings, bulk) = match parse_message(&p.topic, &p.payload) {
                    Ok(Message::Reading(reading)) => (vec![*reading], false),
                    Ok(Message::Batch(readings)) => {
                        stats.batches.fetch_add(1, Ordering::Relaxed);
                        (readings, true)
                    }
                    Ok(Message::Announcement) => {
                        stats.announcements.fetch_add(1, Ordering::Relaxed);
                        ack(&client, &p);
                        continue;
                    }
                    Err(e) => {
                        stats.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "malformed MQTT message, acknowledged and dropped");
                        ack(&client, &p);
                        continue;
                    }
                };
                let n = readings.len() as u64;
                stats.received.fetch_add(n, Ordering::Relaxed);
                if p.qos == QoS::AtMostOnce && backlog.load(Ordering::Relaxed) >= MAX_BACKLOG {
                    stats.overflow.fetch_add(n, Ordering::Relaxed);
                    continue;
                }
                backlog.fetch_add(readings.len(), Ordering::Relaxed);
                let mut publish = p;
                publish.payload = Default::default();
                if tx.send(Received { publish, generation: gen, readings, bulk }).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if stats.connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "lost the MQTT broker; reconnecting");
                } else {
                    tracing::debug!(error = %e, "cannot reach the MQTT broker");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn ack(client: &AsyncClient, p: &Publish) {
    if p.qos != QoS::AtMostOnce {
        if let Err(e) = client.try_ack(p) {
            tracing::debug!(error = %e, "cannot queue a PUBACK; the broker will deliver again");
        }
    }
}

async fn ingest_loop(
    mut rx: mpsc::UnboundedReceiver<Received>,
    client: AsyncClient,
    ingest: Arc<dyn Ingest>,
    stats: Arc<MqttStats>,
    generation: Arc<AtomicU64>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut round: Vec<Received> = Vec::with_capacity(MAX_BATCH);
    loop {
        // A round: what is waiting, up to MAX_BATCH messages and about ROUND_READINGS readings.
        let Some(first) = rx.recv().await else { return };
        let mut readings = first.readings.len();
        round.push(first);
        while round.len() < MAX_BATCH && readings < ROUND_READINGS {
            let Ok(r) = rx.try_recv() else { break };
            readings += r.readings.len();
            round.push(r);
        }
        backlog.fetch_sub(readings, Ordering::Relaxed);
        // The single readings go as one batch, each CreateObservations message as its own; all are
        // submitted at once, so that the group commit can write them in one transaction.
        let mut tasks = tokio::task::JoinSet::new();
        let singles: Vec<NewObservation> =
            round.iter().filter(|r| !r.bulk).flat_map(|r| r.readings.iter().cloned()).collect();
        if !singles.is_empty() {
            let ingest = ingest.clone();
            tasks.spawn(async move { (None, submit_retrying(&*ingest, singles).await) });
        }
        for (i, r) in round.iter_mut().enumerate().filter(|(_, r)| r.bulk) {
            let (ingest, batch) = (ingest.clone(), std::mem::take(&mut r.readings));
            let n = batch.len();
            tasks.spawn(async move { (Some((i, n)), submit_retrying(&*ingest, batch).await) });
        }
        let mut failed = false;
        while let Some(done) = tasks.join_next().await {
            let (which, result) = match done {
                Ok(x) => x,
                Err(e) => {
                    // Nothing of the round is acked: the broker delivers it again on the next
                    // connection, and what was committed is then a duplicate.
                    tracing::error!(error = %e, "an MQTT submission failed; the round stays unacked");
                    failed = true;
                    continue;
                }
            };
            match (which, result) {
                (_, Ok(outcomes)) => count(&stats, &outcomes),
                (Some((i, n)), Err(e)) => {
                    stats.rejected.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::warn!(error = %e, topic = %round[i].publish.topic, readings = n, "MQTT CreateObservations refused whole, acknowledged and dropped");
                }
                (None, Err(e)) => {
                    // A reading of the batch was refused: store the others one by one.
                    tracing::debug!(error = %e, "batch refused; submitting its readings one by one");
                    for r in round.iter().filter(|r| !r.bulk) {
                        let Some(reading) = r.readings.first() else { continue };
                        match submit_retrying(&*ingest, vec![reading.clone()]).await {
                            Ok(outcomes) => count(&stats, &outcomes),
                            Err(e) => {
                                stats.rejected.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(error = %e, topic = %r.publish.topic, "MQTT reading refused, acknowledged and dropped");
                            }
                        }
                    }
                }
            }
        }
        let gen = generation.load(Ordering::SeqCst);
        for r in round.drain(..) {
            if r.generation == gen && !failed {
                if let Err(e) = client.ack(&r.publish).await {
                    tracing::debug!(error = %e, "cannot queue a PUBACK");
                }
            }
        }
    }
}

/// Submits, retrying while the store is unavailable; returns the outcome or the refusal.
async fn submit_retrying(
    ingest: &dyn Ingest,
    batch: Vec<NewObservation>,
) -> Result<Vec<Outcome>, IngestError> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match ingest.submit(batch.clone()).await {
            Err(IngestError::Unavailable(why)) => {
                tracing::warn!(%why, "store unavailable; retrying the MQTT batch");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

fn count(stats: &MqttStats, outcomes: &[Outcome]) {
    for o in outcomes {
        match o {
            Outcome::Stored(_) => stats.stored.fetch_add(1, Ordering::Relaxed),
            Outcome::Duplicate { .. } => stats.duplicates.fetch_add(1, Ordering::Relaxed),
        };
    }
}

async fn announce_loop(mut rx: broadcast::Receiver<Arc<Event>>, client: AsyncClient, stats: Arc<MqttStats>) {
    loop {
        match rx.recv().await {
            Ok(ev) => {
                let Event::Observation(o) = &*ev else { continue };
                let mut v = observation_json(o);
                if let Some(m) = v.as_object_mut() {
                    m.remove("Datastream@iot.id");
                }
                let payload = v.to_string();
                match client.try_publish(topic_of(o.reading.datastream), QoS::AtMostOnce, false, payload) {
                    Ok(()) => stats.published.fetch_add(1, Ordering::Relaxed),
                    Err(_) => stats.publish_dropped.fetch_add(1, Ordering::Relaxed),
                };
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                stats.publish_dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let ok = [
            ("mqtt://localhost:1884", "localhost", 1884),
            ("mqtt://127.0.0.1", "127.0.0.1", 1883),
            ("tcp://broker.example:8883/", "broker.example", 8883),
        ];
        for (url, host, port) in ok {
            assert_eq!(BrokerUrl::parse(url).unwrap(), BrokerUrl { host: host.into(), port }, "{url}");
        }
        for bad in ["http://x:1", "mqtt://", "mqtt://x:99999", "mqtt://u@x:1", "mqtt://x/y", "x:1"] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topics() {
        assert_eq!(topic_datastream("v1.1/Datastreams(42)/Observations").unwrap(), 42);
        assert_eq!(topic_of(42), "v1.1/Datastreams(42)/Observations");
        for bad in ["v1.1/Datastreams(x)/Observations", "v1.1/Datastreams(0)/Observations", "v1.0/Things(1)"]
        {
            assert!(topic_datastream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages() {
        let t = "v1.1/Datastreams(7)/Observations";
        let m = parse_message(
            "v1.1/Observations",
            br#"{"phenomenonTime":"2026-05-01T08:00:00+08:00","result":1,"Datastream":{"@iot.id":9}}"#,
        )
        .unwrap();
        assert!(matches!(&m, Message::Reading(r) if r.datastream == 9), "{m:?}");
        assert!(parse_message(
            "v1.1/Observations",
            br#"{"phenomenonTime":"2026-05-01T08:00:00Z","result":1}"#
        )
        .unwrap_err()
        .to_string()
        .contains("must name its"));
        let m = parse_message(
            t,
            br#"{"phenomenonTime":"2026-05-01T08:00:00+08:00","result":12.5,"parameters":{"q":"ok"}}"#,
        )
        .unwrap();
        let Message::Reading(r) = m else { panic!("{m:?}") };
        assert_eq!(r.datastream, 7);
        assert_eq!(r.phenomenon_time, time::macros::datetime!(2026-05-01 00:00 UTC));
        assert_eq!(r.result, serde_json::json!(12.5));
        assert_eq!(r.parameters.unwrap()["q"], "ok");
        let Message::Reading(r) = parse_message(
            t,
            br#"{"phenomenonTime":"2026-05-01T00:00:00Z/2026-05-01T01:00:00Z","result":"x","resultTime":"2026-05-01T01:00:05Z"}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(r.phenomenon_end, Some(time::macros::datetime!(2026-05-01 01:00 UTC)));
        assert_eq!(r.result_time, Some(time::macros::datetime!(2026-05-01 01:00:05 UTC)));
        assert_eq!(
            parse_message(t, br#"{"@iot.id":5,"phenomenonTime":"2026-05-01T00:00:00Z","result":1}"#).unwrap(),
            Message::Announcement
        );
        let cases: [(&[u8], &str); 8] = [
            (b"not json", "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"result":1}"#, "\"phenomenonTime\" is missing"),
            (br#"{"phenomenonTime":"2026-05-01T00:00:00Z"}"#, "\"result\" is missing"),
            (br#"{"phenomenonTime":"yesterday","result":1}"#, "\"yesterday\" is not an ISO 8601"),
            (br#"{"phenomenonTime":"2026-05-01T00:00:00","result":1}"#, "not an ISO 8601 time with offset"),
            (br#"{"phenomenonTime":"2026-05-02T00:00:00Z/2026-05-01T00:00:00Z","result":1}"#, "ends before"),
            (br#"{"phenomenonTime":"2026-05-01T00:00:00Z","result":1,"colour":2}"#, "unknown member"),
        ];
        for (payload, says) in cases {
            let e = parse_message(t, payload).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(t), "{e}");
        }
        let big = vec![b' '; MAX_MESSAGE + 1];
        assert!(parse_message(t, &big).unwrap_err().to_string().contains("more than"));
    }

    #[test]
    fn create_observations_messages() {
        let m = parse_message(
            CREATE_OBSERVATIONS,
            br#"[{"Datastream":{"@iot.id":4},"components":["phenomenonTime","result"],
                 "dataArray":[["2026-05-01T00:00:00Z",1],["2026-05-01T00:01:00Z",2]]}]"#,
        )
        .unwrap();
        let Message::Batch(b) = m else { panic!("{m:?}") };
        assert_eq!(b.len(), 2);
        assert_eq!((b[1].datastream, &b[1].result), (4, &serde_json::json!(2)));
        // The HTTP route's parser and messages; a body larger than a single message is fine.
        let e = parse_message(CREATE_OBSERVATIONS, b"{\"result\":1}").unwrap_err().to_string();
        assert!(e.contains("JSON array") && e.contains(CREATE_OBSERVATIONS), "{e}");
        let mut big = b"[".to_vec();
        big.extend(vec![b' '; MAX_MESSAGE * 2]);
        big.extend(b"]");
        assert_eq!(parse_message(CREATE_OBSERVATIONS, &big).unwrap(), Message::Batch(vec![]));
        let huge = vec![b' '; crate::data_array::MAX_BODY + 1];
        assert!(parse_message(CREATE_OBSERVATIONS, &huge).unwrap_err().to_string().contains("more than"));
    }

    /// A mosquitto broker on a free port, with persistence, stopped on drop.
    pub(crate) struct Broker {
        pub port: u16,
        /// The broker's limit of unacknowledged messages per client (0: none).
        pub inflight: u32,
        dir: tempfile::TempDir,
        child: Option<std::process::Child>,
    }

    impl Broker {
        pub fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            // Started as root, mosquitto drops to its own user, which must be able to save its
            // persistence file here.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut b = Broker { port, inflight: 1000, dir, child: None };
            b.restart();
            b
        }

        pub fn restart(&mut self) {
            self.stop();
            let conf = self.dir.path().join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!(
                    "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
                     autosave_interval 1\nmax_inflight_messages {}\nmax_queued_messages 1000000\n",
                    self.port,
                    self.dir.path().display(),
                    self.inflight
                ),
            )
            .unwrap();
            let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "mosquitto"]
                .into_iter()
                .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
                .unwrap();
            let child = std::process::Command::new(exe)
                .arg("-c")
                .arg(&conf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("mosquitto must be installed (.ci/run installs it)");
            self.child = Some(child);
            let t = std::time::Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(t.elapsed() < Duration::from_secs(10), "mosquitto did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// Stops gracefully (SIGTERM), so that the broker saves its queues.
        pub fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = std::process::Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
                let _ = c.wait();
            }
        }
    }

    impl Drop for Broker {
        fn drop(&mut self) {
            self.stop();
        }
    }

    /// An ingest in memory with the store's duplicate rule, for testing the bridge alone.
    struct MemIngest {
        rows: std::sync::Mutex<std::collections::BTreeMap<(i64, OffsetDateTime), i64>>,
        tx: broadcast::Sender<Arc<Event>>,
        /// How long each commit takes.
        delay: Duration,
    }

    impl Ingest for MemIngest {
        fn submit(
            &self,
            batch: Vec<NewObservation>,
        ) -> crate::BoxFuture<'_, Result<Vec<Outcome>, IngestError>> {
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                if let Some(r) = batch.iter().find(|r| r.datastream > 100) {
                    return Err(IngestError::UnknownDatastream(r.datastream));
                }
                let mut rows = self.rows.lock().unwrap();
                let mut out = Vec::new();
                for r in batch {
                    let next = rows.len() as i64 + 1;
                    match rows.entry((r.datastream, r.phenomenon_time)) {
                        std::collections::btree_map::Entry::Occupied(e) => {
                            out.push(Outcome::Duplicate { existing: *e.get() })
                        }
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(next);
                            let o = crate::Observation { id: next, reading: r };
                            let _ = self.tx.send(Arc::new(Event::Observation(o.clone())));
                            out.push(Outcome::Stored(Box::new(o)));
                        }
                    }
                }
                Ok(out)
            })
        }
        fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
            self.tx.subscribe()
        }
        fn observe(&self, _: crate::Observer) {}
    }

    fn reading_json(i: i64) -> String {
        let t = time::macros::datetime!(2026-05-01 00:00 UTC) + time::Duration::seconds(i);
        format!(r#"{{"phenomenonTime":"{}","result":{i}}}"#, t.format(&Rfc3339).unwrap())
    }

    /// A device that publishes at QoS 1 and waits for each PUBACK (from the broker), retrying.
    struct Device {
        client: AsyncClient,
        acks: mpsc::UnboundedReceiver<u16>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Device {
        fn connect(port: u16, id: &str) -> Self {
            let mut mo = MqttOptions::new(id, "127.0.0.1", port);
            mo.set_keep_alive(Duration::from_secs(5)).set_max_packet_size(1 << 20, 1 << 20);
            let (client, mut el) = AsyncClient::new(mo, 100);
            let (tx, acks) = mpsc::unbounded_channel();
            let task = tokio::spawn(async move {
                loop {
                    match el.poll().await {
                        Ok(MqttEvent::Incoming(Packet::PubAck(a))) => {
                            let _ = tx.send(a.pkid);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            });
            Device { client, acks, task }
        }

        /// Publishes until the broker acknowledges; true when it did within `patience`.
        async fn publish_acked(&mut self, topic: &str, payload: String, patience: Duration) -> bool {
            while self.acks.try_recv().is_ok() {}
            let until = tokio::time::Instant::now() + patience;
            while tokio::time::Instant::now() < until {
                if self.client.publish(topic, QoS::AtLeastOnce, false, payload.clone()).await.is_err() {
                    return false;
                }
                if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), self.acks.recv()).await
                {
                    return true;
                }
            }
            false
        }
    }

    impl Drop for Device {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let t = std::time::Instant::now();
        while !cond() {
            assert!(t.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Readings in, malformed and refused ones counted and acked (they block nothing), every
    /// stored observation announced, announcements not ingested again, and across a broker restart
    /// mid-stream every reading the broker acknowledged is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bridge_stores_counts_announces_and_survives_a_broker_restart() {
        let mut broker = Broker::start();
        let (tx, _) = broadcast::channel(10_000);
        let ingest = Arc::new(MemIngest { rows: Default::default(), tx, delay: Duration::ZERO });
        let url = BrokerUrl::parse(&format!("mqtt://127.0.0.1:{}", broker.port)).unwrap();
        let bridge =
            start(&url, ingest.clone(), BridgeOptions { client_id: "bridge-test".into(), announce: true });
        wait_for("the bridge to connect", || bridge.stats.connected.load(Ordering::Relaxed)).await;

        // A watcher of the announcements.
        let mut mo = MqttOptions::new("watcher", "127.0.0.1", broker.port);
        mo.set_keep_alive(Duration::from_secs(5));
        let (watcher, mut wel) = AsyncClient::new(mo, 100);
        watcher.subscribe("v1.1/Datastreams(3)/Observations", QoS::AtMostOnce).await.unwrap();
        let (ann_tx, mut ann_rx) = mpsc::unbounded_channel::<serde_json::Value>();
        let wtask = tokio::spawn(async move {
            loop {
                match wel.poll().await {
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let _ = ann_tx.send(serde_json::from_slice(&p.payload).unwrap_or_default());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut dev = Device::connect(broker.port, "device-1");
        let topic = topic_of(3);
        let patience = Duration::from_secs(5);
        assert!(dev.publish_acked(&topic, "{not json".into(), patience).await);
        assert!(dev.publish_acked(&topic_of(500), reading_json(1), patience).await);
        assert!(dev.publish_acked(&topic, reading_json(1), patience).await);
        wait_for("the first reading", || bridge.stats.stored.load(Ordering::Relaxed) == 1).await;
        assert_eq!(bridge.stats.malformed.load(Ordering::Relaxed), 1);
        assert_eq!(bridge.stats.rejected.load(Ordering::Relaxed), 1);
        // Watchers see the device's message and the stored entity with its id; the bridge ignores
        // the latter (no echo), so nothing is stored twice.
        let mut seen = Vec::new();
        while seen.iter().all(|v: &serde_json::Value| v.get("@iot.id").is_none()) {
            seen.push(tokio::time::timeout(patience, ann_rx.recv()).await.unwrap().unwrap());
        }
        let stored = seen.last().unwrap();
        assert_eq!(stored["@iot.id"], 1);
        assert_eq!(stored["result"], 1);
        wait_for("the echo", || bridge.stats.announcements.load(Ordering::Relaxed) >= 1).await;
        assert_eq!(ingest.rows.lock().unwrap().len(), 1);

        // Mid-stream restart: every reading the broker acknowledged ends up stored.
        let mut acked = vec![1_i64];
        for i in 2..=400_i64 {
            if i == 150 {
                broker.restart();
            }
            if dev.publish_acked(&topic, reading_json(i), Duration::from_secs(15)).await {
                acked.push(i);
            }
        }
        assert!(acked.len() > 390, "the device could publish only {} readings", acked.len());
        wait_for("every acknowledged reading to be stored", || {
            let rows = ingest.rows.lock().unwrap();
            acked.iter().all(|i| {
                rows.contains_key(&(
                    3,
                    time::macros::datetime!(2026-05-01 00:00 UTC) + time::Duration::seconds(*i),
                ))
            })
        })
        .await;
        assert!(bridge.stats.connections.load(Ordering::Relaxed) >= 2, "the bridge did not reconnect");
        wtask.abort();
        bridge.stop();
    }

    /// Under load (a broker with no in-flight limit, a device with 1,000 messages in flight, a slow
    /// store, every reading announced) the acks still leave: the event loop never waits on the
    /// ingest. (When it did, the hand-over queue and the outgoing queue filled each other and the
    /// bridge stopped with 4,000 readings waiting.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_bridge_keeps_up_under_load_with_a_slow_store() {
        let mut broker = Broker::start();
        broker.inflight = 0;
        broker.restart();
        let (tx, _) = broadcast::channel(100_000);
        let ingest = Arc::new(MemIngest { rows: Default::default(), tx, delay: Duration::from_millis(20) });
        let url = BrokerUrl::parse(&format!("mqtt://127.0.0.1:{}", broker.port)).unwrap();
        let bridge =
            start(&url, ingest.clone(), BridgeOptions { client_id: "bridge-load".into(), announce: true });
        wait_for("the bridge to connect", || bridge.stats.connected.load(Ordering::Relaxed)).await;
        let mut mo = MqttOptions::new("device-load", "127.0.0.1", broker.port);
        mo.set_keep_alive(Duration::from_secs(30)).set_inflight(1000);
        let (client, mut el) = AsyncClient::new(mo, 1000);
        let n = 60_000_i64;
        let acks = Arc::new(AtomicU64::new(0));
        let a = acks.clone();
        let poll = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for i in 0..n {
            client.publish(topic_of(1 + i % 10), QoS::AtLeastOnce, false, reading_json(i)).await.unwrap();
        }
        let t = std::time::Instant::now();
        while (ingest.rows.lock().unwrap().len() as i64) < n {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "stuck: {} of {n} stored, {}",
                ingest.rows.lock().unwrap().len(),
                bridge.stats.to_json()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The last PUBACKs may still be on their way to the client when the last row is stored.
        let t = std::time::Instant::now();
        while acks.load(Ordering::Relaxed) < n as u64 && t.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(acks.load(Ordering::Relaxed), n as u64);
        poll.abort();
        bridge.stop();
    }

    /// A `CreateObservations` body: `n` readings of datastream `ds` from second `from`, with
    /// `result(i)` as each result.
    fn data_array(
        ds: i64,
        from: i64,
        n: i64,
        result: impl Fn(i64) -> serde_json::Value,
    ) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = (from..from + n)
            .map(|i| {
                let t = time::macros::datetime!(2026-05-01 00:00 UTC) + time::Duration::seconds(i);
                serde_json::json!([t.format(&Rfc3339).unwrap(), result(i)])
            })
            .collect();
        serde_json::json!({"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"], "dataArray": rows})
    }

    /// Batches over `v1.1/CreateObservations` into the real group commit on a real store: stored
    /// exactly once (a redelivered batch is all duplicates), every reading announced on its
    /// datastream's topic; a malformed batch (bad time, not JSON) or one the ingest refuses
    /// (unknown datastream, wrong result type) stores nothing of it, is counted, and blocks nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_observations_batches_are_stored_whole_and_announced() {
        let broker = Broker::start();
        let (_dir, store, pm, count) = crate::ingest::tests::store();
        let ingest = Arc::new(crate::GroupCommit::start(&store).unwrap());
        let url = BrokerUrl::parse(&format!("mqtt://127.0.0.1:{}", broker.port)).unwrap();
        let bridge =
            start(&url, ingest.clone(), BridgeOptions { client_id: "bridge-bulk".into(), announce: true });
        wait_for("the bridge to connect", || bridge.stats.connected.load(Ordering::Relaxed)).await;

        let mut mo = MqttOptions::new("watcher-bulk", "127.0.0.1", broker.port);
        mo.set_keep_alive(Duration::from_secs(5));
        let (watcher, mut wel) = AsyncClient::new(mo, 100);
        watcher.subscribe("v1.1/+/Observations", QoS::AtMostOnce).await.unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, serde_json::Value)>::new()));
        let s = seen.clone();
        let wtask = tokio::spawn(async move {
            loop {
                match wel.poll().await {
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                        if v.get("@iot.id").is_some() {
                            s.lock().unwrap().push((p.topic.clone(), v));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut dev = Device::connect(broker.port, "gateway-1");
        let patience = Duration::from_secs(10);
        let (n_pm, n_count) = (2000_i64, 1000_i64);
        let body = serde_json::json!([
            data_array(pm, 0, n_pm, |i| serde_json::json!(i as f64 / 4.0)),
            data_array(count, 0, n_count, |i| serde_json::json!(i)),
        ])
        .to_string();
        assert!(dev.publish_acked(CREATE_OBSERVATIONS, body.clone(), patience).await);
        let total = (n_pm + n_count) as u64;
        wait_for("the batch to be stored", || bridge.stats.stored.load(Ordering::Relaxed) == total).await;
        let stored_in = |ds: i64| {
            let mut q =
                citydata_store::sensors::EntityQuery::all(citydata_store::sensors::EntitySet::Observation);
            q.within = Some(citydata_store::sensors::Within {
                parent: citydata_store::sensors::EntitySet::Datastream,
                id: ds,
                nav: "Observations",
            });
            (q.top, q.count) = (0, true);
            store.sta_query(&q).unwrap().count.unwrap()
        };
        assert_eq!((stored_in(pm), stored_in(count)), (n_pm as u64, n_count as u64));
        assert_eq!(bridge.stats.batches.load(Ordering::Relaxed), 1);
        assert_eq!(bridge.stats.received.load(Ordering::Relaxed), total);

        // Every stored reading announced once, on its datastream's topic, with its result.
        wait_for("every announcement", || seen.lock().unwrap().len() as u64 >= total).await;
        {
            let seen = seen.lock().unwrap();
            let ids: std::collections::BTreeSet<i64> =
                seen.iter().map(|(_, v)| v["@iot.id"].as_i64().unwrap()).collect();
            assert_eq!(ids.len() as u64, total, "an announcement repeated");
            let on_pm: Vec<&serde_json::Value> =
                seen.iter().filter(|(t, _)| *t == topic_of(pm)).map(|(_, v)| &v["result"]).collect();
            assert_eq!(on_pm.len() as i64, n_pm);
            assert!(on_pm.contains(&&serde_json::json!(499.75)));
        }

        // The same batch again (a gateway's retry): all duplicates, nothing doubled.
        assert!(dev.publish_acked(CREATE_OBSERVATIONS, body, patience).await);
        wait_for("the retry", || bridge.stats.duplicates.load(Ordering::Relaxed) == total).await;
        assert_eq!((stored_in(pm), stored_in(count)), (n_pm as u64, n_count as u64));

        // Refused whole: a bad time in the last row, not JSON (malformed); an unknown datastream, a
        // wrong result type for the count (refused by the ingest). Each holds good readings too.
        let bad_time = {
            let mut g = data_array(pm, 10_000, 50, |i| serde_json::json!(i));
            g["dataArray"][49][0] = "2026-05-01 12:00".into();
            serde_json::json!([g]).to_string()
        };
        let unknown = serde_json::json!([
            data_array(pm, 20_000, 30, |i| serde_json::json!(i)),
            data_array(9999, 0, 5, |i| serde_json::json!(i))
        ]);
        let wrong = serde_json::json!([
            data_array(count, 30_000, 20, |i| serde_json::json!(i)),
            data_array(count, 40_000, 1, |_| serde_json::json!(2.5))
        ]);
        for bad in [bad_time, "[{\"Datastream\"".to_owned(), unknown.to_string(), wrong.to_string()] {
            assert!(dev.publish_acked(CREATE_OBSERVATIONS, bad, patience).await);
        }
        // A good batch behind them still goes in.
        let good = serde_json::json!([data_array(count, 50_000, 10, |i| serde_json::json!(i))]).to_string();
        assert!(dev.publish_acked(CREATE_OBSERVATIONS, good, patience).await);
        wait_for("the good batch behind the bad ones", || {
            bridge.stats.stored.load(Ordering::Relaxed) == total + 10
        })
        .await;
        wait_for("the refusals", || bridge.stats.rejected.load(Ordering::Relaxed) == 35 + 21).await;
        assert_eq!(bridge.stats.malformed.load(Ordering::Relaxed), 2);
        assert_eq!((stored_in(pm), stored_in(count)), (n_pm as u64, n_count as u64 + 10));
        assert_eq!(bridge.stats.batches.load(Ordering::Relaxed), 5, "{}", bridge.stats.to_json());
        wtask.abort();
        bridge.stop();
    }
}
