//! The daily open data of the sensors: each Hong Kong calendar day's readings (00:00 to 24:00 at
//! UTC+8) are published as a new version of an open dataset per sensor network, through the normal
//! publishing pipeline, so the days have history (the resource's versions) and appear in the catalogue.
//!
//! A Thing's network is its `properties.network` (made into a slug); a Thing without one belongs
//! to [`DEFAULT_NETWORK`]. Network `n` is published as dataset `n-readings`, resource [`RESOURCE`],
//! one CSV row per observation, ordered by Thing, Datastream and time. Each version's file is named
//! `n-readings-YYYY-MM-DD.csv`, so the versions record which day they hold.
//!
//! Invariants: a day whose bytes equal those of any version already published makes no new version
//! and leaves the metadata as it is (publishing the same day twice changes nothing); a day without
//! readings publishes nothing. [`spawn_daily`] publishes, at start, the finished days of the last
//! [`CATCH_UP_DAYS`] that come after the newest day already published, then each day just after it
//! ends; its errors are logged, never raised.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use citydata_model::{DatasetMeta, GeometrySpec, ResourceMeta, Slug};
use citydata_store::sensors::{Micros, ReadingRow, SVal};
use citydata_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime, UtcOffset};

use crate::demo::real::trilingual;
use crate::publish::{publish, PublishError, PublishOptions, Quiet};

/// The name of the resource that holds the readings in each network's dataset.
pub const RESOURCE: &str = "readings";
/// The network of Things without a `properties.network`.
pub const DEFAULT_NETWORK: &str = "sensors";
/// How many finished days the server looks back at start for days not yet published.
pub const CATCH_UP_DAYS: i64 = 7;
/// Who publishes the readings (recorded with each version).
pub const PUBLISHER: &str = "citydata daily readings";
/// Hong Kong time, UTC+8 (no daylight saving).
pub const HONG_KONG: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// The columns of a day's CSV, in order.
pub const COLUMNS: [&str; 9] = [
    "thing",
    "datastream_id",
    "datastream",
    "observed_property",
    "unit",
    "phenomenon_time",
    "result",
    "latitude",
    "longitude",
];

/// Why a day could not be published.
#[derive(Debug, thiserror::Error)]
pub enum ReadingsError {
    /// Reading the observations or the catalogue failed.
    #[error("reading the observations: {0}")]
    Store(#[from] StoreError),
    /// Writing a day's CSV failed.
    #[error("writing the readings of {day} to {}: {error}", path.display())]
    Write {
        /// The day.
        day: Date,
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The publishing pipeline refused the file.
    #[error("publishing the readings of {day} as {dataset}: {error}")]
    Publish {
        /// The day.
        day: Date,
        /// The dataset.
        dataset: String,
        /// What failed.
        error: PublishError,
    },
}

/// What publishing one network's day did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayOutcome {
    /// The network.
    pub network: String,
    /// The dataset's slug (`{network}-readings`).
    pub dataset: String,
    /// The day.
    pub day: Date,
    /// Observations in the day's file.
    pub rows: u64,
    /// The version holding these bytes: the new one, or the one that already held them.
    pub version: i64,
    /// Whether the version is new (false: identical bytes were already published).
    pub new: bool,
}

/// The Hong Kong calendar day of the instant `t`.
#[must_use]
pub fn hong_kong_day(t: OffsetDateTime) -> Date {
    t.to_offset(HONG_KONG).date()
}

/// The start of the Hong Kong day `day`, as an instant.
#[must_use]
pub fn day_start(day: Date) -> OffsetDateTime {
    day.midnight().assume_offset(HONG_KONG)
}

fn micros(t: OffsetDateTime) -> Micros {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(Micros::MAX)
}

/// The dataset slug of a network.
#[must_use]
pub fn dataset_slug(network: &str) -> String {
    format!("{network}-{RESOURCE}")
}

/// The network of a Thing, from its properties: `network` made into a slug, or [`DEFAULT_NETWORK`].
#[must_use]
pub fn network_of(properties: Option<&serde_json::Value>) -> String {
    let name = properties.and_then(|p| p.get("network")).and_then(serde_json::Value::as_str).unwrap_or("");
    let mut slug = Slug::from_text(name, DEFAULT_NETWORK).to_string();
    // The dataset slug adds "-readings"; slugs are at most 100 bytes (ASCII here).
    slug.truncate(80);
    slug
}

/// The phenomenon time as ISO 8601 in Hong Kong time (`2026-11-24T08:00:00+08:00`).
fn hk_time(us: Micros) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map(|t| t.to_offset(HONG_KONG))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn result_text(v: &SVal) -> String {
    match v {
        SVal::Null => String::new(),
        SVal::Bool(b) => b.to_string(),
        SVal::Int(n) => n.to_string(),
        SVal::Num(f) => f.to_string(),
        SVal::Text(s) => s.clone(),
        SVal::Time(t) => hk_time(*t),
        SVal::Interval(a, b) => format!("{}/{}", hk_time(*a), hk_time(*b)),
        SVal::Json(j) => j.to_string(),
    }
}

/// A Thing's point location (latitude, longitude) from its GeoJSON text.
fn lat_lon(geojson: Option<&str>) -> Option<(f64, f64)> {
    let v: serde_json::Value = serde_json::from_str(geojson?).ok()?;
    let point = if v.get("type").and_then(serde_json::Value::as_str) == Some("Feature") {
        v.get("geometry")?.clone()
    } else {
        v
    };
    if point.get("type").and_then(serde_json::Value::as_str) != Some("Point") {
        return None;
    }
    let c = point.get("coordinates")?.as_array()?;
    Some((c.get(1)?.as_f64()?, c.first()?.as_f64()?))
}

/// A Thing's id, network and place (latitude, longitude).
type ThingInfo = (i64, String, Option<(f64, f64)>);

/// One network's CSV of the day, being written.
struct DayFile {
    path: PathBuf,
    out: csv::Writer<BufWriter<std::fs::File>>,
    rows: u64,
}

/// Publishes the readings of the Hong Kong day `day`: one new version of `{network}-readings` for
/// each network with readings that day, in the order of the networks' names. Empty when the day has
/// no readings.
///
/// # Errors
/// When the observations cannot be read, a file cannot be written, or the pipeline refuses it; the
/// networks published before the failing one stay published.
pub fn publish_day(store: &Store, day: Date) -> Result<Vec<DayOutcome>, ReadingsError> {
    let from = micros(day_start(day));
    let to = match day.next_day() {
        Some(next) => micros(day_start(next)),
        None => Micros::MAX,
    };
    let dir = tempfile::tempdir().map_err(|error| ReadingsError::Write {
        day,
        path: std::env::temp_dir(),
        error,
    })?;
    let mut files: HashMap<String, DayFile> = HashMap::new();
    let mut failed: Option<(PathBuf, std::io::Error)> = None;
    // The rows come ordered by Thing: its network and place are worked out once per Thing.
    let mut thing: Option<ThingInfo> = None;
    store.observations_between(from, to, &mut |row: ReadingRow| {
        if thing.as_ref().map(|t| t.0) != Some(row.thing_id) {
            thing = Some((
                row.thing_id,
                network_of(row.thing_properties.as_ref()),
                lat_lon(row.location.as_deref()),
            ));
        }
        let Some((_, network, place)) = thing.as_ref() else { return false };
        let file = match files.get_mut(network) {
            Some(f) => f,
            None => {
                let path = dir.path().join(format!("{}-{day}.csv", dataset_slug(network)));
                let opened = std::fs::File::create(&path).and_then(|f| {
                    let mut out = csv::Writer::from_writer(BufWriter::new(f));
                    out.write_record(COLUMNS)?;
                    Ok(out)
                });
                match opened {
                    Ok(out) => files.entry(network.clone()).or_insert(DayFile { path, out, rows: 0 }),
                    Err(e) => {
                        failed = Some((path, e));
                        return false;
                    }
                }
            }
        };
        let unit = row
            .unit
            .get("symbol")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| row.unit.get("name").and_then(serde_json::Value::as_str))
            .unwrap_or("");
        let (lat, lon) =
            place.map_or((String::new(), String::new()), |(a, o)| (a.to_string(), o.to_string()));
        let written = file.out.write_record([
            row.thing.as_str(),
            &row.datastream_id.to_string(),
            &row.datastream,
            &row.observed_property,
            unit,
            &hk_time(row.phenomenon_time),
            &result_text(&row.result),
            &lat,
            &lon,
        ]);
        match written {
            Ok(()) => {
                file.rows += 1;
                true
            }
            Err(e) => {
                failed = Some((file.path.clone(), e.into()));
                false
            }
        }
    })?;
    if let Some((path, error)) = failed {
        return Err(ReadingsError::Write { day, path, error });
    }
    let mut networks: Vec<(String, DayFile)> = files.into_iter().collect();
    networks.sort_by(|a, b| a.0.cmp(&b.0));
    let mut outcomes = Vec::new();
    for (network, file) in networks {
        let DayFile { path, out, rows } = file;
        let flushed = out.into_inner().map_err(|e| e.into_error()).and_then(|mut w| w.flush());
        if let Err(error) = flushed {
            return Err(ReadingsError::Write { day, path, error });
        }
        outcomes.push(publish_network(store, day, &network, &path, rows)?);
    }
    Ok(outcomes)
}

fn publish_network(
    store: &Store,
    day: Date,
    network: &str,
    path: &std::path::Path,
    rows: u64,
) -> Result<DayOutcome, ReadingsError> {
    let dataset = dataset_slug(network);
    let write_error = |error| ReadingsError::Write { day, path: path.to_owned(), error };
    let sha = {
        let mut h = Sha256::new();
        let mut f = std::fs::File::open(path).map_err(write_error)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(write_error)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        hex::encode(h.finalize())
    };
    // The same bytes in any version (this day, already published): nothing to do, and the
    // metadata, which names the day of the current version, stays true.
    let existing = store.dataset(&dataset)?.and_then(|d| {
        d.resources
            .iter()
            .find(|r| r.name == RESOURCE)
            .and_then(|r| r.versions.iter().find(|v| v.sha256 == sha).map(|v| v.number))
    });
    if let Some(version) = existing {
        return Ok(DayOutcome { network: network.to_owned(), dataset, day, rows, version, new: false });
    }
    let slug = Slug::parse(&dataset).map_err(|e| ReadingsError::Publish {
        day,
        dataset: dataset.clone(),
        error: PublishError::Invalid(e.to_string()),
    })?;
    let opts = PublishOptions {
        format: Some(citydata_formats::Format::Csv),
        resource: Some(RESOURCE.to_owned()),
        publisher: PUBLISHER.to_owned(),
        meta: Some(meta(network, day)),
        ..PublishOptions::default()
    };
    let published = publish(store, path, &slug, &opts, &Quiet).map_err(|error| ReadingsError::Publish {
        day,
        dataset: dataset.clone(),
        error,
    })?;
    let version = published.first().and_then(|o| o.version);
    match version {
        Some(version) => {
            Ok(DayOutcome { network: network.to_owned(), dataset, day, rows, version, new: true })
        }
        // The pipeline found the current version identical (a race with another publisher).
        None => {
            let current = store
                .dataset(&dataset)?
                .and_then(|d| {
                    d.resources
                        .iter()
                        .find(|r| r.name == RESOURCE)
                        .and_then(|r| r.current().map(|v| v.number))
                })
                .unwrap_or(0);
            Ok(DayOutcome { network: network.to_owned(), dataset, day, rows, version: current, new: false })
        }
    }
}

/// The English and Traditional Chinese names of the known networks.
fn network_names(network: &str) -> (String, String) {
    match network {
        "smart-lampposts" => ("Smart lampposts".into(), "智慧燈柱".into()),
        "traffic-detectors" => ("Traffic detectors".into(), "交通探測器".into()),
        "air-quality-stations" => ("Air quality monitoring stations".into(), "空氣質素監測站".into()),
        "sensors" => ("Sensors".into(), "感應器".into()),
        other => (other.to_owned(), other.to_owned()),
    }
}

/// The metadata of a network's readings dataset whose current version holds `day`.
#[must_use]
pub fn meta(network: &str, day: Date) -> DatasetMeta {
    let (en, zh) = network_names(network);
    let description_en = format!(
        "Every reading of the sensor network \"{en}\" for one Hong Kong calendar day (00:00 to 24:00, UTC+8), \
         one row per observation: thing, datastream id and name, observed property, unit, phenomenon time \
         (ISO 8601, +08:00), result, and the thing's latitude and longitude when known. Each day is a new \
         version of the resource \"{RESOURCE}\", so earlier days are its earlier versions. The current \
         version holds the readings of {day}."
    );
    let description_zh = format!(
        "感應器網絡「{zh}」一個香港曆日（協調世界時+8，00:00至24:00）的所有讀數，每項觀測一行：\
         裝置、數據流編號及名稱、觀測屬性、單位、觀測時間（ISO 8601，+08:00）、結果，以及裝置的緯度及經度（如有）。\
         每日為資源「{RESOURCE}」的新版本，較早的日子即其較早的版本。現行版本載有{day}的讀數。"
    );
    let mut resources = std::collections::BTreeMap::new();
    resources.insert(
        RESOURCE.to_owned(),
        ResourceMeta {
            title: trilingual(&format!("Readings of {day}"), &format!("{day}的讀數")),
            description: trilingual(
                &format!("The readings of {day}, Hong Kong time."),
                &format!("{day}（香港時間）的讀數。"),
            ),
            schema: None,
            // One point per reading would repeat each Thing's place thousands of times a day.
            geometry: Some(GeometrySpec { none: true, ..GeometrySpec::default() }),
        },
    );
    DatasetMeta {
        title: trilingual(&format!("{en}: daily sensor readings"), &format!("{zh}：每日感應器讀數")),
        description: trilingual(&description_en, &description_zh),
        organization: Some("ogcio".to_owned()),
        organization_title: trilingual(
            "Office of the Government Chief Information Officer",
            "政府資訊科技總監辦公室",
        ),
        tags: vec!["sensors".into(), "real-time".into(), "smart city".into(), network.to_owned()],
        license: Some(crate::demo::real::LICENSE.to_owned()),
        frequency: Some("daily".to_owned()),
        theme: Some("Smart City".to_owned()),
        source: Some("citydata SensorThings API (/sta/v1.1)".to_owned()),
        resources,
        ..DatasetMeta::default()
    }
}

/// The days already published, over all networks' readings datasets (from the versions' file names).
///
/// # Errors
/// Store errors.
pub fn published_days(store: &Store) -> Result<BTreeSet<Date>, StoreError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut days = BTreeSet::new();
    for slug in store.dataset_slugs()? {
        let Some(network) = slug.strip_suffix(&format!("-{RESOURCE}")) else { continue };
        let Some(d) = store.dataset(&slug)? else { continue };
        let prefix = format!("{}-", dataset_slug(network));
        for r in d.resources.iter().filter(|r| r.name == RESOURCE) {
            for v in &r.versions {
                let day = v
                    .filename
                    .strip_prefix(&prefix)
                    .and_then(|s| s.strip_suffix(".csv"))
                    .and_then(|s| Date::parse(s, format).ok());
                days.extend(day);
            }
        }
    }
    Ok(days)
}

/// The finished days the server publishes at start, oldest first: the last [`CATCH_UP_DAYS`]
/// before `today` that come after the newest day in `published` (so that the versions stay in the
/// order of the days, and the current version holds the newest day).
#[must_use]
pub fn days_to_catch_up(today: Date, published: &BTreeSet<Date>) -> Vec<Date> {
    let newest = published.iter().next_back().copied();
    (1..=CATCH_UP_DAYS)
        .rev()
        .filter_map(|n| today.checked_sub(time::Duration::days(n)))
        .filter(|d| newest.is_none_or(|n| *d > n))
        .collect()
}

/// How long from `now` until a minute after the next Hong Kong midnight.
#[must_use]
pub fn until_next_run(now: OffsetDateTime) -> Duration {
    let next = hong_kong_day(now).next_day().map_or(now, day_start) + time::Duration::minutes(1);
    Duration::try_from(next - now).unwrap_or(Duration::ZERO)
}

fn log(day: Date, r: &Result<Vec<DayOutcome>, ReadingsError>) {
    match r {
        Ok(v) if v.is_empty() => tracing::debug!(%day, "no readings to publish"),
        Ok(v) => {
            for o in v {
                tracing::info!(%day, dataset = %o.dataset, version = o.version, new = o.new, rows = o.rows,
                    "published the day's readings");
            }
        }
        Err(e) => tracing::warn!(%day, "could not publish the day's readings: {e}"),
    }
}

/// Starts the daily publisher on its own thread: it publishes the finished days that
/// [`days_to_catch_up`] names, then sleeps until a minute after each Hong Kong midnight and publishes
/// the day that just ended, until `stop` is set (checked every second). Errors are logged.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn_daily(store: Arc<Store>, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("daily-readings".into()).spawn(move || {
        let today = hong_kong_day(OffsetDateTime::now_utc());
        match published_days(&store) {
            Ok(published) => {
                for day in days_to_catch_up(today, &published) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    log(day, &publish_day(&store, day));
                }
            }
            Err(e) => tracing::warn!("could not list the published days of readings: {e}"),
        }
        let mut day = today;
        loop {
            // The wall clock is read again every second, so a suspended machine or a changed clock
            // still ends the wait at the right time.
            let end =
                day.next_day().map_or(OffsetDateTime::now_utc(), day_start) + time::Duration::minutes(1);
            while OffsetDateTime::now_utc() < end {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(until_next_run(OffsetDateTime::now_utc()).min(Duration::from_secs(1)));
            }
            log(day, &publish_day(&store, day));
            day = hong_kong_day(OffsetDateTime::now_utc());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn hong_kong_days_and_midnights() {
        assert_eq!(hong_kong_day(datetime!(2026-11-24 15:59:59 UTC)), date!(2026 - 11 - 24));
        assert_eq!(hong_kong_day(datetime!(2026-11-24 16:00:00 UTC)), date!(2026 - 11 - 25));
        assert_eq!(day_start(date!(2026 - 11 - 25)), datetime!(2026-11-24 16:00:00 UTC));
        assert_eq!(until_next_run(datetime!(2026-11-24 15:00:00 UTC)), Duration::from_secs(3600 + 60));
        assert_eq!(until_next_run(datetime!(2026-11-24 16:00:30 UTC)), Duration::from_secs(86_400 + 30));
        assert_eq!(hk_time(micros(datetime!(2026-11-24 16:00:00 UTC))), "2026-11-25T00:00:00+08:00");
    }

    #[test]
    fn catch_up_only_after_the_newest_published_day() {
        let today = date!(2026 - 11 - 25);
        let none = BTreeSet::new();
        let all = days_to_catch_up(today, &none);
        assert_eq!(all.len(), 7);
        assert_eq!(all.first(), Some(&date!(2026 - 11 - 18)));
        assert_eq!(all.last(), Some(&date!(2026 - 11 - 24)));
        let some: BTreeSet<Date> = [date!(2026 - 11 - 10), date!(2026 - 11 - 21)].into_iter().collect();
        assert_eq!(
            days_to_catch_up(today, &some),
            vec![date!(2026 - 11 - 22), date!(2026 - 11 - 23), date!(2026 - 11 - 24)]
        );
        let done: BTreeSet<Date> = [date!(2026 - 11 - 24)].into_iter().collect();
        assert!(days_to_catch_up(today, &done).is_empty());
    }

    #[test]
    fn networks_and_places() {
        assert_eq!(network_of(Some(&serde_json::json!({"network": "smart-lampposts"}))), "smart-lampposts");
        assert_eq!(network_of(Some(&serde_json::json!({"network": "Air Quality!"}))), "air-quality");
        assert_eq!(network_of(Some(&serde_json::json!({"other": 1}))), DEFAULT_NETWORK);
        assert_eq!(network_of(None), DEFAULT_NETWORK);
        assert_eq!(lat_lon(Some(r#"{"type":"Point","coordinates":[114.1,22.3]}"#)), Some((22.3, 114.1)));
        assert_eq!(lat_lon(Some(r#"{"type":"Polygon","coordinates":[]}"#)), None);
        assert_eq!(lat_lon(None), None);
    }
}
