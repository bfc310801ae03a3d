//! Live fan-out: committed observations and rollups to the subscribers of each datastream.
//!
//! A [`LiveHub`] is fed every committed event by the ingest's writer ([`Ingest::observe`]) and, for
//! each, (1) appends it to a bounded ring of recent events of its datastream, so that a client that
//! reconnects with the id of the last event it saw is sent what it missed, and (2) hands it to every
//! subscriber of that datastream that asked for its kind ([`Want`]).
//!
//! Two kinds of events: `observation` (a new reading; its id is the observation's id) and `rollup`
//! (a minute or hour bucket of a datastream as a commit left it: count, min, max, mean; its id is
//! the greatest observation id of that commit, [`RollupEvent::as_of`]). A rollup event is a snapshot
//! of its bucket, not a delta: a later one of the same bucket replaces it, so the ring keeps only
//! the newest of each bucket, and receiving one twice is harmless.
//!
//! **Invariants:**
//! - Ids grow in commit order, and a commit's rollups follow its observations. A resume after
//!   `Last-Event-ID: n` replays the retained observations with an id greater than `n` and the
//!   retained rollups with an id of at least `n` (those of `n`'s own commit may not have arrived),
//!   in stream order; the live events that follow neither repeat nor skip one (replay and
//!   registration happen under one lock).
//! - A slow subscriber never slows the hub or the ingest: each has a bounded queue, filled with
//!   `try_send`; a subscriber whose queue is full is dropped (its stream ends), and it resumes by
//!   reconnecting with its last event id.
//! - A ring holds at most [`LiveConfig::ring`] events per datastream, none older than
//!   [`LiveConfig::retain`], and all rings together at most [`LiveConfig::total`]. When a resume
//!   asks for events the hub no longer holds, or never held (committed before it started, as after
//!   a server restart, or while it lagged behind the ingest), the subscription says so
//!   ([`Subscription::gaps`]) instead of pretending nothing was missed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use citydata_store::sensors::Resolution;

use crate::{Event, Ingest, Observation, RollupEvent};

/// Bounds of the hub.
#[derive(Debug, Clone, Copy)]
pub struct LiveConfig {
    /// Events kept per datastream for resuming clients.
    pub ring: usize,
    /// How long an event is kept for resuming clients.
    pub retain: Duration,
    /// Events queued per subscriber before it is dropped as too slow.
    pub client_queue: usize,
    /// Events kept over all datastreams (the oldest go first).
    pub total: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self { ring: 256, retain: Duration::from_secs(30 * 60), client_queue: 4096, total: 200_000 }
    }
}

/// One event as the live streams send it: its id, its datastream and its JSON text.
#[derive(Debug)]
pub struct LiveEvent {
    /// The event id (the observation's id; for a rollup, [`RollupEvent::as_of`]).
    pub id: i64,
    /// The datastream it belongs to.
    pub datastream: i64,
    /// The event's kind, as the SSE `event:` field (`observation` or `rollup`).
    pub kind: &'static str,
    /// For a rollup, its bucket (length and start, microseconds).
    pub bucket: Option<(Resolution, i64)>,
    /// The hub's own sequence number (unique, in arrival order).
    seq: u64,
    /// The JSON text of the event's data.
    pub data: String,
    /// When the hub received it (just after its commit).
    pub at: Instant,
}

/// The SensorThings JSON of an observation, with its datastream's id added as `Datastream@iot.id`.
pub fn observation_json(o: &Observation) -> serde_json::Value {
    let r = &o.reading;
    let mut m = serde_json::Map::new();
    m.insert("@iot.id".into(), o.id.into());
    let phen = match r.phenomenon_end {
        Some(end) => format!("{}/{}", rfc3339(r.phenomenon_time), rfc3339(end)),
        None => rfc3339(r.phenomenon_time),
    };
    m.insert("phenomenonTime".into(), phen.into());
    m.insert("resultTime".into(), rfc3339(r.result_time.unwrap_or(r.phenomenon_time)).into());
    m.insert("result".into(), r.result.clone());
    if let Some(p) = &r.parameters {
        m.insert("parameters".into(), serde_json::Value::Object(p.clone()));
    }
    m.insert("Datastream@iot.id".into(), r.datastream.into());
    serde_json::Value::Object(m)
}

/// The live JSON of an observation: [`observation_json`] with `kind` (`"observation"`) and
/// `datastream` added, so that an event's data says what it is without its SSE event name.
fn observation_event_json(o: &Observation) -> String {
    let mut v = observation_json(o);
    if let Some(m) = v.as_object_mut() {
        m.insert("kind".into(), "observation".into());
        m.insert("datastream".into(), o.reading.datastream.into());
    }
    v.to_string()
}

/// The name of a rollup resolution in the live streams (`minute`, `hour`).
#[must_use]
pub fn resolution_name(r: Resolution) -> &'static str {
    match r {
        Resolution::Minute => "minute",
        Resolution::Hour => "hour",
    }
}

/// The live JSON of a rollup: `kind` (`"rollup"`), `datastream`, `resolution` (`minute`, `hour`),
/// `phenomenonTime` (the bucket as an interval), `start` and `end`, `count`, `min`, `max`, `mean` and
/// `asOf` (the event id).
pub fn rollup_json(r: &RollupEvent) -> serde_json::Value {
    let c = &r.change;
    let start = micros_time(c.rollup.start);
    let end = micros_time(c.rollup.start.saturating_add(c.resolution.micros()));
    serde_json::json!({
        "kind": "rollup",
        "datastream": c.datastream,
        "resolution": resolution_name(c.resolution),
        "phenomenonTime": format!("{start}/{end}"),
        "start": start,
        "end": end,
        "count": c.rollup.count,
        "min": c.rollup.min,
        "max": c.rollup.max,
        "mean": c.rollup.mean,
        "asOf": r.as_of,
    })
}

fn micros_time(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_or_else(|_| us.to_string(), rfc3339)
}

/// An instant as RFC 3339 text in UTC (`Z`), whatever offset it was given with.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

struct Ring {
    events: VecDeque<Arc<LiveEvent>>,
    /// The greatest observation id evicted from this ring (0 when none was).
    evicted: i64,
    /// The greatest rollup id evicted from this ring (not counting rollups replaced by a newer
    /// snapshot of their bucket).
    evicted_rollup: i64,
}

/// What a subscriber asks for, besides its datastreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// New observations.
    pub observations: bool,
    /// Minute rollups.
    pub minute: bool,
    /// Hour rollups.
    pub hour: bool,
}

impl Default for Want {
    /// Observations only.
    fn default() -> Self {
        Want { observations: true, minute: false, hour: false }
    }
}

impl Want {
    /// Whether `e` is of a kind asked for.
    #[must_use]
    pub fn takes(&self, e: &LiveEvent) -> bool {
        match e.bucket {
            None => self.observations,
            Some((Resolution::Minute, _)) => self.minute,
            Some((Resolution::Hour, _)) => self.hour,
        }
    }

    fn rollups(&self) -> bool {
        self.minute || self.hour
    }
}

struct Subscriber {
    client: u64,
    want: Want,
    tx: mpsc::Sender<Arc<LiveEvent>>,
}

#[derive(Default)]
struct State {
    rings: HashMap<i64, Ring>,
    subscribers: HashMap<i64, Vec<Subscriber>>,
    next_client: u64,
    /// Events the hub itself missed (the ingest feed lagged): every id up to this one may be lost.
    lost_up_to: i64,
    /// The hub missed events and has not yet seen the next one (whose id bounds what was lost).
    losing: bool,
    /// The first event id the hub saw: what was committed before it (before the hub started) was
    /// never held.
    first_seen: Option<i64>,
    /// Every held event in arrival order as (datastream, seq) (some already gone from their ring),
    /// for the total cap.
    order: VecDeque<(i64, u64)>,
    next_seq: u64,
    dropped_clients: u64,
    delivered: u64,
}

/// The fan-out hub. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct LiveHub {
    state: Arc<Mutex<State>>,
    config: LiveConfig,
}

/// Counters of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStats {
    /// Subscribers connected now.
    pub subscribers: usize,
    /// Subscribers dropped because their queue was full.
    pub dropped_clients: u64,
    /// Events handed to subscribers.
    pub delivered: u64,
}

/// A live subscription: what to send first, then what comes.
pub struct Subscription {
    /// Retained events after the resume id, in id order.
    pub replay: Vec<Arc<LiveEvent>>,
    /// Datastreams for which events after the resume id are no longer retained.
    pub gaps: Vec<i64>,
    /// New events; ends when the subscriber was dropped as too slow.
    pub rx: mpsc::Receiver<Arc<LiveEvent>>,
    guard: Unsubscribe,
}

impl Subscription {
    /// The subscriber's number (for logs).
    pub fn client(&self) -> u64 {
        self.guard.client
    }
}

struct Unsubscribe {
    hub: LiveHub,
    client: u64,
    datastreams: Vec<i64>,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut st = self.hub.lock();
        for ds in &self.datastreams {
            if let Some(subs) = st.subscribers.get_mut(ds) {
                subs.retain(|s| s.client != self.client);
                if subs.is_empty() {
                    st.subscribers.remove(ds);
                }
            }
        }
    }
}

impl Ring {
    fn evict(&mut self, old: &LiveEvent) {
        if old.bucket.is_some() {
            self.evicted_rollup = self.evicted_rollup.max(old.id);
        } else {
            self.evicted = self.evicted.max(old.id);
        }
    }
}

impl LiveHub {
    /// A hub with no feed; events come through [`LiveHub::publish`].
    pub fn new(config: LiveConfig) -> Self {
        Self { state: Arc::new(Mutex::new(State::default())), config }
    }

    /// A hub fed by the ingest with every committed event before the commit's callers are answered,
    /// so that a client told of an observation (an HTTP 201) and resuming at once finds it held.
    pub fn start(ingest: &dyn Ingest, config: LiveConfig) -> Self {
        let hub = Self::new(config);
        let h = hub.clone();
        ingest.observe(Arc::new(move |ev: &Event| h.publish(ev)));
        hub
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one committed event: keeps it in its datastream's ring and hands it to subscribers.
    pub fn publish(&self, ev: &Event) {
        let (id, datastream, kind, bucket, data) = match ev {
            Event::Observation(o) => {
                (o.id, o.reading.datastream, "observation", None, observation_event_json(o))
            }
            Event::Rollup(r) => (
                r.as_of,
                r.change.datastream,
                "rollup",
                Some((r.change.resolution, r.change.rollup.start)),
                rollup_json(r).to_string(),
            ),
        };
        let cfg = self.config;
        let mut st = self.lock();
        let st = &mut *st;
        let seq = st.next_seq;
        st.next_seq += 1;
        let live = Arc::new(LiveEvent { id, datastream, kind, bucket, seq, data, at: Instant::now() });
        st.first_seen.get_or_insert(live.id);
        if st.losing {
            st.losing = false;
            st.lost_up_to = live.id - 1;
            for ring in st.rings.values_mut() {
                ring.evicted = ring.evicted.max(live.id - 1);
                ring.evicted_rollup = ring.evicted_rollup.max(live.id - 1);
            }
        }
        let lost_up_to = st.lost_up_to;
        let ring = st.rings.entry(live.datastream).or_insert_with(|| Ring {
            events: VecDeque::new(),
            evicted: lost_up_to,
            evicted_rollup: lost_up_to,
        });
        if live.bucket.is_some() {
            // A newer snapshot of a bucket replaces the one held (this is not an eviction).
            ring.events.retain(|e| e.bucket != live.bucket);
        }
        ring.events.push_back(live.clone());
        while ring.events.len() > cfg.ring || ring.events.front().is_some_and(|e| e.at.elapsed() > cfg.retain)
        {
            if let Some(old) = ring.events.pop_front() {
                ring.evict(&old);
            }
        }
        st.order.push_back((live.datastream, live.seq));
        while st.order.len() > cfg.total.max(1) {
            let Some((ds, seq)) = st.order.pop_front() else { break };
            if let Some(ring) = st.rings.get_mut(&ds) {
                if ring.events.front().is_some_and(|e| e.seq == seq) {
                    if let Some(old) = ring.events.pop_front() {
                        ring.evict(&old);
                    }
                }
            }
        }
        if let Some(subs) = st.subscribers.get_mut(&live.datastream) {
            let before = subs.len();
            let mut sent = 0;
            subs.retain(|s| {
                if !s.want.takes(&live) {
                    return true;
                }
                match s.tx.try_send(live.clone()) {
                    Ok(()) => {
                        sent += 1;
                        true
                    }
                    Err(_) => false,
                }
            });
            st.delivered += sent;
            st.dropped_clients += (before - subs.len()) as u64;
            if subs.is_empty() {
                st.subscribers.remove(&live.datastream);
            }
        }
    }

    /// Tells the hub it missed events (a feeder that fell behind): every ring may lack some, and every subscriber has missed some, so
    /// subscribers are dropped (they resume and are told of the gap).
    pub fn lost(&self) {
        // Ids are assigned in commit order: what was lost is newer than anything kept and older
        // than the next event received, which bounds it (see `publish`).
        let mut st = self.lock();
        let st = &mut *st;
        st.losing = true;
        st.dropped_clients += st.subscribers.values().map(|v| v.len() as u64).sum::<u64>();
        st.subscribers.clear();
    }

    /// Subscribes to the events of `datastreams` that `want` asks for, resuming after event
    /// `last_id` when given.
    pub fn subscribe(&self, datastreams: &[i64], want: Want, last_id: Option<i64>) -> Subscription {
        let (tx, rx) = mpsc::channel(self.config.client_queue.max(1));
        let mut st = self.lock();
        let client = st.next_client;
        st.next_client += 1;
        let mut replay = Vec::new();
        let mut gaps = Vec::new();
        if let Some(last) = last_id {
            // Events between `last` and the first the hub saw may have been committed before it
            // started (a server restart): it cannot vouch for them.
            let before_start = st.first_seen.is_none_or(|f| last < f - 1);
            for ds in datastreams {
                match st.rings.get(ds) {
                    _ if st.losing || before_start => gaps.push(*ds),
                    Some(ring) => {
                        if (want.observations && ring.evicted > last)
                            || (want.rollups() && ring.evicted_rollup >= last.max(1))
                        {
                            gaps.push(*ds);
                        }
                        replay.extend(
                            ring.events
                                .iter()
                                .filter(|e| {
                                    want.takes(e)
                                        && if e.bucket.is_some() { e.id >= last } else { e.id > last }
                                })
                                .cloned(),
                        );
                    }
                    None if st.lost_up_to > last => gaps.push(*ds),
                    None => {}
                }
            }
            // Stream order: by id, a commit's observations before its rollups, then arrival.
            replay.sort_by_key(|e| (e.id, e.bucket.is_some(), e.seq));
        }
        for ds in datastreams {
            st.subscribers.entry(*ds).or_default().push(Subscriber { client, want, tx: tx.clone() });
        }
        drop(st);
        Subscription {
            replay,
            gaps,
            rx,
            guard: Unsubscribe { hub: self.clone(), client, datastreams: datastreams.to_vec() },
        }
    }

    /// The hub's counters.
    pub fn stats(&self) -> LiveStats {
        let st = self.lock();
        let mut clients: Vec<u64> = st.subscribers.values().flatten().map(|s| s.client).collect();
        clients.sort_unstable();
        clients.dedup();
        LiveStats { subscribers: clients.len(), dropped_clients: st.dropped_clients, delivered: st.delivered }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewObservation;

    fn obs(id: i64, ds: i64) -> Event {
        Event::Observation(Observation {
            id,
            reading: NewObservation {
                datastream: ds,
                phenomenon_time: time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds(id),
                phenomenon_end: None,
                result: serde_json::json!(id as f64 / 2.0),
                result_time: None,
                parameters: None,
                feature_of_interest: None,
            },
        })
    }

    #[tokio::test]
    async fn subscribers_get_only_their_datastreams_in_order() {
        let hub = LiveHub::new(LiveConfig::default());
        let mut a = hub.subscribe(&[1, 3], Want::default(), None);
        let mut b = hub.subscribe(&[2], Want::default(), None);
        for (id, ds) in [(1, 1), (2, 2), (3, 3), (4, 1)] {
            hub.publish(&obs(id, ds));
        }
        let ids_a: Vec<i64> = (0..3).map(|_| a.rx.try_recv().unwrap().id).collect();
        assert_eq!(ids_a, [1, 3, 4]);
        assert!(a.rx.try_recv().is_err());
        let e = b.rx.try_recv().unwrap();
        assert_eq!((e.id, e.datastream, e.kind), (2, 2, "observation"));
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["@iot.id"], 2);
        assert_eq!(v["result"], 1.0);
        assert_eq!(v["phenomenonTime"], "2026-01-01T00:00:02Z");
        assert_eq!(v["Datastream@iot.id"], 2);
        assert_eq!(hub.stats().subscribers, 2);
        drop(a);
        assert_eq!(hub.stats().subscribers, 1);
    }

    #[tokio::test]
    async fn resume_replays_what_is_retained_and_reports_gaps() {
        let hub = LiveHub::new(LiveConfig { ring: 3, ..LiveConfig::default() });
        for id in 1..=5 {
            hub.publish(&obs(id, 7));
            hub.publish(&obs(100 + id, 8));
        }
        // Ring of 7 holds 3, 4, 5; of 8 holds 103, 104, 105.
        let s = hub.subscribe(&[7], Want::default(), Some(3));
        assert_eq!(s.replay.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5]);
        assert!(s.gaps.is_empty());
        let s = hub.subscribe(&[7], Want::default(), Some(1));
        assert_eq!(s.replay.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(s.gaps, [7], "event 2 was evicted and must be reported missing");
        let s = hub.subscribe(&[8, 7], Want::default(), Some(4));
        assert_eq!(s.replay.iter().map(|e| e.id).collect::<Vec<_>>(), [5, 103, 104, 105]);
        assert_eq!(s.gaps, [8]);
        // No resume id: nothing replayed.
        assert!(hub.subscribe(&[7], Want::default(), None).replay.is_empty());
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_dropped_and_others_continue() {
        let hub = LiveHub::new(LiveConfig { client_queue: 2, ..LiveConfig::default() });
        let mut slow = hub.subscribe(&[1], Want::default(), None);
        let mut fast = hub.subscribe(&[1], Want::default(), None);
        for id in 1..=5 {
            hub.publish(&obs(id, 1));
            assert_eq!(fast.rx.recv().await.unwrap().id, id);
        }
        // The slow one got its two, then was dropped: its stream ends.
        assert_eq!(slow.rx.recv().await.unwrap().id, 1);
        assert_eq!(slow.rx.recv().await.unwrap().id, 2);
        assert!(slow.rx.recv().await.is_none());
        let st = hub.stats();
        assert_eq!((st.subscribers, st.dropped_clients), (1, 1));
        // It resumes from its last id without loss.
        let again = hub.subscribe(&[1], Want::default(), Some(2));
        assert_eq!(again.replay.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(again.gaps.is_empty());
    }

    #[tokio::test]
    async fn the_total_cap_and_a_restart_are_gaps() {
        let hub = LiveHub::new(LiveConfig { total: 4, ..LiveConfig::default() });
        // Nothing seen yet: a resume cannot be vouched for (the server may have restarted).
        assert_eq!(hub.subscribe(&[1], Want::default(), Some(5)).gaps, [1]);
        for id in 10..=15 {
            hub.publish(&obs(id, 1 + id % 2));
        }
        // Ids 10 and 11 were evicted by the total cap; 12..=15 are held.
        let s = hub.subscribe(&[1, 2], Want::default(), Some(11));
        assert_eq!(s.replay.iter().map(|e| e.id).collect::<Vec<_>>(), [12, 13, 14, 15]);
        assert!(s.gaps.is_empty());
        assert_eq!(hub.subscribe(&[1, 2], Want::default(), Some(9)).gaps, [1, 2]);
        assert_eq!(hub.subscribe(&[2], Want::default(), Some(5)).gaps, [2], "ids before the first seen");
    }

    fn rollup(as_of: i64, ds: i64, res: Resolution, start_min: i64, count: u64) -> Event {
        Event::Rollup(RollupEvent {
            as_of,
            change: citydata_store::sensors::RollupChange {
                datastream: ds,
                resolution: res,
                rollup: citydata_store::sensors::Rollup {
                    start: start_min * 60_000_000,
                    count,
                    min: 1.0,
                    max: 3.0,
                    mean: 2.0,
                },
            },
        })
    }

    const BOTH: Want = Want { observations: true, minute: true, hour: true };

    #[tokio::test]
    async fn rollups_go_to_those_who_asked_and_resume_by_their_commit() {
        let hub = LiveHub::new(LiveConfig::default());
        let mut plain = hub.subscribe(&[1], Want::default(), None);
        let mut hours = hub.subscribe(&[1], Want { observations: false, minute: false, hour: true }, None);
        let mut both = hub.subscribe(&[1, 2], BOTH, None);
        // Commit 1: observations 1 (ds 1) and 2 (ds 2), then their rollups as of 2.
        hub.publish(&obs(1, 1));
        hub.publish(&obs(2, 2));
        hub.publish(&rollup(2, 1, Resolution::Minute, 0, 1));
        hub.publish(&rollup(2, 1, Resolution::Hour, 0, 1));
        hub.publish(&rollup(2, 2, Resolution::Minute, 0, 1));
        // Commit 2: observation 3 (ds 1) in the same minute, then its rollups as of 3.
        hub.publish(&obs(3, 1));
        hub.publish(&rollup(3, 1, Resolution::Minute, 0, 2));
        hub.publish(&rollup(3, 1, Resolution::Hour, 0, 2));
        let drain = |rx: &mut mpsc::Receiver<Arc<LiveEvent>>| {
            let mut v = Vec::new();
            while let Ok(e) = rx.try_recv() {
                v.push((e.kind, e.id, e.datastream));
            }
            v
        };
        assert_eq!(drain(&mut plain.rx), [("observation", 1, 1), ("observation", 3, 1)]);
        assert_eq!(drain(&mut hours.rx), [("rollup", 2, 1), ("rollup", 3, 1)]);
        assert_eq!(drain(&mut both.rx).len(), 8);
        // The data says what it is.
        let s = hub.subscribe(&[1], BOTH, Some(2));
        let data: Vec<serde_json::Value> =
            s.replay.iter().map(|e| serde_json::from_str(&e.data).unwrap()).collect();
        assert_eq!(data[0]["kind"], "observation");
        assert_eq!(data[0]["datastream"], 1);
        assert_eq!(data[1]["kind"], "rollup");
        assert_eq!(data[1]["resolution"], "minute");
        assert_eq!(data[1]["phenomenonTime"], "1970-01-01T00:00:00Z/1970-01-01T00:01:00Z");
        assert_eq!(
            (data[1]["count"].as_u64(), data[1]["mean"].as_f64(), data[1]["asOf"].as_i64()),
            (Some(2), Some(2.0), Some(3))
        );
        // Resuming after 2: observation 3, then the newest snapshot of each bucket (as of 3; the
        // snapshots as of 2 were replaced by them).
        type Seen<'a> = Vec<(&'a str, i64, Option<(Resolution, i64)>)>;
        let kinds: Seen<'_> = s.replay.iter().map(|e| (e.kind, e.id, e.bucket)).collect();
        assert_eq!(
            kinds,
            [
                ("observation", 3, None),
                ("rollup", 3, Some((Resolution::Minute, 0))),
                ("rollup", 3, Some((Resolution::Hour, 0)))
            ]
        );
        assert!(s.gaps.is_empty());
        // Resuming after 3 (the last observation): its commit's rollups again (they may not have
        // arrived); resending a snapshot is harmless.
        let s = hub.subscribe(&[1], BOTH, Some(3));
        assert_eq!(
            s.replay.iter().map(|e| (e.kind, e.id)).collect::<Vec<_>>(),
            [("rollup", 3), ("rollup", 3)]
        );
        // Observations only: nothing after 3.
        assert!(hub.subscribe(&[1], Want::default(), Some(3)).replay.is_empty());
        // Datastream 2's minute as of 2 is still held (no newer snapshot replaced it).
        let s = hub.subscribe(&[2], BOTH, Some(2));
        assert_eq!(s.replay.iter().map(|e| (e.kind, e.id)).collect::<Vec<_>>(), [("rollup", 2)]);
    }

    #[tokio::test]
    async fn evicted_rollups_are_gaps_for_rollup_subscribers_only() {
        let hub = LiveHub::new(LiveConfig { ring: 4, ..LiveConfig::default() });
        for id in 1..=6 {
            hub.publish(&obs(id, 1));
            hub.publish(&rollup(id, 1, Resolution::Minute, id, 1));
        }
        // The ring holds obs 5, rollup 5, obs 6, rollup 6; rollup 4 was evicted.
        let s = hub.subscribe(&[1], BOTH, Some(4));
        assert_eq!(s.gaps, [1], "the rollup as of 4 may not have arrived and is gone");
        let s = hub.subscribe(&[1], Want::default(), Some(4));
        assert!(s.gaps.is_empty());
        assert_eq!(s.replay.iter().map(|e| e.id).collect::<Vec<_>>(), [5, 6]);
        let s = hub.subscribe(&[1], BOTH, Some(5));
        assert!(s.gaps.is_empty());
        assert_eq!(s.replay.len(), 3);
    }

    #[tokio::test]
    async fn a_lagging_hub_drops_subscribers_and_reports_gaps() {
        let hub = LiveHub::new(LiveConfig::default());
        hub.publish(&obs(1, 1));
        let mut s = hub.subscribe(&[1], Want::default(), None);
        hub.lost();
        assert!(s.rx.recv().await.is_none());
        assert_eq!(hub.subscribe(&[1, 2], Want::default(), Some(1)).gaps, [1, 2]);
        // The next event bounds the loss: ids 2..=9 may be lost, later resumes are whole.
        hub.publish(&obs(10, 1));
        assert_eq!(hub.subscribe(&[1, 2], Want::default(), Some(1)).gaps, [1, 2]);
        assert!(hub.subscribe(&[1, 2], Want::default(), Some(9)).gaps.is_empty());
        assert_eq!(hub.subscribe(&[1], Want::default(), Some(9)).replay.len(), 1);
    }
}
