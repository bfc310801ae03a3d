//! Group commit: the one writer of observations.
//!
//! [`GroupCommit`] owns a dedicated thread with the store's [`SensorWriter`]. Callers submit batches
//! from any task; the thread takes the first waiting batch, then every other batch already queued
//! (and, when [`Options::linger`] is set, those arriving within it) up to [`Options::max_readings`],
//! writes them all in one transaction, and commits (`synchronous = FULL`). Only then is each caller's
//! future resolved, and only then are the new observations sent as [`Event`]s on a bounded
//! broadcast channel: a receiver that falls behind skips (it gets `Lagged`), it never holds up
//! the writer.
//!
//! Each batch is checked whole inside the transaction (datastream exists, result fits its
//! observation type, times in order): a refused batch stores nothing and does not affect the
//! batches committed with it. Between transactions the thread prunes raw readings past their
//! datastream's retention every [`Options::prune_every`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citydata_store::sensors::{Reading, Refused, SensorWriter, Written};
use citydata_store::Store;
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    BoxFuture, Event, Ingest, IngestError, NewObservation, Observation, Observer, Outcome, RollupEvent,
};

/// The most observations one submitted batch may hold.
pub const MAX_BATCH: usize = 50_000;

/// How the writer groups and keeps readings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most readings one transaction gathers from several batches (a bigger single batch is
    /// still written whole, in its own transaction).
    pub max_readings: usize,
    /// How long the writer waits for more batches after the first before it commits; zero commits
    /// what is queued at once (batches then group while the previous commit runs).
    pub linger: Duration,
    /// How many batches may wait for the writer before `submit` itself waits.
    pub queue: usize,
    /// How many events the broadcast channel holds for a slow receiver before it skips.
    pub events: usize,
    /// How often raw readings past their retention are pruned.
    pub prune_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_readings: 20_000,
            linger: Duration::ZERO,
            queue: 4096,
            events: 16_384,
            prune_every: Duration::from_secs(600),
        }
    }
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Transactions committed.
    pub transactions: u64,
    /// Readings stored (duplicates not counted).
    pub stored: u64,
    /// Readings found to be duplicates.
    pub duplicates: u64,
    /// Batches refused.
    pub refused: u64,
}

#[derive(Default)]
struct Counters {
    transactions: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    refused: AtomicU64,
}

struct Job {
    batch: Vec<NewObservation>,
    readings: Vec<Reading>,
    reply: oneshot::Sender<Result<Vec<Outcome>, IngestError>>,
}

/// The group-commit ingest (see the module docs).
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    events: broadcast::Sender<Arc<Event>>,
    observers: Observers,
    counters: Arc<Counters>,
}

fn micros(t: OffsetDateTime, what: &str, i: usize) -> Result<i64, IngestError> {
    i64::try_from(t.unix_timestamp_nanos() / 1000)
        .map_err(|_| IngestError::Invalid(format!("observation {i}: the {what} is out of range")))
}

fn reading(o: &NewObservation, i: usize) -> Result<Reading, IngestError> {
    let phenomenon_time = micros(o.phenomenon_time, "phenomenon time", i)?;
    let phenomenon_end = o.phenomenon_end.map(|t| micros(t, "phenomenon time's end", i)).transpose()?;
    if phenomenon_end.is_some_and(|e| e < phenomenon_time) {
        return Err(IngestError::Invalid(format!(
            "observation {i}: the phenomenon time ends before it starts"
        )));
    }
    if let serde_json::Value::Number(n) = &o.result {
        if n.as_f64().is_some_and(|f| !f.is_finite()) {
            return Err(IngestError::Invalid(format!("observation {i}: the result is not a finite number")));
        }
    }
    Ok(Reading {
        datastream: o.datastream,
        phenomenon_time,
        phenomenon_end,
        result_time: o.result_time.map(|t| micros(t, "result time", i)).transpose()?,
        result: o.result.clone(),
        parameters: o.parameters.clone(),
        feature: o.feature_of_interest,
    })
}

impl GroupCommit {
    /// Starts the writer thread on `store` with the default [`Options`].
    ///
    /// # Errors
    /// `Unavailable` when the store's writer cannot be opened.
    pub fn start(store: &Store) -> Result<Self, IngestError> {
        Self::with_options(store, Options::default())
    }

    /// Starts the writer thread on `store`.
    ///
    /// # Errors
    /// `Unavailable` when the store's writer cannot be opened or the thread cannot start.
    pub fn with_options(store: &Store, options: Options) -> Result<Self, IngestError> {
        let writer = store.sensor_writer().map_err(|e| IngestError::Unavailable(e.to_string()))?;
        let (jobs, rx) = mpsc::channel(options.queue.max(1));
        let (events, _) = broadcast::channel(options.events.max(1));
        let counters = Arc::new(Counters::default());
        let thread_events = events.clone();
        let observers = Observers::default();
        let thread_observers = observers.clone();
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("sensor-writer".into())
            .spawn(move || run(writer, rx, &thread_events, &thread_observers, &thread_counters, &options))
            .map_err(|e| IngestError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(GroupCommit { jobs, events, observers, counters })
    }

    /// What the writer has done so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            transactions: c.transactions.load(Ordering::Relaxed),
            stored: c.stored.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
        }
    }
}

impl Ingest for GroupCommit {
    fn submit(&self, batch: Vec<NewObservation>) -> BoxFuture<'_, Result<Vec<Outcome>, IngestError>> {
        Box::pin(async move {
            if batch.len() > MAX_BATCH {
                return Err(IngestError::TooLarge { max: MAX_BATCH, got: batch.len() });
            }
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            let readings =
                batch.iter().enumerate().map(|(i, o)| reading(o, i)).collect::<Result<Vec<_>, _>>()?;
            let (reply, answer) = oneshot::channel();
            self.jobs
                .send(Job { batch, readings, reply })
                .await
                .map_err(|_| IngestError::Unavailable("the writer has stopped".into()))?;
            answer
                .await
                .map_err(|_| IngestError::Unavailable("the writer stopped before the commit".into()))?
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    fn observe(&self, observer: Observer) {
        self.observers.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(observer);
    }
}

/// The observers of committed events, shared with the writer thread.
#[derive(Clone, Default)]
struct Observers(Arc<std::sync::Mutex<Vec<Observer>>>);

/// The writer thread: gather, write, commit, answer, broadcast; until every sender is gone.
fn run(
    mut writer: SensorWriter,
    mut rx: mpsc::Receiver<Job>,
    events: &broadcast::Sender<Arc<Event>>,
    observers: &Observers,
    counters: &Counters,
    options: &Options,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the sensor writer cannot start its timer");
            return;
        }
    };
    let mut next_prune = Instant::now() + options.prune_every;
    loop {
        let wait = next_prune.saturating_duration_since(Instant::now());
        let first = rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await });
        let first = match first {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_) => {
                prune(&mut writer);
                next_prune = Instant::now() + options.prune_every;
                continue;
            }
        };
        let mut jobs = vec![first];
        let mut n = jobs[0].readings.len();
        let deadline = Instant::now() + options.linger;
        while n < options.max_readings {
            let job = match rx.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        None
                    } else {
                        rt.block_on(async { tokio::time::timeout(left, rx.recv()).await }).ok().flatten()
                    }
                }
            };
            let Some(job) = job else { break };
            n += job.readings.len();
            jobs.push(job);
        }
        commit(&mut writer, jobs, events, observers, counters);
        if Instant::now() >= next_prune {
            prune(&mut writer);
            next_prune = Instant::now() + options.prune_every;
        }
    }
}

fn prune(writer: &mut SensorWriter) {
    let now = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
    match writer.prune(now) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "pruned readings past their retention"),
        Err(e) => tracing::warn!(error = %e, "pruning readings failed"),
    }
}

fn commit(
    writer: &mut SensorWriter,
    jobs: Vec<Job>,
    events: &broadcast::Sender<Arc<Event>>,
    observers: &Observers,
    counters: &Counters,
) {
    let batches: Vec<&[Reading]> = jobs.iter().map(|j| j.readings.as_slice()).collect();
    let committed = match writer.write(&batches) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "writing observations failed; nothing of this group was stored");
            for job in jobs {
                let _ = job.reply.send(Err(IngestError::Unavailable(e.to_string())));
            }
            return;
        }
    };
    counters.transactions.fetch_add(1, Ordering::Relaxed);
    let mut new = Vec::new();
    let mut replies = Vec::with_capacity(jobs.len());
    for (job, result) in jobs.into_iter().zip(committed.batches) {
        let answer = match result {
            Err(Refused::UnknownDatastream(id)) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(IngestError::UnknownDatastream(id))
            }
            Err(Refused::Invalid(m)) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(IngestError::Invalid(m))
            }
            Ok(written) => Ok(job
                .batch
                .into_iter()
                .zip(written)
                .map(|(reading, w)| match w {
                    Written::Stored(id) => {
                        counters.stored.fetch_add(1, Ordering::Relaxed);
                        let o = Observation { id, reading };
                        new.push(o.clone());
                        Outcome::Stored(Box::new(o))
                    }
                    Written::Duplicate(existing) => {
                        counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        Outcome::Duplicate { existing }
                    }
                })
                .collect()),
        };
        replies.push((job.reply, answer));
    }
    // Observers first, then the callers: whoever was told of a commit can find its events there.
    // A commit's rollups follow its observations; they carry the commit's greatest new id.
    let as_of = new.iter().map(|o| o.id).max().unwrap_or(0);
    let mut events_now: Vec<Arc<Event>> = new.into_iter().map(|o| Arc::new(Event::Observation(o))).collect();
    if as_of > 0 {
        events_now.extend(
            committed
                .rollups
                .into_iter()
                .map(|change| Arc::new(Event::Rollup(RollupEvent { as_of, change }))),
        );
    }
    for observer in observers.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        for ev in &events_now {
            observer(ev);
        }
    }
    for (reply, answer) in replies {
        let _ = reply.send(answer);
    }
    if events.receiver_count() > 0 {
        for ev in events_now {
            // Fails only when nobody listens; a slow receiver skips, the writer never waits.
            let _ = events.send(ev);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use citydata_store::sensors::{EntityQuery, EntitySet, Link, NewEntity, Resolution, Within};
    use serde_json::json;

    fn props(v: serde_json::Value) -> Vec<(String, serde_json::Value)> {
        v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A store with one Thing at a Location and two datastreams: a measurement and a count.
    pub(crate) fn store() -> (tempfile::TempDir, Arc<Store>, i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let sensor = Link::New(NewEntity {
            set: EntitySet::Sensor,
            props: props(
                json!({"name": "s", "description": "d", "encodingType": "application/pdf", "metadata": "m"}),
            ),
            links: vec![],
        });
        let op = Link::New(NewEntity {
            set: EntitySet::ObservedProperty,
            props: props(json!({"name": "PM2.5", "definition": "x", "description": "d"})),
            links: vec![],
        });
        let ds = |name: &str, t: &str| {
            Link::New(NewEntity {
                set: EntitySet::Datastream,
                props: props(json!({"name": name, "description": "d", "observationType": t,
                    "unitOfMeasurement": {"name": "u", "symbol": "u", "definition": "u"}})),
                links: vec![("Sensor".into(), sensor.clone()), ("ObservedProperty".into(), op.clone())],
            })
        };
        let thing = store
            .sta_create(&NewEntity {
                set: EntitySet::Thing,
                props: props(json!({"name": "lamppost", "description": "d"})),
                links: vec![
                    (
                        "Locations".into(),
                        Link::New(NewEntity {
                            set: EntitySet::Location,
                            props: props(json!({"name": "l", "description": "d", "encodingType": "application/geo+json",
                                "location": {"type": "Point", "coordinates": [114.17, 22.28]}})),
                            links: vec![],
                        }),
                    ),
                    ("Datastreams".into(), ds("pm25", "OM_Measurement")),
                    ("Datastreams".into(), ds("count", "OM_CountObservation")),
                ],
            })
            .unwrap();
        let mut q = EntityQuery::all(EntitySet::Datastream);
        q.within = Some(Within { parent: EntitySet::Thing, id: thing, nav: "Datastreams" });
        let page = store.sta_query(&q).unwrap();
        assert_eq!(page.entities.len(), 2);
        let (a, b) = (page.entities[0].id, page.entities[1].id);
        (dir, Arc::new(store), a, b)
    }

    fn obs(ds: i64, second: i64, result: serde_json::Value) -> NewObservation {
        NewObservation {
            datastream: ds,
            phenomenon_time: OffsetDateTime::from_unix_timestamp(1_700_000_000 + second).unwrap(),
            phenomenon_end: None,
            result,
            result_time: None,
            parameters: None,
            feature_of_interest: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_callers_share_transactions_and_nothing_is_doubled() {
        let (_dir, store, pm, _) = store();
        let ingest = Arc::new(
            GroupCommit::with_options(
                &store,
                Options { linger: Duration::from_millis(5), ..Options::default() },
            )
            .unwrap(),
        );
        let mut events = ingest.subscribe();
        let mut tasks = Vec::new();
        for caller in 0..20i64 {
            let ingest = Arc::clone(&ingest);
            tasks.push(tokio::spawn(async move {
                let batch: Vec<_> = (0..50).map(|i| obs(pm, caller * 50 + i, json!(i))).collect();
                ingest.submit(batch).await
            }));
        }
        for t in tasks {
            let outcomes = t.await.unwrap().unwrap();
            assert!(outcomes.iter().all(|o| matches!(o, Outcome::Stored(_))));
        }
        let stats = ingest.stats();
        assert_eq!(stats.stored, 1000);
        assert!(stats.transactions < 20, "20 callers in {} transactions", stats.transactions);
        // The same readings again: all duplicates, pointing at the stored ones.
        let again = ingest.submit(vec![obs(pm, 0, json!(1)), obs(pm, 999, json!(2))]).await.unwrap();
        assert!(
            matches!(again[0], Outcome::Duplicate { .. }) && matches!(again[1], Outcome::Duplicate { .. })
        );
        let mut q = EntityQuery::all(EntitySet::Observation);
        q.count = true;
        assert_eq!(store.sta_query(&q).unwrap().count, Some(1000));
        let (mut seen, mut last_id, mut rollups) = (0, 0, 0);
        while let Ok(e) = events.try_recv() {
            match &*e {
                Event::Observation(o) => {
                    assert!(o.id > last_id, "a commit's observations come after the previous rollups");
                    last_id = o.id;
                    seen += 1;
                }
                Event::Rollup(r) => {
                    assert_eq!(r.as_of, last_id, "a rollup follows its commit's observations");
                    assert_eq!(r.change.datastream, pm);
                    rollups += 1;
                }
            }
        }
        assert_eq!(seen, 1000, "one event per stored observation, none for duplicates");
        assert!(rollups >= 2 * stats.transactions as usize, "each commit announces its minute and hour");
        // The minute rollups add up to the readings.
        let minutes = store.rollups(pm, Resolution::Minute, 0, i64::MAX).unwrap();
        assert_eq!(minutes.iter().map(|r| r.count).sum::<u64>(), 1000);
        let hours = store.rollups(pm, Resolution::Hour, 0, i64::MAX).unwrap();
        assert_eq!(hours.iter().map(|r| r.count).sum::<u64>(), 1000);
        assert!(hours.iter().all(|h| h.min == 0.0 && h.max == 49.0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_batches_are_refused_whole() {
        let (_dir, store, pm, count) = store();
        let ingest = GroupCommit::start(&store).unwrap();
        let cases: Vec<(Vec<NewObservation>, &str)> = vec![
            (vec![obs(pm, 0, json!(1.5)), obs(999, 1, json!(1))], "datastream 999 does not exist"),
            (
                vec![obs(pm, 0, json!(1.5)), obs(pm, 1, json!("high"))],
                "observation 1: the result \"high\" is not a number",
            ),
            (vec![obs(count, 0, json!(3)), obs(count, 1, json!(3.5))], "is not an integer"),
            (vec![obs(count, 0, json!(true))], "is not an integer"),
            (
                vec![NewObservation {
                    phenomenon_end: Some(OffsetDateTime::from_unix_timestamp(0).unwrap()),
                    ..obs(pm, 0, json!(1))
                }],
                "ends before it starts",
            ),
            ((0..=MAX_BATCH as i64).map(|i| obs(pm, i, json!(1))).collect(), "at most 50000"),
        ];
        for (batch, says) in cases {
            let e = ingest.submit(batch).await.unwrap_err();
            assert!(e.to_string().contains(says), "{e} should say {says}");
        }
        let mut q = EntityQuery::all(EntitySet::Observation);
        q.count = true;
        assert_eq!(store.sta_query(&q).unwrap().count, Some(0), "nothing of a refused batch is stored");
        // A good batch after them goes in; out of order is fine.
        let ok = ingest.submit(vec![obs(pm, 10, json!(1)), obs(pm, 5, json!(2))]).await.unwrap();
        assert_eq!(ok.len(), 2);
        let latest = store.latest_observations().unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].0, pm);
        assert_eq!(latest[0].1.get("result"), Some(&citydata_store::sensors::SVal::Int(1)));
    }
}
