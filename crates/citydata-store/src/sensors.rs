//! Sensor data: the SensorThings entities (Things, Locations, HistoricalLocations, Datastreams,
//! Sensors, ObservedProperties, Observations, FeaturesOfInterest) and the observations' time series,
//! with per-datastream counts, the latest observation, minute and hour rollups, and retention.
//!
//! The data model is the SensorThings one, so the entity sets and their properties carry the
//! standard's names ([`EntitySet`]); the wire format (JSON, links, times as text) belongs to the
//! server. Values cross this interface as [`SVal`], times as integer microseconds since the Unix
//! epoch, UTC.
//!
//! Observations are written by one [`SensorWriter`] at a time, many readings per transaction (the
//! group commit of the ingest path): inside its transaction every reading is checked against its
//! datastream (which must exist, and whose observation type fixes the result's JSON type), a duplicate
//! of a datastream and phenomenon time is reported as [`Written::Duplicate`] and not stored again,
//! and the datastream's count, latest observation, time ranges and the minute and hour rollups move
//! with the readings in the same transaction.
//!
//! Queries ([`EntityQuery`]) take their condition as an [`Expr`] tree which the backend translates
//! to parameterised SQL: values are bound, property paths inside JSON are bound as JSON path
//! parameters, and only the backend's own column names reach the SQL text.

use serde_json::Value as Json;

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// The eight entity sets of SensorThings 1.1 Sensing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntitySet {
    /// Things.
    Thing,
    /// Locations.
    Location,
    /// HistoricalLocations.
    HistoricalLocation,
    /// Datastreams.
    Datastream,
    /// Sensors.
    Sensor,
    /// ObservedProperties.
    ObservedProperty,
    /// Observations.
    Observation,
    /// FeaturesOfInterest.
    FeatureOfInterest,
}

impl EntitySet {
    /// Every set, in the order the service root lists them.
    pub const ALL: [EntitySet; 8] = [
        EntitySet::Thing,
        EntitySet::Location,
        EntitySet::HistoricalLocation,
        EntitySet::Datastream,
        EntitySet::Sensor,
        EntitySet::ObservedProperty,
        EntitySet::Observation,
        EntitySet::FeatureOfInterest,
    ];

    /// The set's name in URLs (`Things`).
    #[must_use]
    pub fn plural(self) -> &'static str {
        match self {
            EntitySet::Thing => "Things",
            EntitySet::Location => "Locations",
            EntitySet::HistoricalLocation => "HistoricalLocations",
            EntitySet::Datastream => "Datastreams",
            EntitySet::Sensor => "Sensors",
            EntitySet::ObservedProperty => "ObservedProperties",
            EntitySet::Observation => "Observations",
            EntitySet::FeatureOfInterest => "FeaturesOfInterest",
        }
    }

    /// The name of one entity (`Thing`).
    #[must_use]
    pub fn singular(self) -> &'static str {
        match self {
            EntitySet::Thing => "Thing",
            EntitySet::Location => "Location",
            EntitySet::HistoricalLocation => "HistoricalLocation",
            EntitySet::Datastream => "Datastream",
            EntitySet::Sensor => "Sensor",
            EntitySet::ObservedProperty => "ObservedProperty",
            EntitySet::Observation => "Observation",
            EntitySet::FeatureOfInterest => "FeatureOfInterest",
        }
    }

    /// The set named `name` in its plural form.
    #[must_use]
    pub fn from_plural(name: &str) -> Option<EntitySet> {
        Self::ALL.into_iter().find(|s| s.plural() == name)
    }

    /// The properties of an entity of the set, in the order the standard lists them.
    #[must_use]
    pub fn properties(self) -> &'static [&'static str] {
        match self {
            EntitySet::Thing => &["name", "description", "properties"],
            EntitySet::Location => &["name", "description", "encodingType", "location", "properties"],
            EntitySet::HistoricalLocation => &["time"],
            EntitySet::Datastream => &[
                "name",
                "description",
                "unitOfMeasurement",
                "observationType",
                "observedArea",
                "phenomenonTime",
                "resultTime",
                "properties",
            ],
            EntitySet::Sensor => &["name", "description", "encodingType", "metadata", "properties"],
            EntitySet::ObservedProperty => &["name", "definition", "description", "properties"],
            EntitySet::Observation => {
                &["phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters"]
            }
            EntitySet::FeatureOfInterest => &["name", "description", "encodingType", "feature", "properties"],
        }
    }

    /// The navigation properties of the set: their name, target and whether they lead to many.
    #[must_use]
    pub fn navigation(self) -> &'static [Nav] {
        use EntitySet as S;
        match self {
            S::Thing => &[
                Nav { name: "Datastreams", target: S::Datastream, many: true },
                Nav { name: "Locations", target: S::Location, many: true },
                Nav { name: "HistoricalLocations", target: S::HistoricalLocation, many: true },
            ],
            S::Location => &[
                Nav { name: "Things", target: S::Thing, many: true },
                Nav { name: "HistoricalLocations", target: S::HistoricalLocation, many: true },
            ],
            S::HistoricalLocation => &[
                Nav { name: "Thing", target: S::Thing, many: false },
                Nav { name: "Locations", target: S::Location, many: true },
            ],
            S::Datastream => &[
                Nav { name: "Thing", target: S::Thing, many: false },
                Nav { name: "Sensor", target: S::Sensor, many: false },
                Nav { name: "ObservedProperty", target: S::ObservedProperty, many: false },
                Nav { name: "Observations", target: S::Observation, many: true },
            ],
            S::Sensor => &[Nav { name: "Datastreams", target: S::Datastream, many: true }],
            S::ObservedProperty => &[Nav { name: "Datastreams", target: S::Datastream, many: true }],
            S::Observation => &[
                Nav { name: "Datastream", target: S::Datastream, many: false },
                Nav { name: "FeatureOfInterest", target: S::FeatureOfInterest, many: false },
            ],
            S::FeatureOfInterest => &[Nav { name: "Observations", target: S::Observation, many: true }],
        }
    }

    /// The navigation property `name` of the set.
    #[must_use]
    pub fn nav(self, name: &str) -> Option<&'static Nav> {
        self.navigation().iter().find(|n| n.name == name)
    }
}

/// A navigation property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nav {
    /// Its name (`Datastreams`, `Thing`).
    pub name: &'static str,
    /// The set it leads to.
    pub target: EntitySet,
    /// True when it leads to a collection.
    pub many: bool,
}

/// A value of a property, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum SVal {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number.
    Num(f64),
    /// Text.
    Text(String),
    /// An instant.
    Time(Micros),
    /// A time interval, start and end.
    Interval(Micros, Micros),
    /// A JSON value (objects, arrays; also a literal geometry as GeoJSON in filters).
    Json(Json),
}

/// One entity with its properties (in the order of [`EntitySet::properties`]; absent ones are
/// [`SVal::Null`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Its set.
    pub set: EntitySet,
    /// Its `@iot.id`.
    pub id: i64,
    /// Its properties.
    pub props: Vec<(&'static str, SVal)>,
}

impl Entity {
    /// The property `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&SVal> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `add`
    Add,
    /// `sub`
    Sub,
    /// `mul`
    Mul,
    /// `div`
    Div,
    /// `mod`
    Mod,
}

/// The functions a condition may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `substringof(needle, haystack)`: true when the first is in the second.
    SubstringOf,
    /// `startswith(s, prefix)`
    StartsWith,
    /// `endswith(s, suffix)`
    EndsWith,
    /// `length(s)`
    Length,
    /// `tolower(s)`
    ToLower,
    /// `toupper(s)`
    ToUpper,
    /// `indexof(s, needle)`: 0-based, -1 when absent.
    IndexOf,
    /// `trim(s)`
    Trim,
    /// `concat(a, b)`
    Concat,
    /// `substring(s, start[, length])`, 0-based.
    Substring,
    /// `year(t)`
    Year,
    /// `month(t)`
    Month,
    /// `day(t)`
    Day,
    /// `hour(t)`
    Hour,
    /// `minute(t)`
    Minute,
    /// `second(t)`
    Second,
    /// `fractionalseconds(t)`
    FractionalSeconds,
    /// `date(t)`: the date as `YYYY-MM-DD` text.
    Date,
    /// `now()`
    Now,
    /// `mindatetime()`
    MinDateTime,
    /// `maxdatetime()`
    MaxDateTime,
    /// `round(x)`
    Round,
    /// `floor(x)`
    Floor,
    /// `ceiling(x)`
    Ceiling,
    /// `geo.intersects(a, b)` and `st_intersects`.
    GeoIntersects,
    /// `st_within(a, b)`: a lies within b.
    StWithin,
    /// `st_contains(a, b)`: b lies within a.
    StContains,
    /// `st_disjoint(a, b)`
    StDisjoint,
    /// `st_equals(a, b)`
    StEquals,
    /// `geo.distance(a, b)`, in the coordinates' units (degrees for WGS 84).
    GeoDistance,
    /// `geo.length(a)`, in the coordinates' units.
    GeoLength,
}

/// A condition or a value in a condition (the `$filter` and `$orderby` language).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A property path: `name`, `properties/owner`, `Datastream/Thing/name`, `id`.
    Path(Vec<String>),
    /// A literal value.
    Lit(SVal),
    /// A comparison.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// Not.
    Not(Box<Expr>),
    /// Arithmetic.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// Negation.
    Neg(Box<Expr>),
    /// A function call.
    Call(Func, Vec<Expr>),
}

/// The collection a query reads from when it is reached through a navigation path
/// (`Things(1)/Datastreams`): the entity `id` of `parent` and its navigation property `nav`.
#[derive(Debug, Clone, PartialEq)]
pub struct Within {
    /// The parent's set.
    pub parent: EntitySet,
    /// The parent's id.
    pub id: i64,
    /// The navigation property of the parent.
    pub nav: &'static str,
}

/// A query of one entity set.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityQuery {
    /// The set to read.
    pub set: EntitySet,
    /// Only the entities related to this one.
    pub within: Option<Within>,
    /// Only this entity.
    pub id: Option<i64>,
    /// Only those for which this holds.
    pub filter: Option<Expr>,
    /// Sort keys, `true` for descending; the id breaks ties.
    pub orderby: Vec<(Expr, bool)>,
    /// At most this many.
    pub top: u32,
    /// After skipping this many.
    pub skip: u64,
    /// Also count all that match (ignoring `top` and `skip`).
    pub count: bool,
}

impl EntityQuery {
    /// Every entity of `set`, first 100, by id.
    #[must_use]
    pub fn all(set: EntitySet) -> Self {
        EntityQuery {
            set,
            within: None,
            id: None,
            filter: None,
            orderby: Vec::new(),
            top: 100,
            skip: 0,
            count: false,
        }
    }
}

/// One page of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The entities.
    pub entities: Vec<Entity>,
    /// How many match in all, when asked.
    pub count: Option<u64>,
    /// True when more follow this page.
    pub more: bool,
}

/// An entity to create, with its links to existing entities or new ones (deep insert).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntity {
    /// Its set.
    pub set: EntitySet,
    /// Its properties as given (times as ISO 8601 text, as the wire has them).
    pub props: Vec<(String, Json)>,
    /// Its related entities, by navigation property.
    pub links: Vec<(String, Link)>,
}

/// A related entity of a [`NewEntity`].
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// An existing entity.
    Id(i64),
    /// One to create with it.
    New(NewEntity),
}

/// One reading to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The datastream.
    pub datastream: i64,
    /// Phenomenon time (start of the interval when `phenomenon_end` is set).
    pub phenomenon_time: Micros,
    /// End of the phenomenon interval.
    pub phenomenon_end: Option<Micros>,
    /// Result time.
    pub result_time: Option<Micros>,
    /// The result.
    pub result: Json,
    /// Free parameters.
    pub parameters: Option<serde_json::Map<String, Json>>,
    /// The feature of interest; `None` takes the one made from the Thing's Location.
    pub feature: Option<i64>,
}

/// What became of one stored reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored with this id.
    Stored(i64),
    /// Not stored: the observation with this id has the same datastream and phenomenon time.
    Duplicate(i64),
}

/// Why a batch of readings was refused (nothing of it stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The datastream does not exist.
    #[error("datastream {0} does not exist")]
    UnknownDatastream(i64),
    /// A reading is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// The observation types of SensorThings (O&M), which fix the JSON type of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationType {
    /// `OM_Measurement`: a number.
    Measurement,
    /// `OM_CountObservation`: an integer.
    Count,
    /// `OM_TruthObservation`: a boolean.
    Truth,
    /// `OM_CategoryObservation`: a string (a term or a URI).
    Category,
    /// `OM_Observation`: anything.
    Any,
}

const OM: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/";

impl ObservationType {
    /// The type named by `uri` (the full O&M URI, or its last part such as `OM_Measurement`).
    #[must_use]
    pub fn parse(uri: &str) -> Option<Self> {
        let name = uri.strip_prefix(OM).unwrap_or(uri);
        Some(match name {
            "OM_Measurement" => Self::Measurement,
            "OM_CountObservation" => Self::Count,
            "OM_TruthObservation" => Self::Truth,
            "OM_CategoryObservation" => Self::Category,
            "OM_Observation" => Self::Any,
            _ => return None,
        })
    }

    /// Its short name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Measurement => "OM_Measurement",
            Self::Count => "OM_CountObservation",
            Self::Truth => "OM_TruthObservation",
            Self::Category => "OM_CategoryObservation",
            Self::Any => "OM_Observation",
        }
    }

    /// Why `result` does not fit this type, or `None` when it does.
    #[must_use]
    pub fn refuses(self, result: &Json) -> Option<String> {
        let ok = match self {
            Self::Measurement => result.is_number(),
            Self::Count => result.is_i64() || result.is_u64(),
            Self::Truth => result.is_boolean(),
            Self::Category => result.is_string(),
            Self::Any => true,
        };
        let want = match self {
            Self::Measurement => "a number",
            Self::Count => "an integer",
            Self::Truth => "a boolean",
            Self::Category => "a string",
            Self::Any => "anything",
        };
        (!ok).then(|| {
            format!("the result {result} is not {want}, as the datastream's {} requires", self.name())
        })
    }
}

/// Rollup resolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// One bucket per minute.
    Minute,
    /// One bucket per hour.
    Hour,
}

impl Resolution {
    /// The bucket length in microseconds.
    #[must_use]
    pub fn micros(self) -> i64 {
        match self {
            Resolution::Minute => 60_000_000,
            Resolution::Hour => 3_600_000_000,
        }
    }
}

/// The numeric readings of one datastream in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollup {
    /// The bucket's start.
    pub start: Micros,
    /// How many numeric readings.
    pub count: u64,
    /// The least.
    pub min: f64,
    /// The greatest.
    pub max: f64,
    /// Their mean.
    pub mean: f64,
}

/// A bucket of a datastream's rollups as a commit left it: the rollups a write changed, with their
/// values after the write (see [`Committed::rollups`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupChange {
    /// The datastream.
    pub datastream: i64,
    /// The bucket's length.
    pub resolution: Resolution,
    /// The bucket's figures after the write.
    pub rollup: Rollup,
}

/// What one [`SensorWriter::write`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// Per batch, what became of each reading, or why the batch was refused.
    pub batches: Vec<Result<Vec<Written>, Refused>>,
    /// Every rollup bucket the write changed, once each, with its figures after the commit.
    pub rollups: Vec<RollupChange>,
}

/// One observation with the names of what it measures: a row of a day's readings
/// ([`Store::observations_between`](crate::Store::observations_between)).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    /// The Thing's id.
    pub thing_id: i64,
    /// The Thing's name.
    pub thing: String,
    /// The Thing's properties (a JSON object), if any.
    pub thing_properties: Option<Json>,
    /// The Thing's first Location (GeoJSON text), if it has one.
    pub location: Option<String>,
    /// The Datastream's id.
    pub datastream_id: i64,
    /// The Datastream's name.
    pub datastream: String,
    /// The ObservedProperty's name.
    pub observed_property: String,
    /// The Datastream's unit of measurement (a JSON object: name, symbol, definition).
    pub unit: Json,
    /// The phenomenon time (its start, for an interval).
    pub phenomenon_time: Micros,
    /// The result.
    pub result: SVal,
}

/// The datastreams whose readings are kept for a limited time: a datastream with the property
/// `retention_days` (a positive number) in its `properties` keeps raw readings that long, counted
/// back from now; [`SensorWriter::prune`] removes the older ones (rollups are kept).
pub const RETENTION_PROPERTY: &str = "retention_days";

/// The writer of observations: one transaction per call to [`SensorWriter::write`]. Made by
/// `Store::sensor_writer`; one per process is enough (the ingest's writer thread owns it).
pub struct SensorWriter {
    pub(crate) inner: crate::sqlite::sensors::Writer,
}

impl SensorWriter {
    /// Stores several batches in one transaction and commits it. Each batch is checked whole first:
    /// a refused batch stores nothing and does not affect the others. Returns, per batch, what
    /// became of each reading, or why the batch was refused, and the rollup buckets the commit
    /// changed with their new figures. When the call fails (the database), nothing of any batch was
    /// committed.
    ///
    /// # Errors
    /// Database errors.
    pub fn write(&mut self, batches: &[&[Reading]]) -> crate::Result<Committed> {
        self.inner.write(batches)
    }

    /// Removes the raw readings older than each datastream's retention (see [`RETENTION_PROPERTY`])
    /// before `now`, and returns how many went. Rollups stay.
    ///
    /// # Errors
    /// Database errors.
    pub fn prune(&mut self, now: Micros) -> crate::Result<u64> {
        self.inner.prune(now)
    }
}

impl crate::Store {
    /// A writer of observations, on its own connection.
    ///
    /// # Errors
    /// When the database cannot be opened.
    pub fn sensor_writer(&self) -> crate::Result<SensorWriter> {
        Ok(SensorWriter { inner: self.backend.sensor_writer()? })
    }

    /// Runs a query of entities.
    ///
    /// # Errors
    /// `Invalid` for conditions that name unknown properties or mix types; database errors.
    pub fn sta_query(&self, q: &EntityQuery) -> crate::Result<Page> {
        self.backend.sta_query(q)
    }

    /// Runs `q` once for each parent id of `parents` (its `within` names the navigation property and
    /// its id is replaced by each parent's): the pages of an `$expand`, in the order of `parents`.
    /// Holds at most `max_total` entities in all.
    ///
    /// # Errors
    /// As [`Store::sta_query`]; `Invalid` when the pages would hold more than `max_total` entities.
    pub fn sta_query_each(
        &self,
        q: &EntityQuery,
        parents: &[i64],
        max_total: usize,
    ) -> crate::Result<Vec<Page>> {
        self.backend.sta_query_each(q, parents, max_total)
    }

    /// Creates an entity with its links and nested new entities, in one transaction; returns its id.
    ///
    /// # Errors
    /// `Invalid` for missing or malformed properties and links, `NotFound` for linked entities that do
    /// not exist; database errors.
    pub fn sta_create(&self, e: &NewEntity) -> crate::Result<i64> {
        self.backend.sta_create(e)
    }

    /// Updates the given properties and links of an entity.
    ///
    /// # Errors
    /// As [`Store::sta_create`]; `NotFound` when the entity does not exist.
    pub fn sta_update(&self, set: EntitySet, id: i64, change: &NewEntity) -> crate::Result<()> {
        self.backend.sta_update(set, id, change)
    }

    /// Deletes an entity and what the standard deletes with it; false when it did not exist.
    ///
    /// # Errors
    /// Database errors.
    pub fn sta_delete(&self, set: EntitySet, id: i64) -> crate::Result<bool> {
        self.backend.sta_delete(set, id)
    }

    /// Removes the link from entity `id` of `set` through its many-valued navigation property `nav`
    /// to entity `target` (`DELETE /Things(1)/Locations(2)/$ref`); false when there was none.
    ///
    /// # Errors
    /// `Invalid` for navigation properties that are not links; database errors.
    pub fn sta_unlink(&self, set: EntitySet, id: i64, nav: &str, target: i64) -> crate::Result<bool> {
        self.backend.sta_unlink(set, id, nav, target)
    }

    /// The latest observation of every datastream that has one, by datastream id (one index scan).
    ///
    /// # Errors
    /// Database errors.
    pub fn latest_observations(&self) -> crate::Result<Vec<(i64, Entity)>> {
        self.backend.latest_observations()
    }

    /// Every observation whose phenomenon time is in `[from, to)`, with its Thing, Datastream,
    /// ObservedProperty and unit, ordered by Thing id, Datastream id and time, passed one at a time
    /// to `sink` (nothing is held in memory); `sink` returns false to stop early. Returns how many
    /// rows were passed.
    ///
    /// # Errors
    /// Database errors.
    pub fn observations_between(
        &self,
        from: Micros,
        to: Micros,
        sink: &mut dyn FnMut(ReadingRow) -> bool,
    ) -> crate::Result<u64> {
        self.backend.observations_between(from, to, sink)
    }

    /// The rollups of a datastream's numeric readings in `[from, to)`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn rollups(
        &self,
        datastream: i64,
        resolution: Resolution,
        from: Micros,
        to: Micros,
    ) -> crate::Result<Vec<Rollup>> {
        self.backend.rollups(datastream, resolution, from, to)
    }
}

/// Reads an ISO 8601 instant (`2024-01-02T03:04:05Z`, offsets, fractions) as microseconds.
///
/// # Errors
/// When it is not one.
pub fn parse_time(s: &str) -> Result<Micros, String> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an ISO 8601 date and time with a zone ({e})"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| format!("{s:?} is out of range"))
}

/// Reads an instant or an interval (`start/end`) as microseconds.
///
/// # Errors
/// When it is neither, or the interval ends before it starts.
pub fn parse_time_or_interval(s: &str) -> Result<(Micros, Option<Micros>), String> {
    match s.split_once('/') {
        None => Ok((parse_time(s)?, None)),
        Some((a, b)) => {
            let (a, b) = (parse_time(a)?, parse_time(b)?);
            if b < a {
                return Err(format!("the interval {s:?} ends before it starts"));
            }
            Ok((a, Some(b)))
        }
    }
}

/// Writes microseconds as an ISO 8601 instant in UTC (`2024-01-02T03:04:05.123Z`).
#[must_use]
pub fn format_time(us: Micros) -> String {
    let mut buf = [0u8; 27];
    match write_time(&mut buf, us) {
        // The digits and separators written are ASCII.
        Some(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        None => format_time_slow(us),
    }
}

/// Writes `us` as [`format_time`] does into `buf` and returns the length, for the years 0 to 9999
/// (`None` for others); with no allocation and no formatting machinery, as the answers of large
/// queries hold tens of thousands of times.
fn write_time(buf: &mut [u8; 27], us: Micros) -> Option<usize> {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar, by eras of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let digits = |buf: &mut [u8; 27], at: usize, n: i64, width: usize| {
        let mut n = n;
        for k in (0..width).rev() {
            // A digit, 0..=9.
            buf[at + k] = b'0' + u8::try_from(n % 10).unwrap_or(0);
            n /= 10;
        }
    };
    digits(buf, 0, year, 4);
    buf[4] = b'-';
    digits(buf, 5, month, 2);
    buf[7] = b'-';
    digits(buf, 8, day, 2);
    buf[10] = b'T';
    digits(buf, 11, sod / 3600, 2);
    buf[13] = b':';
    digits(buf, 14, sod / 60 % 60, 2);
    buf[16] = b':';
    digits(buf, 17, sod % 60, 2);
    let n = if frac == 0 {
        19
    } else if frac % 1000 == 0 {
        buf[19] = b'.';
        digits(buf, 20, frac / 1000, 3);
        23
    } else {
        buf[19] = b'.';
        digits(buf, 20, frac, 6);
        26
    };
    buf[n] = b'Z';
    Some(n + 1)
}

/// [`format_time`] through the `time` crate, for the years [`write_time`] does not write.
fn format_time_slow(us: Micros) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let frac = us.rem_euclid(1_000_000);
    if frac == 0 {
        format!("{base}Z")
    } else if frac % 1000 == 0 {
        format!("{base}.{:03}Z", frac / 1000)
    } else {
        format!("{base}.{frac:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_time_writer_agrees_with_the_time_crate() {
        // Days across leap years, centuries and eras, each fraction shape, before 1970 too.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut checked = 0;
        for k in 0..200_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            #[allow(clippy::cast_possible_wrap)]
            let r = (x >> 1) as i64;
            let us = match k % 4 {
                0 => r % 253_402_300_800_000_000 - 62_167_219_200_000_000, // 0000..9999
                1 => (r % 400_000 - 200_000) * 86_400_000_000,             // midnights
                2 => (r % 4_000_000_000) * 1000,                           // milliseconds
                _ => r % 4_102_444_800_000_000,                            // 1970..2100
            };
            let mut buf = [0u8; 27];
            if let Some(n) = write_time(&mut buf, us) {
                assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), format_time_slow(us), "{us}");
                checked += 1;
            }
        }
        assert!(checked > 190_000, "{checked}");
        for us in [0, -1, 951_782_400_000_000, 4_107_542_400_000_000, -62_167_219_200_000_000] {
            assert_eq!(format_time(us), format_time_slow(us), "{us}");
        }
        assert_eq!(format_time(-62_167_219_200_000_001), format_time_slow(-62_167_219_200_000_001));
    }

    #[test]
    fn times_round_trip() {
        for (text, us) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-01-02T03:04:05.123Z", 1_704_164_645_123_000),
            ("2024-01-02T11:04:05.000001+08:00", 1_704_164_645_000_001),
        ] {
            assert_eq!(parse_time(text), Ok(us), "{text}");
        }
        assert_eq!(format_time(1_704_164_645_123_000), "2024-01-02T03:04:05.123Z");
        assert_eq!(format_time(1_704_164_645_000_001), "2024-01-02T03:04:05.000001Z");
        assert!(parse_time("2024-13-01T00:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time_or_interval("2024-01-02T00:00:00Z/2024-01-01T00:00:00Z").is_err());
        assert_eq!(
            parse_time_or_interval("1970-01-01T00:00:00Z/1970-01-01T00:00:01Z"),
            Ok((0, Some(1_000_000)))
        );
    }

    #[test]
    fn observation_types_check_results() {
        use serde_json::json;
        let m = ObservationType::parse(&format!("{OM}OM_Measurement")).unwrap();
        assert_eq!(m.refuses(&json!(1.5)), None);
        assert!(m.refuses(&json!("1.5")).is_some());
        let c = ObservationType::parse("OM_CountObservation").unwrap();
        assert_eq!(c.refuses(&json!(3)), None);
        assert!(c.refuses(&json!(3.5)).is_some());
        assert!(ObservationType::parse("OM_TruthObservation").unwrap().refuses(&json!(1)).is_some());
        assert_eq!(ObservationType::parse("OM_CategoryObservation").unwrap().refuses(&json!("a")), None);
        assert_eq!(ObservationType::parse("OM_Observation").unwrap().refuses(&json!({"a": 1})), None);
        assert_eq!(ObservationType::parse("OM_Nothing"), None);
    }
}
