//! Real-time city data: readings in (HTTP, MQTT), group commit, rollups, live fan-out to
//! subscribers, and the simulator of the demo's smart lampposts.
//!
//! The contract between the ingest path and its users (the SensorThings API, the MQTT bridge, the
//! live streams, the simulator) is [`Ingest`]: a batch of [`NewObservation`]s goes in and comes back
//! acknowledged only after its commit; every committed observation is also an [`Event`] on the
//! broadcast feed.

pub mod data_array;
pub mod feeds;
mod ingest;
pub mod live;
pub mod mqtt;
pub mod simulate;

pub use ingest::{GroupCommit, Options, Stats, MAX_BATCH};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;

/// One reading for a datastream, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObservation {
    /// The datastream's `@iot.id`.
    pub datastream: i64,
    /// When the phenomenon was observed (start of the interval when `phenomenon_end` is set).
    pub phenomenon_time: OffsetDateTime,
    /// End of the phenomenon interval, if it is one.
    pub phenomenon_end: Option<OffsetDateTime>,
    /// The result, checked against the datastream's observation type by the ingest.
    pub result: serde_json::Value,
    /// When the result was produced; `None` means the same as the phenomenon time.
    pub result_time: Option<OffsetDateTime>,
    /// Free key-value parameters (SensorThings `parameters`).
    pub parameters: Option<serde_json::Map<String, serde_json::Value>>,
    /// The FeatureOfInterest's `@iot.id`; `None` takes the one made from the Thing's Location (made
    /// on first use), as SensorThings does when a reading names none.
    pub feature_of_interest: Option<i64>,
}

/// A stored observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Its `@iot.id`.
    pub id: i64,
    /// What was asked to be stored.
    pub reading: NewObservation,
}

/// What became of one reading of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored and committed (boxed: an observation is large beside a duplicate's id).
    Stored(Box<Observation>),
    /// The datastream already holds a reading at the same phenomenon time: nothing stored.
    Duplicate {
        /// The id of the observation already stored.
        existing: i64,
    },
}

/// Something the live streams tell subscribers.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new observation, after its commit.
    Observation(Observation),
    /// A rollup bucket that a commit changed, with its figures after the commit. A commit's rollup
    /// events follow all of its observation events.
    Rollup(RollupEvent),
}

/// A datastream's minute or hour rollup bucket as a commit left it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupEvent {
    /// The greatest id among the observations of the commit that changed it: rollup events sort
    /// after the observations of their commit and before those of later commits.
    pub as_of: i64,
    /// The datastream, its bucket length and its figures.
    pub change: citydata_store::sensors::RollupChange,
}

/// Why a batch was refused; nothing of it is stored.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum IngestError {
    /// A reading names a datastream that does not exist.
    #[error("datastream {0} does not exist")]
    UnknownDatastream(i64),
    /// A reading of the batch is invalid (the message names it and says why).
    #[error("{0}")]
    Invalid(String),
    /// The batch holds more readings than one batch may.
    #[error("a batch holds at most {max} observations, this one {got}")]
    TooLarge {
        /// The limit.
        max: usize,
        /// The batch's size.
        got: usize,
    },
    /// The store failed or is shutting down; the batch may be retried.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// A synchronous receiver of committed events (see [`Ingest::observe`]).
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// A boxed future, so that [`Ingest`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The ingest path: the one way readings reach the store.
pub trait Ingest: Send + Sync {
    /// Stores a batch. Resolves only after the commit that holds it; the outcomes are in the
    /// batch's order. A refused batch stores nothing.
    fn submit(&self, batch: Vec<NewObservation>) -> BoxFuture<'_, Result<Vec<Outcome>, IngestError>>;

    /// The feed of committed events, from now on.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>>;

    /// Calls `observer` with every committed event from now on, after the commit and before any
    /// caller of that commit is answered, so that whoever learns of a commit can find its events
    /// there. It runs on the ingest's own thread: it must be quick and never wait.
    fn observe(&self, observer: Observer);
}
