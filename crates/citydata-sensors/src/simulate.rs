//! The simulator of the demo's smart lampposts, and the directory that gives each series its
//! SensorThings Datastream.
//!
//! A [`Fleet`] of lampposts in the four urban areas of the demo carries devices (the binary makes it
//! from the demo's own lamppost layer, so that ids and places match the map; [`Fleet::demo`] is a
//! stand-alone fleet for tests and benchmarks); each device
//! measures some [`Measure`]s (PM2.5, NO2, AQHI, temperature, humidity, traffic flow and speed).
//! [`Model::value`] is a pure function of the series, the instant and the seed: diurnal cycles,
//! morning and evening rush hours (weekdays stronger than weekends), pollution that follows traffic,
//! a humidity that falls as the air warms, and noise. [`Model::fate`] decides, also
//! deterministically, which readings are lost (2 %, and whole lampposts offline for an hour now and
//! then) and which arrive late (3 %, one to five minutes after they were taken).
//!
//! [`Directory`] finds or creates the Things (one per lamppost, with its Location), Sensors,
//! ObservedProperties and Datastreams, through the store in process ([`StoreDirectory`]) or the
//! SensorThings API over HTTP ([`HttpDirectory`]). A series is found again by its key, kept in the
//! Datastream's `properties.key` (`lamppost/{id}/{measure}`, or a feed's key, see `feeds`).
//!
//! [`run`] drives a fleet at a chosen rate into a [`Sink`] (the ingest in process, the
//! `CreateObservations` endpoint over HTTP, or an MQTT broker) for a duration or until stopped.
//!
//! **Invariant:** the same seed, fleet and instants give the same readings; the simulator never
//! sends a reading twice except when a sink asks to retry.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citydata_store::sensors::{CmpOp, EntityQuery, EntitySet, Expr, Link, NewEntity, SVal};
use citydata_store::Store;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::{feeds, Ingest, NewObservation};

/// Why the simulator stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The directory (store or SensorThings API) refused or failed.
    #[error("cannot set up the datastreams: {0}")]
    Directory(String),
    /// The sink refused readings or cannot be reached.
    #[error("cannot send readings: {0}")]
    Sink(String),
}

/// What a lamppost's device measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Fine particulates, µg/m³.
    Pm25,
    /// Nitrogen dioxide, µg/m³.
    No2,
    /// The Air Quality Health Index, 1 to 10, 11 for "10+".
    Aqhi,
    /// Air temperature, °C.
    Temperature,
    /// Relative humidity, %.
    Humidity,
    /// Vehicles per minute passing the lamppost.
    TrafficFlow,
    /// Mean vehicle speed, km/h.
    TrafficSpeed,
}

impl Measure {
    /// Every measure.
    pub const ALL: [Measure; 7] = [
        Measure::Pm25,
        Measure::No2,
        Measure::Aqhi,
        Measure::Temperature,
        Measure::Humidity,
        Measure::TrafficFlow,
        Measure::TrafficSpeed,
    ];

    /// Its short name, used in series keys.
    pub fn code(self) -> &'static str {
        match self {
            Measure::Pm25 => "pm25",
            Measure::No2 => "no2",
            Measure::Aqhi => "aqhi",
            Measure::Temperature => "temperature",
            Measure::Humidity => "humidity",
            Measure::TrafficFlow => "traffic_flow",
            Measure::TrafficSpeed => "traffic_speed",
        }
    }

    /// The ObservedProperty: name, definition, description.
    pub fn property(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Measure::Pm25 => {
                ("PM2.5", "http://vocabs.lter-europe.net/EnvThes/22167", "Fine suspended particulates")
            }
            Measure::No2 => ("NO2", "http://vocabs.lter-europe.net/EnvThes/30198", "Nitrogen dioxide"),
            Measure::Aqhi => (
                "AQHI",
                "https://www.aqhi.gov.hk/en/what-is-aqhi/about-aqhi.html",
                "Air Quality Health Index (1-10, 11 stands for 10+)",
            ),
            Measure::Temperature => (
                "Air temperature",
                "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/",
                "Air temperature",
            ),
            Measure::Humidity => (
                "Relative humidity",
                "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0413/",
                "Relative humidity",
            ),
            Measure::TrafficFlow => {
                ("Traffic flow", "https://www.td.gov.hk/en/traffic_flow", "Vehicles passing per minute")
            }
            Measure::TrafficSpeed => {
                ("Traffic speed", "https://www.td.gov.hk/en/traffic_speed", "Mean vehicle speed")
            }
        }
    }

    /// The unit: name, symbol, definition.
    pub fn unit(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Measure::Pm25 | Measure::No2 => {
                ("microgram per cubic metre", "µg/m³", "http://qudt.org/vocab/unit/MicroGM-PER-M3")
            }
            Measure::Aqhi => ("index", "AQHI", "https://www.aqhi.gov.hk/"),
            Measure::Temperature => ("degree Celsius", "°C", "http://qudt.org/vocab/unit/DEG_C"),
            Measure::Humidity => ("percent", "%", "http://qudt.org/vocab/unit/PERCENT"),
            Measure::TrafficFlow => ("vehicles per minute", "veh/min", "http://qudt.org/vocab/unit/PER-MIN"),
            Measure::TrafficSpeed => {
                ("kilometre per hour", "km/h", "http://qudt.org/vocab/unit/KiloM-PER-HR")
            }
        }
    }

    /// The device that measures it: sensor name and description.
    pub fn sensor(self) -> (&'static str, &'static str) {
        match self {
            Measure::Pm25 | Measure::No2 | Measure::Aqhi => {
                ("Air quality sensor", "Lamppost air quality sensor (particulates, NO2)")
            }
            Measure::Temperature | Measure::Humidity => {
                ("Meteorological sensor", "Lamppost meteorological sensor (temperature, humidity)")
            }
            Measure::TrafficFlow | Measure::TrafficSpeed => {
                ("Traffic detector", "Lamppost traffic detector (flow and speed)")
            }
        }
    }
}

/// A smart lamppost and its devices.
#[derive(Debug, Clone, PartialEq)]
pub struct Lamppost {
    /// Its number, such as `KE1234`.
    pub id: String,
    /// The urban area.
    pub area: String,
    /// The district it stands in, when known.
    pub district: Option<String>,
    /// Longitude, WGS 84.
    pub lon: f64,
    /// Latitude, WGS 84.
    pub lat: f64,
    /// What it measures.
    pub measures: Vec<Measure>,
}

/// A set of lampposts.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// The lampposts.
    pub lampposts: Vec<Lamppost>,
}

/// The four urban areas of the demo's lampposts: name, code, centre.
const AREAS: [(&str, &str, f64, f64); 4] = [
    ("Kowloon East", "KE", 114.2135, 22.3215),
    ("Tsim Sha Tsui", "TS", 114.1722, 22.2988),
    ("Central", "CE", 114.1588, 22.2820),
    ("Causeway Bay", "CB", 114.1839, 22.2797),
];

impl Fleet {
    /// `n` lampposts spread over the four areas, the same for the same `seed`. Every lamppost has
    /// a traffic detector; about half a meteorological sensor, and a third an air quality sensor.
    pub fn demo(n: usize, seed: u64) -> Self {
        let mut lampposts = Vec::with_capacity(n);
        for i in 0..n {
            let (area, code, lon0, lat0) = AREAS[i % AREAS.len()];
            let h = |k: u64| unit(mix(seed, &[0x1a, i as u64, k]));
            let r = 0.008 * h(1).sqrt();
            let a = std::f64::consts::TAU * h(2);
            let mut measures = vec![Measure::TrafficFlow, Measure::TrafficSpeed];
            if i % 2 == 0 || h(3) < 0.2 {
                measures.extend([Measure::Temperature, Measure::Humidity]);
            }
            if i % 3 == 0 || h(4) < 0.1 {
                measures.extend([Measure::Pm25, Measure::No2, Measure::Aqhi]);
            }
            lampposts.push(Lamppost {
                id: format!("{code}{:04}", 1000 + i / AREAS.len()),
                area: area.to_owned(),
                district: None,
                lon: ((lon0 + r * a.cos()) * 1e6).round() / 1e6,
                lat: ((lat0 + r * a.sin() * 0.9) * 1e6).round() / 1e6,
                measures,
            });
        }
        Fleet { lampposts }
    }

    /// Every series of the fleet: (lamppost index, measure).
    pub fn series(&self) -> Vec<(usize, Measure)> {
        self.lampposts.iter().enumerate().flat_map(|(i, l)| l.measures.iter().map(move |m| (i, *m))).collect()
    }
}

/// The key of a lamppost's series.
pub fn series_key(lamppost: &Lamppost, m: Measure) -> String {
    format!("lamppost/{}/{}", lamppost.id, m.code())
}

fn mix(seed: u64, parts: &[u64]) -> u64 {
    // SplitMix64 over the parts: cheap, well spread, stable across platforms.
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    for p in parts {
        x = x.wrapping_add(*p).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal from two uniforms (Box-Muller).
fn normal(x: u64) -> f64 {
    let u1 = unit(mix(x, &[1])).max(1e-12);
    let u2 = unit(mix(x, &[2]));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// What becomes of a reading on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Sent when taken.
    OnTime,
    /// Sent this long after it was taken.
    Late(Duration),
    /// Never sent.
    Lost,
}

/// The model of the city's readings.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// The seed: the same seed gives the same readings.
    pub seed: u64,
}

impl Model {
    /// How busy the roads are at `t` (0 at night to about 1 at the rush-hour peaks).
    fn traffic(self, lamppost: usize, t: OffsetDateTime) -> f64 {
        let hk = t.to_offset(time::macros::offset!(+8));
        let h = f64::from(hk.hour()) + f64::from(hk.minute()) / 60.0 + f64::from(hk.second()) / 3600.0;
        let weekend = matches!(hk.weekday(), time::Weekday::Saturday | time::Weekday::Sunday);
        let peak = |centre: f64, width: f64| (-((h - centre) / width).powi(2) / 2.0).exp();
        let day = (0.55 * (std::f64::consts::PI * (h - 5.5) / 18.0).sin()).max(0.0); // 05:30-23:30
        let rush =
            if weekend { 0.25 * peak(12.0, 3.0) } else { 0.45 * peak(8.5, 1.0) + 0.5 * peak(18.25, 1.2) };
        let local = 0.7 + 0.6 * unit(mix(self.seed, &[0x7a, lamppost as u64]));
        ((0.04 + day + rush) * local * if weekend { 0.8 } else { 1.0 }).min(1.3)
    }

    /// The value of series (`lamppost`, `m`) at `t`, as JSON (integers for flow and AQHI).
    pub fn value(self, lamppost: usize, m: Measure, t: OffsetDateTime) -> Json {
        let secs = t.unix_timestamp();
        let noise = |k: u64| normal(mix(self.seed, &[lamppost as u64, k, secs as u64]));
        let hk = t.to_offset(time::macros::offset!(+8));
        let h = f64::from(hk.hour()) + f64::from(hk.minute()) / 60.0;
        let day_no = (secs + 8 * 3600).div_euclid(86_400) as u64;
        // A slow day-to-day drift of the weather and the background pollution.
        let daily = normal(mix(self.seed, &[0xd, day_no]));
        let traffic = self.traffic(lamppost, t);
        let place = normal(mix(self.seed, &[0x91, lamppost as u64]));
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        match m {
            Measure::Temperature => {
                let base = 24.0 + 2.5 * daily + 0.4 * place;
                json!(round1(base + 3.5 * (std::f64::consts::TAU * (h - 14.5) / 24.0).cos() + 0.3 * noise(1)))
            }
            Measure::Humidity => {
                let base = 76.0 - 6.0 * daily;
                let v = base - 11.0 * (std::f64::consts::TAU * (h - 14.5) / 24.0).cos() + 1.5 * noise(2);
                json!(round1(v.clamp(35.0, 100.0)))
            }
            Measure::TrafficFlow => {
                let mean = 2.0 + 38.0 * traffic;
                json!((mean + mean.sqrt() * noise(3)).round().max(0.0) as i64)
            }
            Measure::TrafficSpeed => {
                let congestion = (traffic - 0.6).max(0.0) * 1.6;
                let v = 58.0 - 40.0 * congestion.min(1.0) + 8.0 * place.clamp(-1.0, 1.0) + 3.0 * noise(4);
                json!(round1(v.clamp(4.0, 90.0)))
            }
            Measure::No2 => json!(round1(self.no2(lamppost, t, daily, traffic) + 4.0 * noise(5))),
            Measure::Pm25 => json!(round1(self.pm25(daily, traffic) + 2.0 * noise(6))),
            Measure::Aqhi => {
                let no2 = self.no2(lamppost, t, daily, traffic);
                let pm = self.pm25(daily, traffic);
                json!(aqhi(no2, pm, 45.0))
            }
        }
    }

    fn no2(self, lamppost: usize, _t: OffsetDateTime, daily: f64, traffic: f64) -> f64 {
        let place = unit(mix(self.seed, &[0x92, lamppost as u64]));
        (22.0 + 6.0 * daily + 70.0 * traffic * (0.7 + 0.6 * place)).max(3.0)
    }

    fn pm25(self, daily: f64, traffic: f64) -> f64 {
        (16.0 + 7.0 * daily + 12.0 * traffic).max(2.0)
    }

    /// What becomes of the reading of series (`lamppost`, `m`) taken at `t`.
    pub fn fate(self, lamppost: usize, m: Measure, t: OffsetDateTime) -> Fate {
        let secs = t.unix_timestamp();
        let hour = secs.div_euclid(3600) as u64;
        if unit(mix(self.seed, &[0x0f, lamppost as u64, hour])) < 0.01 {
            return Fate::Lost; // the whole lamppost is offline this hour
        }
        let r = unit(mix(self.seed, &[0xfa, lamppost as u64, m as u64, secs as u64]));
        if r < 0.02 {
            Fate::Lost
        } else if r < 0.05 {
            Fate::Late(Duration::from_secs(60 + (r * 1e6) as u64 % 240))
        } else {
            Fate::OnTime
        }
    }
}

/// Hong Kong's AQHI band (1 to 10, 11 for "10+") from NO2, PM2.5 and O3 in µg/m³, by the added
/// health risk of the three (the published coefficients; PM2.5 stands for the particulates).
pub fn aqhi(no2: f64, pm25: f64, o3: f64) -> i64 {
    let ar = 100.0
        * ((0.000_446_255_9 * no2).exp_m1()
            + (0.000_218_056_7 * pm25).exp_m1()
            + (0.000_511_632_8 * o3).exp_m1());
    let bands = [1.88, 3.76, 5.64, 7.52, 9.41, 11.29, 12.91, 15.07, 17.22, 19.37];
    bands.iter().position(|b| ar <= *b).map_or(11, |i| i as i64 + 1)
}

// ---- The directory --------------------------------------------------------------------------

/// The sensor network of the smart lampposts (a Thing's `properties.network`).
pub const LAMPPOST_NETWORK: &str = "smart-lampposts";

/// One series to be given a Datastream: its key, the Thing it belongs to and what it measures.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpec {
    /// The key, kept in the Datastream's `properties.key`.
    pub key: String,
    /// The Thing's name (found again by name).
    pub thing: String,
    /// The Thing's description.
    pub thing_description: String,
    /// Where the Thing is (longitude, latitude), if known.
    pub location: Option<(f64, f64)>,
    /// The sensor network the Thing belongs to, kept in the Thing's `properties.network` (the
    /// daily open-data readings are published per network).
    pub network: String,
    /// The urban area, kept in the Thing's `properties.area` when known.
    pub area: Option<String>,
    /// The district, kept in the Thing's `properties.district` when known.
    pub district: Option<String>,
    /// What is measured ([`Measure::code`]), kept in the Datastream's `properties.measure` when
    /// known.
    pub measure: Option<&'static str>,
    /// The Datastream's name.
    pub name: String,
    /// The ObservedProperty: name, definition, description.
    pub property: (String, String, String),
    /// The unit: name, symbol, definition.
    pub unit: (String, String, String),
    /// The Sensor: name, description.
    pub sensor: (String, String),
}

impl SeriesSpec {
    /// The spec of a lamppost's series.
    pub fn lamppost(l: &Lamppost, m: Measure) -> Self {
        let (pn, pd, pdesc) = m.property();
        let (un, us, ud) = m.unit();
        let (sn, sd) = m.sensor();
        SeriesSpec {
            key: series_key(l, m),
            thing: format!("Smart lamppost {}", l.id),
            thing_description: format!("Smart lamppost {} in {} (simulated readings)", l.id, l.area),
            location: Some((l.lon, l.lat)),
            network: LAMPPOST_NETWORK.to_owned(),
            area: Some(l.area.clone()),
            district: l.district.clone(),
            measure: Some(m.code()),
            name: format!("{} at lamppost {}", pn, l.id),
            property: (pn.into(), pd.into(), pdesc.into()),
            unit: (un.into(), us.into(), ud.into()),
            sensor: (sn.into(), sd.into()),
        }
    }

    /// The spec of a government feed's series, from its key (see `feeds`).
    pub fn feed(key: &str) -> Self {
        let parts: Vec<&str> = key.split('/').collect();
        let measure = |code: &str| match code {
            "T0" => Some(Measure::Temperature),
            "RH" => Some(Measure::Humidity),
            "speed" => Some(Measure::TrafficSpeed),
            _ => None,
        };
        let (thing, descr, element) = match parts.as_slice() {
            ["hko", pi, di, el] => (
                format!("Smart lamppost {pi}"),
                format!("Observatory device {di} on smart lamppost {pi}"),
                *el,
            ),
            ["td", det, lane, m] => (
                format!("Traffic detector {det}"),
                format!("Transport Department traffic detector {det}, {lane}"),
                *m,
            ),
            ["aqhi", station @ ..] => {
                let s = station.join("/");
                (format!("AQHI station {s}"), format!("EPD air quality monitoring station {s}"), "aqhi")
            }
            _ => (format!("Feed {key}"), format!("Series {key} of a government feed"), "value"),
        };
        let m = measure(element).or(match element {
            "aqhi" => Some(Measure::Aqhi),
            _ => None,
        });
        let (property, unit, sensor) = match (m, element) {
            (Some(m), _) => {
                let (a, b, c) = m.property();
                let (d, e, f) = m.unit();
                let (g, h) = m.sensor();
                ((a.into(), b.into(), c.into()), (d.into(), e.into(), f.into()), (g.into(), h.into()))
            }
            (None, "volume") => (
                (
                    "Traffic volume".into(),
                    "https://www.td.gov.hk/en/traffic_volume".into(),
                    "Vehicles in 30 s".into(),
                ),
                ("vehicles".into(), "veh".into(), "http://qudt.org/vocab/unit/NUM".into()),
                ("Traffic detector".into(), "Transport Department traffic detector".into()),
            ),
            (None, "occupancy") => (
                (
                    "Road occupancy".into(),
                    "https://www.td.gov.hk/en/occupancy".into(),
                    "Share of time occupied".into(),
                ),
                ("percent".into(), "%".into(), "http://qudt.org/vocab/unit/PERCENT".into()),
                ("Traffic detector".into(), "Transport Department traffic detector".into()),
            ),
            (None, el) => (
                (
                    el.to_string(),
                    format!("https://www.hko.gov.hk/en/{el}"),
                    format!("Element {el} of the feed"),
                ),
                ("unspecified".into(), "".into(), "".into()),
                ("Feed device".into(), "A device of a government feed".into()),
            ),
        };
        SeriesSpec {
            key: key.to_owned(),
            thing,
            thing_description: descr,
            location: None,
            network: match parts.first() {
                Some(&"hko") => LAMPPOST_NETWORK,
                Some(&"td") => "traffic-detectors",
                Some(&"aqhi") => "air-quality-stations",
                _ => "sensors",
            }
            .to_owned(),
            area: None,
            district: None,
            measure: m.map(Measure::code),
            name: format!("{} ({key})", property.0),
            property,
            unit,
            sensor,
        }
    }
}

/// Finds or creates the SensorThings entities of series.
pub trait Directory {
    /// The id of the Datastream whose `properties.key` is `key`, if there is one.
    ///
    /// # Errors
    /// When the directory cannot be read.
    fn find_datastream(&mut self, key: &str) -> Result<Option<i64>, SimError>;
    /// The id of the entity of `set` (plural name) called `name`, if there is one.
    ///
    /// # Errors
    /// When the directory cannot be read.
    fn find_named(&mut self, set: &str, name: &str) -> Result<Option<i64>, SimError>;
    /// Creates an entity of `set` (plural name) from its SensorThings JSON; returns its id.
    ///
    /// # Errors
    /// When it is refused.
    fn create(&mut self, set: &str, body: &Json) -> Result<i64, SimError>;
}

/// Finds or creates the Datastream of each spec (and the Thing, Location, Sensor and
/// ObservedProperty it needs); returns their ids in the specs' order.
///
/// # Errors
/// When the directory fails.
pub fn ensure_datastreams(dir: &mut dyn Directory, specs: &[SeriesSpec]) -> Result<Vec<i64>, SimError> {
    let mut named: HashMap<(&'static str, String), i64> = HashMap::new();
    let mut out = Vec::with_capacity(specs.len());
    for s in specs {
        if let Some(id) = dir.find_datastream(&s.key)? {
            out.push(id);
            continue;
        }
        let mut get =
            |dir: &mut dyn Directory, set: &'static str, name: &str, body: Json| -> Result<i64, SimError> {
                if let Some(id) = named.get(&(set, name.to_owned())) {
                    return Ok(*id);
                }
                let id = match dir.find_named(set, name)? {
                    Some(id) => id,
                    None => dir.create(set, &body)?,
                };
                named.insert((set, name.to_owned()), id);
                Ok(id)
            };
        let mut thing_props = json!({"network": s.network});
        if let Some(a) = &s.area {
            thing_props["area"] = json!(a);
        }
        if let Some(d) = &s.district {
            thing_props["district"] = json!(d);
        }
        let mut thing_body = json!({
            "name": s.thing,
            "description": s.thing_description,
            "properties": thing_props,
        });
        if let Some((lon, lat)) = s.location {
            thing_body["Locations"] = json!([{
                "name": format!("Location of {}", s.thing),
                "description": s.thing_description,
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [lon, lat]},
            }]);
        }
        let thing = get(dir, "Things", &s.thing, thing_body)?;
        let sensor = get(
            dir,
            "Sensors",
            &s.sensor.0,
            json!({"name": s.sensor.0, "description": s.sensor.1, "encodingType": "text/html", "metadata": "https://www.smartlamppost.gov.hk/"}),
        )?;
        let prop = get(
            dir,
            "ObservedProperties",
            &s.property.0,
            json!({"name": s.property.0, "definition": s.property.1, "description": s.property.2}),
        )?;
        let ds = dir.create(
            "Datastreams",
            &json!({
                "name": s.name,
                "description": format!("{} of {}", s.property.2, s.thing),
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "unitOfMeasurement": {"name": s.unit.0, "symbol": s.unit.1, "definition": s.unit.2},
                "properties": match s.measure {
                    Some(m) => json!({"key": s.key, "measure": m}),
                    None => json!({"key": s.key}),
                },
                "Thing": {"@iot.id": thing},
                "Sensor": {"@iot.id": sensor},
                "ObservedProperty": {"@iot.id": prop},
            }),
        )?;
        out.push(ds);
    }
    Ok(out)
}

/// The directory of the store in this process.
pub struct StoreDirectory<'a> {
    /// The store.
    pub store: &'a Store,
}

fn store_err(e: impl std::fmt::Display) -> SimError {
    SimError::Directory(e.to_string())
}

/// A SensorThings entity in JSON as the store's [`NewEntity`]: members named by a navigation
/// property become links (a reference `{"@iot.id": N}` or a nested new entity), the rest are
/// properties.
///
/// # Errors
/// When the set is unknown or a navigation member has the wrong shape.
pub fn new_entity(set: EntitySet, body: &Json) -> Result<NewEntity, String> {
    let obj = body.as_object().ok_or_else(|| format!("a {} must be a JSON object", set.singular()))?;
    let mut e = NewEntity { set, props: Vec::new(), links: Vec::new() };
    for (k, v) in obj {
        match set.nav(k) {
            Some(nav) => {
                let items: Vec<&Json> = match v {
                    Json::Array(a) if nav.many => a.iter().collect(),
                    Json::Object(_) if !nav.many => vec![v],
                    _ => return Err(format!("{k} of a {} has the wrong shape", set.singular())),
                };
                for item in items {
                    let link = match item.get("@iot.id").and_then(Json::as_i64) {
                        Some(id) => Link::Id(id),
                        None => Link::New(new_entity(nav.target, item)?),
                    };
                    e.links.push((k.clone(), link));
                }
            }
            None => e.props.push((k.clone(), v.clone())),
        }
    }
    Ok(e)
}

impl Directory for StoreDirectory<'_> {
    fn find_datastream(&mut self, key: &str) -> Result<Option<i64>, SimError> {
        let mut q = EntityQuery::all(EntitySet::Datastream);
        q.filter = Some(Expr::Cmp(
            CmpOp::Eq,
            Box::new(Expr::Path(vec!["properties".into(), "key".into()])),
            Box::new(Expr::Lit(SVal::Text(key.to_owned()))),
        ));
        q.top = 1;
        Ok(self.store.sta_query(&q).map_err(store_err)?.entities.first().map(|e| e.id))
    }

    fn find_named(&mut self, set: &str, name: &str) -> Result<Option<i64>, SimError> {
        let set = EntitySet::from_plural(set).ok_or_else(|| store_err(format!("no entity set {set}")))?;
        let mut q = EntityQuery::all(set);
        q.filter = Some(Expr::Cmp(
            CmpOp::Eq,
            Box::new(Expr::Path(vec!["name".into()])),
            Box::new(Expr::Lit(SVal::Text(name.to_owned()))),
        ));
        q.top = 1;
        Ok(self.store.sta_query(&q).map_err(store_err)?.entities.first().map(|e| e.id))
    }

    fn create(&mut self, set: &str, body: &Json) -> Result<i64, SimError> {
        let set = EntitySet::from_plural(set).ok_or_else(|| store_err(format!("no entity set {set}")))?;
        let e = new_entity(set, body).map_err(store_err)?;
        self.store.sta_create(&e).map_err(store_err)
    }
}

/// The directory of a SensorThings API over HTTP (`base` ends with `/sta/v1.1`).
pub struct HttpDirectory {
    base: String,
    agent: ureq::Agent,
}

impl HttpDirectory {
    /// A directory at `base`, such as `http://127.0.0.1:8080/sta/v1.1`.
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        HttpDirectory { base: base.trim_end_matches('/').to_owned(), agent }
    }

    fn first_id(&self, set: &str, filter: &str) -> Result<Option<i64>, SimError> {
        let url = format!("{}/{set}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .query("$filter", filter)
            .query("$select", "id")
            .query("$top", "1")
            .call()
            .map_err(|e| SimError::Directory(format!("GET {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body: Json = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_json()
            .map_err(|e| SimError::Directory(format!("GET {url}: {e}")))?;
        if status != 200 {
            return Err(SimError::Directory(format!("GET {url} ({filter}): {status} {body}")));
        }
        Ok(body["value"].get(0).and_then(|v| v["@iot.id"].as_i64()))
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Directory for HttpDirectory {
    fn find_datastream(&mut self, key: &str) -> Result<Option<i64>, SimError> {
        self.first_id("Datastreams", &format!("properties/key eq {}", quote(key)))
    }

    fn find_named(&mut self, set: &str, name: &str) -> Result<Option<i64>, SimError> {
        self.first_id(set, &format!("name eq {}", quote(name)))
    }

    fn create(&mut self, set: &str, body: &Json) -> Result<i64, SimError> {
        let url = format!("{}/{set}", self.base);
        let mut resp = self
            .agent
            .post(&url)
            .send_json(body)
            .map_err(|e| SimError::Directory(format!("POST {url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
        if status != 201 {
            return Err(SimError::Directory(format!("POST {url}: {status} {text}")));
        }
        if let Some(id) = serde_json::from_str::<Json>(&text).ok().and_then(|v| v["@iot.id"].as_i64()) {
            return Ok(id);
        }
        // The standard answers 201 with a Location header; the body may be empty.
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
        loc.rsplit_once('(')
            .and_then(|(_, r)| r.trim_end_matches(')').parse().ok())
            .ok_or_else(|| SimError::Directory(format!("POST {url}: 201 without the new entity's id")))
    }
}

// ---- Sinks and the run loop -----------------------------------------------------------------

/// Where readings go.
pub trait Sink: Send {
    /// Sends a batch; returns how many were stored (duplicates are not an error).
    ///
    /// # Errors
    /// When the batch cannot be delivered.
    fn send(&mut self, batch: Vec<NewObservation>) -> Result<u64, SimError>;
}

/// The ingest in this process (called from a thread outside the runtime).
pub struct IngestSink {
    /// The ingest.
    pub ingest: Arc<dyn Ingest>,
    /// The runtime it runs on.
    pub runtime: tokio::runtime::Handle,
}

impl Sink for IngestSink {
    fn send(&mut self, batch: Vec<NewObservation>) -> Result<u64, SimError> {
        let mut stored = 0;
        for chunk in batch.chunks(crate::MAX_BATCH) {
            let out = self
                .runtime
                .block_on(self.ingest.submit(chunk.to_vec()))
                .map_err(|e| SimError::Sink(e.to_string()))?;
            stored += out.iter().filter(|o| matches!(o, crate::Outcome::Stored(_))).count() as u64;
        }
        Ok(stored)
    }
}

/// The dataArray body of `CreateObservations` for a batch: one group per datastream.
pub fn create_observations_body(batch: &[NewObservation]) -> Json {
    let mut groups: Vec<(i64, Vec<Json>)> = Vec::new();
    for r in batch {
        let phen = match r.phenomenon_end {
            Some(e) => format!("{}/{}", crate::live::rfc3339(r.phenomenon_time), crate::live::rfc3339(e)),
            None => crate::live::rfc3339(r.phenomenon_time),
        };
        let row = json!([phen, r.result, r.result_time.map(crate::live::rfc3339)]);
        match groups.iter_mut().find(|(d, _)| *d == r.datastream) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((r.datastream, vec![row])),
        }
    }
    Json::Array(
        groups
            .into_iter()
            .map(|(ds, rows)| {
                json!({
                    "Datastream": {"@iot.id": ds},
                    "components": ["phenomenonTime", "result", "resultTime"],
                    "dataArray@iot.count": rows.len(),
                    "dataArray": rows,
                })
            })
            .collect(),
    )
}

/// `CreateObservations` of a SensorThings API over HTTP (`base` ends with `/sta/v1.1`).
pub struct HttpSink {
    url: String,
    agent: ureq::Agent,
}

impl HttpSink {
    /// A sink posting to `{base}/CreateObservations`.
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        HttpSink { url: format!("{}/CreateObservations", base.trim_end_matches('/')), agent }
    }
}

impl Sink for HttpSink {
    fn send(&mut self, batch: Vec<NewObservation>) -> Result<u64, SimError> {
        let mut stored = 0;
        for chunk in batch.chunks(5000) {
            let body = create_observations_body(chunk);
            let mut resp = self
                .agent
                .post(&self.url)
                .send_json(&body)
                .map_err(|e| SimError::Sink(format!("POST {}: {e}", self.url)))?;
            let status = resp.status().as_u16();
            let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default();
            if status != 201 && status != 200 {
                return Err(SimError::Sink(format!(
                    "POST {}: {status} {}",
                    self.url,
                    text.chars().take(500).collect::<String>()
                )));
            }
            // The answer lists one self link per stored observation and "error" for the others.
            stored += serde_json::from_str::<Json>(&text)
                .ok()
                .and_then(|v| {
                    v.as_array()
                        .map(|a| a.iter().filter(|x| x.as_str().is_some_and(|s| s != "error")).count())
                })
                .unwrap_or(chunk.len()) as u64;
        }
        Ok(stored)
    }
}

/// An MQTT broker: each reading published at QoS 1 on its datastream's topic; `send` returns when
/// the broker has acknowledged all of the batch.
pub struct MqttSink {
    client: rumqttc::Client,
    acks: std::sync::mpsc::Receiver<()>,
    _thread: std::thread::JoinHandle<()>,
}

impl MqttSink {
    /// Connects to `broker` as `client_id`.
    pub fn connect(broker: &crate::mqtt::BrokerUrl, client_id: &str) -> Self {
        let mut mo = rumqttc::MqttOptions::new(client_id, broker.host.clone(), broker.port);
        mo.set_keep_alive(Duration::from_secs(10)).set_inflight(1000);
        let (client, mut conn) = rumqttc::Client::new(mo, 10_000);
        let (tx, acks) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "simulator lost the MQTT broker");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        });
        MqttSink { client, acks, _thread: thread }
    }
}

impl Sink for MqttSink {
    fn send(&mut self, batch: Vec<NewObservation>) -> Result<u64, SimError> {
        let n = batch.len();
        for r in batch {
            let mut v = crate::live::observation_json(&crate::Observation { id: 0, reading: r.clone() });
            if let Some(m) = v.as_object_mut() {
                m.remove("@iot.id");
                m.remove("Datastream@iot.id");
            }
            self.client
                .publish(crate::mqtt::topic_of(r.datastream), rumqttc::QoS::AtLeastOnce, false, v.to_string())
                .map_err(|e| SimError::Sink(e.to_string()))?;
        }
        for _ in 0..n {
            self.acks
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| SimError::Sink("the broker did not acknowledge within 60 s".into()))?;
        }
        Ok(n as u64)
    }
}

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Readings per second over the whole fleet (each series reports every `series / rate` s).
    pub rate: f64,
    /// Stop after this long (`None`: until stopped).
    pub duration: Option<Duration>,
    /// The seed of the model.
    pub seed: u64,
    /// Batches are sent this often.
    pub tick: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { rate: 10.0, duration: None, seed: 2026, tick: Duration::from_millis(250) }
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Readings generated.
    pub generated: AtomicU64,
    /// Readings sent (late ones when their time came).
    pub sent: AtomicU64,
    /// Readings stored.
    pub stored: AtomicU64,
    /// Readings lost on purpose (dropouts).
    pub lost: AtomicU64,
    /// Readings sent late on purpose.
    pub late: AtomicU64,
}

/// Runs the fleet into `sink` on this thread: series `datastreams[i]` is `fleet.series()[i]`.
/// Stops after the duration, or when `stop` is set.
///
/// # Errors
/// When the sink fails (the run stops).
pub fn run(
    fleet: &Fleet,
    datastreams: &[i64],
    sink: &mut dyn Sink,
    opts: &RunOptions,
    stats: &RunStats,
    stop: &AtomicBool,
) -> Result<(), SimError> {
    let series = fleet.series();
    let model = Model { seed: opts.seed };
    if series.is_empty() || opts.rate <= 0.0 {
        return Ok(());
    }
    let interval = series.len() as f64 / opts.rate; // seconds between readings of one series
    let started = Instant::now();
    let t0 = OffsetDateTime::now_utc();
    // Readings are due at `t0 + (k + offset_i) * interval` for series i, offsets spread evenly.
    let mut next_k: Vec<u64> = vec![0; series.len()];
    let mut late: VecDeque<(Instant, NewObservation)> = VecDeque::new();
    loop {
        let elapsed = started.elapsed();
        let done = stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| elapsed >= d);
        let now_s = elapsed.as_secs_f64();
        let mut batch = Vec::new();
        for (i, (lp, m)) in series.iter().enumerate() {
            let offset = i as f64 / series.len() as f64;
            loop {
                let due = (next_k[i] as f64 + offset) * interval;
                if due > now_s || done {
                    break;
                }
                next_k[i] += 1;
                let at = t0 + time::Duration::seconds_f64(due);
                let at = at.replace_nanosecond(at.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(at);
                stats.generated.fetch_add(1, Ordering::Relaxed);
                let reading = NewObservation {
                    datastream: datastreams[i],
                    phenomenon_time: at,
                    phenomenon_end: None,
                    result: model.value(*lp, *m, at),
                    result_time: None,
                    parameters: None,
                    feature_of_interest: None,
                };
                match model.fate(*lp, *m, at) {
                    Fate::OnTime => batch.push(reading),
                    Fate::Lost => {
                        stats.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Fate::Late(d) => {
                        stats.late.fetch_add(1, Ordering::Relaxed);
                        late.push_back((Instant::now() + d, reading));
                    }
                }
            }
        }
        while late.front().is_some_and(|(when, _)| *when <= Instant::now() || done) {
            if let Some((_, mut r)) = late.pop_front() {
                r.result_time = Some(OffsetDateTime::now_utc());
                batch.push(r);
            }
        }
        if !batch.is_empty() {
            stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
            let stored = sink.send(batch)?;
            stats.stored.fetch_add(stored, Ordering::Relaxed);
        }
        if done {
            return Ok(());
        }
        std::thread::sleep(opts.tick.saturating_sub(started.elapsed().saturating_sub(elapsed)));
    }
}

/// Makes the fleet to simulate (on the simulator's thread: it may take a moment).
pub type MakeFleet = Box<dyn FnOnce() -> Result<Fleet, String> + Send>;

/// Starts the demo's simulator in this process, on its own thread: the fleet `make_fleet` gives,
/// each series one reading a minute, into `ingest` (Datastreams created in `store` first if
/// missing). Call from within a tokio runtime. The thread ends when `stop` is set.
pub fn start_in_process(
    store: Arc<Store>,
    ingest: Arc<dyn Ingest>,
    make_fleet: MakeFleet,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let fleet = match make_fleet() {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "the lamppost simulator has no fleet");
                return;
            }
        };
        let specs: Vec<SeriesSpec> =
            fleet.series().iter().map(|(i, m)| SeriesSpec::lamppost(&fleet.lampposts[*i], *m)).collect();
        if specs.is_empty() {
            tracing::warn!("the lamppost simulator's fleet measures nothing");
            return;
        }
        let t = Instant::now();
        let ids = match ensure_datastreams(&mut StoreDirectory { store: &store }, &specs) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "the lamppost simulator cannot start");
                return;
            }
        };
        tracing::info!(
            lampposts = fleet.lampposts.len(),
            datastreams = ids.len(),
            "lamppost simulator running (set up in {:.1?})",
            t.elapsed()
        );
        let opts = RunOptions {
            rate: ids.len() as f64 / 60.0,
            tick: Duration::from_secs(1),
            ..RunOptions::default()
        };
        let mut sink = IngestSink { ingest, runtime };
        if let Err(e) = run(&fleet, &ids, &mut sink, &opts, &RunStats::default(), &stop) {
            tracing::error!(error = %e, "the lamppost simulator stopped");
        }
    })
}

/// The `simulate` command: drives `fleet` into `target` (`http://HOST:PORT` of a citydata server,
/// or `mqtt://HOST:PORT` of a broker, whose Datastreams live at `api`), or posts the government's
/// feed shapes (`feeds`, HTTP only). Returns a summary.
///
/// # Errors
/// When the target is not understood, or the directory or sink fails.
pub fn run_cli(
    target: &str,
    api: &str,
    fleet: &Fleet,
    feeds: bool,
    opts: &RunOptions,
    stop: &AtomicBool,
) -> Result<String, SimError> {
    let stats = RunStats::default();
    let specs: Vec<SeriesSpec> =
        fleet.series().iter().map(|(i, m)| SeriesSpec::lamppost(&fleet.lampposts[*i], *m)).collect();
    let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    if feeds {
        if !http(target) {
            return Err(SimError::Sink(format!(
                "feeds are posted over HTTP; {target:?} is not an http:// URL"
            )));
        }
        return run_feeds(target.trim_end_matches('/'), fleet, opts, stop);
    }
    let t = Instant::now();
    if http(target) {
        let base = format!("{}/sta/v1.1", target.trim_end_matches('/'));
        let ids = ensure_datastreams(&mut HttpDirectory::new(&base), &specs)?;
        tracing::info!(datastreams = ids.len(), "set up in {:.1?}", t.elapsed());
        run(fleet, &ids, &mut HttpSink::new(&base), opts, &stats, stop)?;
    } else if target.starts_with("mqtt://") || target.starts_with("tcp://") {
        let broker = crate::mqtt::BrokerUrl::parse(target).map_err(|e| SimError::Sink(e.to_string()))?;
        let base = format!("{}/sta/v1.1", api.trim_end_matches('/'));
        let ids = ensure_datastreams(&mut HttpDirectory::new(&base), &specs)?;
        tracing::info!(datastreams = ids.len(), "set up in {:.1?}", t.elapsed());
        let mut sink = MqttSink::connect(&broker, &format!("citydata-simulator-{}", opts.seed));
        run(fleet, &ids, &mut sink, opts, &stats, stop)?;
    } else {
        return Err(SimError::Sink(format!("{target:?} is neither http://HOST:PORT nor mqtt://HOST:PORT")));
    }
    Ok(format!(
        "{} readings generated, {} sent ({} late), {} lost on purpose, {} stored",
        stats.generated.load(Ordering::Relaxed),
        stats.sent.load(Ordering::Relaxed),
        stats.late.load(Ordering::Relaxed),
        stats.lost.load(Ordering::Relaxed),
        stats.stored.load(Ordering::Relaxed),
    ))
}

/// The EPD stations the feed mode reports, with the lamppost whose air stands for theirs.
const AQHI_STATIONS: [(&str, &str); 4] = [
    ("General Stations", "Central/Western"),
    ("General Stations", "Kwun Tong"),
    ("Roadside Stations", "Causeway Bay"),
    ("Roadside Stations", "Mong Kok"),
];

/// The three feed documents of `fleet` at `t`: the detector snapshot (the last two 30-second
/// periods), the lamppost weather (every device) and the past-24-hour AQHI.
pub fn feed_documents(fleet: &Fleet, model: Model, t: OffsetDateTime) -> (String, Json, String) {
    let p1 = t.replace_nanosecond(0).unwrap_or(t) - time::Duration::seconds(i64::from(t.second() % 30) + 60);
    let mut periods = Vec::new();
    for start in [p1, p1 + time::Duration::seconds(30)] {
        let mut detectors = Vec::new();
        for (i, l) in
            fleet.lampposts.iter().enumerate().filter(|(_, l)| l.measures.contains(&Measure::TrafficFlow))
        {
            let flow = model.value(i, Measure::TrafficFlow, start).as_i64().unwrap_or(0);
            let speed = model.value(i, Measure::TrafficSpeed, start).as_f64().unwrap_or(50.0);
            let lanes = ["Fast Lane", "Middle Lane", "Slow Lane"]
                .iter()
                .enumerate()
                .map(|(k, lane)| {
                    let share = [0.3, 0.35, 0.35][k];
                    let volume = ((flow as f64) / 2.0 * share).round() as i64;
                    let valid =
                        unit(mix(model.seed, &[0x7d, i as u64, k as u64, start.unix_timestamp() as u64]))
                            > 0.01;
                    feeds::TdLane {
                        lane_id: (*lane).to_owned(),
                        speed: (speed + [8.0, 0.0, -8.0][k]).max(3.0).round() as i64,
                        occupancy: (volume * 4).min(100),
                        volume,
                        valid,
                    }
                })
                .collect();
            detectors.push((format!("SLP{}", l.id), l.area.clone(), lanes));
        }
        periods.push((start, detectors));
    }
    let td = feeds::write_td(&periods);
    let ten = t.replace_nanosecond(0).unwrap_or(t)
        - time::Duration::seconds(i64::from(t.minute() % 10) * 60 + i64::from(t.second()));
    let hko: Vec<Json> = fleet
        .lampposts
        .iter()
        .enumerate()
        .filter(|(_, l)| l.measures.contains(&Measure::Temperature))
        .map(|(i, l)| {
            let rh = model.value(i, Measure::Humidity, ten).as_f64();
            let rh =
                rh.filter(|_| unit(mix(model.seed, &[0x4d, i as u64, ten.unix_timestamp() as u64])) > 0.02);
            feeds::write_hko(
                &l.id,
                "01",
                ten,
                &[("T0", model.value(i, Measure::Temperature, ten).as_f64()), ("RH", rh)],
            )
        })
        .collect();
    let hour = t.replace_nanosecond(0).unwrap_or(t)
        - time::Duration::seconds(i64::from(t.minute()) * 60 + i64::from(t.second()));
    let mut items = Vec::new();
    for (k, (kind, station)) in AQHI_STATIONS.iter().enumerate() {
        for back in 0..24 {
            let at = hour - time::Duration::hours(back);
            let v = model.value(k * 3, Measure::Aqhi, at).as_i64();
            let v = v.filter(|_| unit(mix(model.seed, &[0xa9, k as u64, at.unix_timestamp() as u64])) > 0.03);
            items.push((*kind, *station, at, v));
        }
    }
    (td, Json::Array(hko), feeds::write_aqhi(&items))
}

fn run_feeds(base: &str, fleet: &Fleet, opts: &RunOptions, stop: &AtomicBool) -> Result<String, SimError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let model = Model { seed: opts.seed };
    let started = Instant::now();
    let mut last: [Option<i64>; 3] = [None; 3];
    let (mut posted, mut stored, mut duplicates) = (0u64, 0u64, 0u64);
    loop {
        let now = OffsetDateTime::now_utc();
        let slots = [now.unix_timestamp() / 30, now.unix_timestamp() / 600, now.unix_timestamp() / 3600];
        if slots.iter().zip(&last).any(|(s, l)| Some(*s) != *l) {
            let (td, hko, aqhi) = feed_documents(fleet, model, now);
            let docs = [("td-detectors", td), ("hko-lamppost", hko.to_string()), ("aqhi", aqhi)];
            for (k, (kind, body)) in docs.into_iter().enumerate() {
                if Some(slots[k]) == last[k] {
                    continue;
                }
                last[k] = Some(slots[k]);
                let url = format!("{base}/api/v1/feeds/{kind}");
                let ctype = if kind == "hko-lamppost" { "application/json" } else { "application/xml" };
                let mut resp = agent
                    .post(&url)
                    .header("content-type", ctype)
                    .send(body.as_bytes())
                    .map_err(|e| SimError::Sink(format!("POST {url}: {e}")))?;
                let status = resp.status().as_u16();
                let answer: Json = resp.body_mut().read_json().unwrap_or_default();
                if status != 200 {
                    return Err(SimError::Sink(format!("POST {url}: {status} {answer}")));
                }
                posted += 1;
                stored += answer["stored"].as_u64().unwrap_or(0);
                duplicates += answer["duplicates"].as_u64().unwrap_or(0);
            }
        }
        if stop.load(Ordering::Relaxed) || opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(format!("{posted} feed documents posted: {stored} stored, {duplicates} duplicates dropped"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn fleet_is_deterministic_and_spread() {
        let a = Fleet::demo(40, 7);
        assert_eq!(a, Fleet::demo(40, 7));
        assert_ne!(a, Fleet::demo(40, 8));
        assert_eq!(a.lampposts.len(), 40);
        for l in &a.lampposts {
            assert!((114.1..114.3).contains(&l.lon) && (22.2..22.4).contains(&l.lat), "{l:?}");
            assert!(l.measures.contains(&Measure::TrafficFlow));
        }
        let all: std::collections::HashSet<Measure> = a.series().iter().map(|s| s.1).collect();
        assert_eq!(all.len(), Measure::ALL.len());
        let ids: std::collections::HashSet<&str> = a.lampposts.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids.len(), 40);
    }

    /// Means over many lampposts: rush hour is busier and slower than night; pollution follows
    /// traffic; afternoons are warmer and drier than dawn; values stay in physical ranges.
    #[test]
    fn model_has_diurnal_patterns_and_rush_hours() {
        let m = Model { seed: 1 };
        let mean = |measure: Measure, t: OffsetDateTime| {
            let v: Vec<f64> = (0..300).map(|i| m.value(i, measure, t).as_f64().unwrap()).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        // 2026-11-25 is a Wednesday; times in Hong Kong (UTC+8).
        let night = datetime!(2026-11-25 03:30 +8);
        let rush = datetime!(2026-11-25 08:30 +8);
        let evening = datetime!(2026-11-25 18:15 +8);
        let afternoon = datetime!(2026-11-25 14:30 +8);
        let dawn = datetime!(2026-11-25 05:30 +8);
        assert!(mean(Measure::TrafficFlow, rush) > 3.0 * mean(Measure::TrafficFlow, night));
        assert!(mean(Measure::TrafficFlow, evening) > 3.0 * mean(Measure::TrafficFlow, night));
        assert!(mean(Measure::TrafficSpeed, evening) < mean(Measure::TrafficSpeed, night) - 5.0);
        assert!(mean(Measure::No2, rush) > mean(Measure::No2, night) + 10.0);
        assert!(mean(Measure::Pm25, rush) > mean(Measure::Pm25, night));
        assert!(mean(Measure::Temperature, afternoon) > mean(Measure::Temperature, dawn) + 4.0);
        assert!(mean(Measure::Humidity, afternoon) < mean(Measure::Humidity, dawn) - 10.0);
        // Weekend mornings are quieter than weekday mornings.
        let saturday = datetime!(2026-11-28 08:30 +8);
        assert!(mean(Measure::TrafficFlow, saturday) < 0.8 * mean(Measure::TrafficFlow, rush));
        for i in 0..200 {
            for h in 0..24 {
                let t = datetime!(2026-11-25 00:00 +8) + time::Duration::hours(h);
                let a = m.value(i, Measure::Aqhi, t).as_i64().unwrap();
                assert!((1..=11).contains(&a));
                let hum = m.value(i, Measure::Humidity, t).as_f64().unwrap();
                assert!((35.0..=100.0).contains(&hum));
                assert!(m.value(i, Measure::TrafficFlow, t).as_i64().unwrap() >= 0);
            }
        }
        assert_eq!(m.value(3, Measure::No2, rush), m.value(3, Measure::No2, rush), "deterministic");
    }

    #[test]
    fn fates_are_mostly_on_time() {
        let m = Model { seed: 5 };
        let t0 = datetime!(2026-11-25 00:00 UTC);
        let fates: Vec<Fate> = (0..20_000)
            .map(|i| m.fate(i % 50, Measure::Pm25, t0 + time::Duration::seconds(i as i64 * 7)))
            .collect();
        let lost = fates.iter().filter(|f| **f == Fate::Lost).count() as f64 / fates.len() as f64;
        let late = fates.iter().filter(|f| matches!(f, Fate::Late(_))).count() as f64 / fates.len() as f64;
        assert!((0.015..0.06).contains(&lost), "lost {lost}");
        assert!((0.02..0.045).contains(&late), "late {late}");
        for f in fates {
            if let Fate::Late(d) = f {
                assert!((60..300).contains(&d.as_secs()));
            }
        }
    }

    #[test]
    fn aqhi_bands() {
        assert_eq!(aqhi(0.0, 0.0, 0.0), 1);
        assert_eq!(aqhi(40.0, 20.0, 40.0), 3);
        assert_eq!(aqhi(10.0, 5.0, 10.0), 1);
        assert!(aqhi(150.0, 60.0, 120.0) >= 5);
        assert_eq!(aqhi(400.0, 300.0, 300.0), 11);
    }

    #[test]
    fn data_array_groups_by_datastream() {
        let t = datetime!(2026-01-01 00:00 UTC);
        let r = |ds: i64, v: i64| NewObservation {
            datastream: ds,
            phenomenon_time: t,
            phenomenon_end: None,
            result: v.into(),
            result_time: None,
            parameters: None,
            feature_of_interest: None,
        };
        let body = create_observations_body(&[r(1, 10), r(2, 20), r(1, 11)]);
        assert_eq!(body[0]["Datastream"]["@iot.id"], 1);
        assert_eq!(
            body[0]["dataArray"],
            json!([["2026-01-01T00:00:00Z", 10, null], ["2026-01-01T00:00:00Z", 11, null]])
        );
        assert_eq!(body[1]["dataArray@iot.count"], 1);
    }

    /// In process: the directory creates each lamppost's Thing and Datastreams once (a second call
    /// finds them), and a short run stores readings through the real group commit.
    #[test]
    fn store_directory_and_a_run_into_the_ingest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let fleet = Fleet::demo(6, 3);
        let specs: Vec<SeriesSpec> =
            fleet.series().iter().map(|(i, m)| SeriesSpec::lamppost(&fleet.lampposts[*i], *m)).collect();
        let ids = ensure_datastreams(&mut StoreDirectory { store: &store }, &specs).unwrap();
        assert_eq!(ids.len(), specs.len());
        let again = ensure_datastreams(&mut StoreDirectory { store: &store }, &specs).unwrap();
        assert_eq!(ids, again);
        let things = store.sta_query(&EntityQuery::all(EntitySet::Thing)).unwrap().entities;
        assert_eq!(things.len(), 6);
        // Each lamppost says which sensor network it belongs to (the daily open data is per network).
        for t in &things {
            match t.get("properties") {
                Some(SVal::Json(p)) => assert_eq!(p["network"], LAMPPOST_NETWORK),
                other => panic!("a lamppost without properties: {other:?}"),
            }
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let ingest: Arc<dyn Ingest> =
            Arc::new(rt.block_on(async { crate::GroupCommit::start(&store) }).unwrap());
        let mut sink = IngestSink { ingest, runtime: rt.handle().clone() };
        let stats = RunStats::default();
        let opts = RunOptions {
            rate: 400.0,
            duration: Some(Duration::from_millis(600)),
            seed: 1,
            tick: Duration::from_millis(50),
        };
        run(&fleet, &ids, &mut sink, &opts, &stats, &AtomicBool::new(false)).unwrap();
        let generated = stats.generated.load(Ordering::Relaxed);
        assert!((150..=300).contains(&generated), "{generated}");
        let stored = stats.stored.load(Ordering::Relaxed);
        assert_eq!(stored, stats.sent.load(Ordering::Relaxed));
        assert_eq!(
            stored + stats.lost.load(Ordering::Relaxed),
            generated,
            "late ones are flushed at the end"
        );
        let mut q = EntityQuery::all(EntitySet::Observation);
        q.count = true;
        q.top = 1;
        assert_eq!(store.sta_query(&q).unwrap().count, Some(stored));
    }
}
