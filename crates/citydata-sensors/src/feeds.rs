//! The government's real-time feeds, read into readings (and written, for the simulator).
//!
//! Three shapes are accepted, as the departments publish them:
//!
//! - **`hko-lamppost`**: the Observatory's smart-lamppost weather JSON, one object per device (or an
//!   array of them): `{"PI":"DF1020","DI":"04","BODY":{"HKO":{"TS":"20260730130018","T0":"28.0",
//!   "RH":"76.9", ...}}}`. Values are strings; `TS` is the measuring time as `YYYYMMDDhhmmss` in Hong
//!   Kong time (UTC+8, no daylight saving); `VN` (version) and `TP` (transmission time, kept as the
//!   result time) are not readings; every other member of `HKO` is one (`T0` air temperature, `RH`
//!   relative humidity, `W0` 10-minute wind speed, `WD` wind direction, ...). An empty value is a
//!   missing reading and is skipped. Key: `hko/{PI}/{DI}/{element}`.
//! - **`td-detectors`**: the Transport Department's 30-second traffic detector XML
//!   (`raw_speed_volume_list` / `date`, `periods/period` with `period_from`, `period_to` (Hong Kong
//!   time), `detectors/detector` with `detector_id`, `direction`, `lanes/lane` with `lane_id`,
//!   `speed`, `occupancy`, `volume`, optional `s.d.`, and `valid` `Y`/`N`). One reading per lane and
//!   measure, over the period's interval; lanes marked `valid` `N` are skipped. Consecutive
//!   snapshots overlap (each holds the last periods), so the same reading comes more than once: the
//!   ingest's duplicate rule (same datastream and phenomenon time) keeps one. Key:
//!   `td/{detector_id}/{lane_id}/{speed|occupancy|volume}`.
//! - **`aqhi`**: the Environmental Protection Department's past-24-hour AQHI XML
//!   (`AQHI24HrReport` / `item` with `type`, `StationName`, `DateTime` as RFC 2822 with `+0800`,
//!   `aqhi`). Values are `1` to `10`, `10+` (stored as 11, the open top band, with the parameter
//!   `"aqhi": "10+"`), or `-` for missing (skipped). Key: `aqhi/{StationName}`.
//!
//! **Invariants:** input is bounded ([`MAX_FEED_BYTES`], [`MAX_READINGS`]); XML with a DOCTYPE is
//! refused and entities other than the five predefined ones are never expanded; an error names the
//! feed, the record and what was wrong; no input panics.

use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;
use time::format_description::well_known::Rfc2822;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::NewObservation;

/// The largest feed document accepted, in bytes.
pub const MAX_FEED_BYTES: usize = 32 * 1024 * 1024;
/// The most readings one document may yield.
pub const MAX_READINGS: usize = 500_000;

/// A feed document that cannot be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{feed}: {what}")]
pub struct FeedError {
    /// The feed's kind.
    pub feed: &'static str,
    /// What was wrong, and where.
    pub what: String,
}

/// The feeds citydata reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// The Observatory's smart-lamppost weather JSON.
    HkoLamppost,
    /// The Transport Department's 30-second traffic detector XML.
    TdDetectors,
    /// The Environmental Protection Department's hourly AQHI XML.
    Aqhi,
}

impl FeedKind {
    /// Every kind.
    pub const ALL: [FeedKind; 3] = [FeedKind::HkoLamppost, FeedKind::TdDetectors, FeedKind::Aqhi];

    /// The kind's name in URLs: `hko-lamppost`, `td-detectors`, `aqhi`.
    pub fn name(self) -> &'static str {
        match self {
            FeedKind::HkoLamppost => "hko-lamppost",
            FeedKind::TdDetectors => "td-detectors",
            FeedKind::Aqhi => "aqhi",
        }
    }

    /// The kind of a name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One reading of a feed, keyed by the station, device and measure it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedReading {
    /// Which series it belongs to (see the module's documentation for each feed's key).
    pub key: String,
    /// When it was observed.
    pub phenomenon_time: OffsetDateTime,
    /// End of the observed interval, if it is one.
    pub phenomenon_end: Option<OffsetDateTime>,
    /// When the result was produced, when the feed says.
    pub result_time: Option<OffsetDateTime>,
    /// The value.
    pub result: serde_json::Value,
    /// Extra facts (for example the AQHI band text, the detector's direction).
    pub parameters: Option<serde_json::Map<String, serde_json::Value>>,
}

impl FeedReading {
    /// The reading as an observation of `datastream`.
    pub fn into_observation(self, datastream: i64) -> NewObservation {
        NewObservation {
            datastream,
            phenomenon_time: self.phenomenon_time,
            phenomenon_end: self.phenomenon_end,
            result: self.result,
            result_time: self.result_time,
            parameters: self.parameters,
            feature_of_interest: None,
        }
    }
}

/// What a document held: its readings, and how many values it skipped (missing or invalid).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedBatch {
    /// The readings.
    pub readings: Vec<FeedReading>,
    /// Values marked missing (`-`, empty) or invalid (`valid` `N`), not turned into readings.
    pub skipped: usize,
}

/// Reads a feed document.
///
/// # Errors
/// When the document is too large or not of the feed's shape, saying where.
pub fn parse(kind: FeedKind, bytes: &[u8]) -> Result<FeedBatch, FeedError> {
    let feed = kind.name();
    if bytes.len() > MAX_FEED_BYTES {
        return Err(FeedError {
            feed,
            what: format!("{} bytes, more than the {MAX_FEED_BYTES} allowed", bytes.len()),
        });
    }
    let out = match kind {
        FeedKind::HkoLamppost => parse_hko(bytes),
        FeedKind::TdDetectors => parse_td(bytes),
        FeedKind::Aqhi => parse_aqhi(bytes),
    };
    out.map_err(|what| FeedError { feed, what })
}

fn hk_local(date_time: PrimitiveDateTime) -> OffsetDateTime {
    date_time.assume_offset(offset!(+8))
}

fn parse_hko(bytes: &[u8]) -> Result<FeedBatch, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let devices = match v {
        serde_json::Value::Array(a) => a,
        o @ serde_json::Value::Object(_) => vec![o],
        _ => return Err("expected an object (one device) or an array of them".to_owned()),
    };
    let ts_format = format_description!("[year][month][day][hour][minute][second]");
    let mut batch = FeedBatch::default();
    for (i, d) in devices.iter().enumerate() {
        let at = |what: &str| format!("device {}: {what}", i + 1);
        let text = |key: &str| d.get(key).and_then(serde_json::Value::as_str);
        let pi =
            text("PI").filter(|s| !s.is_empty()).ok_or_else(|| at("\"PI\" (lamppost number) is missing"))?;
        let di = text("DI").unwrap_or("01");
        let hko = d
            .get("BODY")
            .and_then(|b| b.get("HKO"))
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| at("\"BODY\".\"HKO\" is missing"))?;
        let stamp = |key: &str| -> Result<Option<OffsetDateTime>, String> {
            match hko.get(key).and_then(serde_json::Value::as_str) {
                None | Some("") => Ok(None),
                Some(s) => PrimitiveDateTime::parse(s, ts_format)
                    .map(|t| Some(hk_local(t)))
                    .map_err(|_| at(&format!("{key} {s:?} is not YYYYMMDDhhmmss"))),
            }
        };
        let ts = stamp("TS")?.ok_or_else(|| at("\"TS\" (measuring time) is missing"))?;
        let tp = stamp("TP")?;
        for (element, value) in hko {
            if matches!(element.as_str(), "TS" | "TP" | "VN") {
                continue;
            }
            let s = match value {
                serde_json::Value::String(s) => s.trim(),
                serde_json::Value::Null => "",
                _ => return Err(at(&format!("{element} must be a string, as the feed sends values"))),
            };
            if s.is_empty() || s == "-" {
                batch.skipped += 1;
                continue;
            }
            let n: f64 = s.parse().map_err(|_| at(&format!("{element} {s:?} is not a number")))?;
            if !n.is_finite() {
                return Err(at(&format!("{element} {s:?} is not a finite number")));
            }
            push(
                &mut batch,
                FeedReading {
                    key: format!("hko/{pi}/{di}/{element}"),
                    phenomenon_time: ts,
                    phenomenon_end: None,
                    result_time: tp,
                    result: serde_json::json!(n),
                    parameters: None,
                },
            )?;
        }
    }
    Ok(batch)
}

fn push(batch: &mut FeedBatch, r: FeedReading) -> Result<(), String> {
    if batch.readings.len() >= MAX_READINGS {
        return Err(format!("more than {MAX_READINGS} readings in one document"));
    }
    batch.readings.push(r);
    Ok(())
}

/// A streaming walk over an XML document: calls `on_end(path, text)` at each element's end, with
/// the element's own text.
fn walk_xml(
    bytes: &[u8],
    mut on_end: impl FnMut(&[String], &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        let pos = reader.buffer_position();
        match reader.read_event_into(&mut buf) {
            Ok(XmlEvent::Start(e)) => {
                if path.len() >= 32 {
                    return Err(format!("elements nested deeper than 32 at byte {pos}"));
                }
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Ok(XmlEvent::Empty(e)) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                on_end(&path, "")?;
                path.pop();
            }
            Ok(XmlEvent::Text(t)) => {
                let s = t.decode().map_err(|e| format!("bad text at byte {pos}: {e}"))?;
                if text.len() + s.len() > 4096 {
                    return Err(format!("a text longer than 4096 bytes at byte {pos}"));
                }
                text.push_str(&s);
            }
            Ok(XmlEvent::GeneralRef(r)) => {
                let name = String::from_utf8_lossy(&r);
                let c = match name.as_ref() {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    other => return Err(format!("the entity &{other}; at byte {pos} is not allowed")),
                };
                text.push(c);
            }
            Ok(XmlEvent::CData(t)) => text.push_str(&String::from_utf8_lossy(&t)),
            Ok(XmlEvent::End(_)) => {
                on_end(&path, text.trim())?;
                path.pop();
                text.clear();
            }
            Ok(XmlEvent::DocType(_)) => return Err("a DOCTYPE is not allowed".to_owned()),
            Ok(XmlEvent::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("not well-formed XML at byte {pos}: {e}")),
        }
        buf.clear();
    }
    if !path.is_empty() {
        return Err(format!("the document ends inside <{}>", path.join("/")));
    }
    Ok(())
}

fn parse_td(bytes: &[u8]) -> Result<FeedBatch, String> {
    let date_format = format_description!("[year]-[month]-[day]");
    let time_format = format_description!("[hour]:[minute]:[second]");
    let mut batch = FeedBatch::default();
    let mut date: Option<time::Date> = None;
    let (mut from, mut to): (Option<OffsetDateTime>, Option<OffsetDateTime>) = (None, None);
    // Periods come in time order under one <date>; one that starts earlier than the one before
    // has crossed midnight.
    let mut day_shift = 0i64;
    let mut detector = String::new();
    let mut direction = String::new();
    let mut lane: Vec<(String, String)> = Vec::new();
    let mut lanes_seen = 0usize;
    walk_xml(bytes, |path, text| {
        let name = path.last().map(String::as_str).unwrap_or("");
        let in_lane = path.len() >= 2 && path[path.len() - 2] == "lane";
        match name {
            "date" if path.len() == 2 => {
                date = Some(
                    time::Date::parse(text, date_format)
                        .map_err(|_| format!("<date> {text:?} is not YYYY-MM-DD"))?,
                );
            }
            "period_from" | "period_to" => {
                let d = date.ok_or("a period comes before <date>")?;
                let t = time::Time::parse(text, time_format)
                    .map_err(|_| format!("<{name}> {text:?} is not hh:mm:ss"))?;
                let mut at = hk_local(PrimitiveDateTime::new(d, t)) + time::Duration::days(day_shift);
                if name == "period_from" {
                    if from.is_some_and(|f| at < f) {
                        day_shift += 1;
                        at += time::Duration::days(1);
                    }
                    (from, to) = (Some(at), None);
                } else {
                    // A period that ends at 00:00:00 ends on the next day.
                    to = Some(if from.is_some_and(|f| at <= f) { at + time::Duration::days(1) } else { at });
                }
            }
            "detector_id" => {
                detector = text.to_owned();
                direction.clear();
            }
            "direction" => direction = text.to_owned(),
            _ if in_lane => lane.push((name.to_owned(), text.to_owned())),
            "lane" => {
                lanes_seen += 1;
                let field = |k: &str| lane.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                let where_ = || format!("lane {lanes_seen} (detector {detector:?})");
                let start = from.ok_or_else(|| format!("{}: outside a period", where_()))?;
                if detector.is_empty() {
                    return Err(format!("{}: no <detector_id>", where_()));
                }
                let lane_id = field("lane_id")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| format!("{}: no <lane_id>", where_()))?;
                match field("valid") {
                    Some("Y") => {}
                    Some("N") => {
                        batch.skipped += 3;
                        lane.clear();
                        return Ok(());
                    }
                    other => return Err(format!("{}: <valid> must be Y or N, not {other:?}", where_())),
                }
                let mut params = serde_json::Map::new();
                if !direction.is_empty() {
                    params.insert("direction".into(), direction.clone().into());
                }
                for measure in ["speed", "occupancy", "volume"] {
                    let s = field(measure).ok_or_else(|| format!("{}: no <{measure}>", where_()))?;
                    if s.is_empty() || s == "-" {
                        batch.skipped += 1;
                        continue;
                    }
                    let n: i64 = s
                        .parse()
                        .map_err(|_| format!("{}: <{measure}> {s:?} is not a whole number", where_()))?;
                    push(
                        &mut batch,
                        FeedReading {
                            key: format!("td/{detector}/{lane_id}/{measure}"),
                            phenomenon_time: start,
                            phenomenon_end: to,
                            result_time: None,
                            result: n.into(),
                            parameters: (!params.is_empty()).then(|| params.clone()),
                        },
                    )?;
                }
                lane.clear();
            }
            _ => {}
        }
        Ok(())
    })?;
    if date.is_none() {
        return Err("no <date>: not a raw_speed_volume_list document".to_owned());
    }
    Ok(batch)
}

fn parse_aqhi(bytes: &[u8]) -> Result<FeedBatch, String> {
    let mut batch = FeedBatch::default();
    let mut item: Vec<(String, String)> = Vec::new();
    let mut items = 0usize;
    let mut root_ok = false;
    walk_xml(bytes, |path, text| {
        let name = path.last().map(String::as_str).unwrap_or("");
        if path.len() == 1 {
            root_ok = true;
        }
        if path.len() >= 2 && path[path.len() - 2] == "item" {
            item.push((name.to_owned(), text.to_owned()));
            return Ok(());
        }
        if name != "item" {
            return Ok(());
        }
        items += 1;
        let field = |k: &str| item.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let station = field("StationName")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("item {items}: no <StationName>"))?;
        let when = field("DateTime").ok_or_else(|| format!("item {items}: no <DateTime>"))?;
        let at = OffsetDateTime::parse(when, &Rfc2822)
            .map_err(|_| format!("item {items}: <DateTime> {when:?} is not an RFC 2822 date such as \"Mon, 05 Oct 2026 14:00:00 +0800\""))?;
        let value = field("aqhi").ok_or_else(|| format!("item {items}: no <aqhi>"))?;
        let mut params = serde_json::Map::new();
        if let Some(t) = field("type").filter(|t| !t.is_empty()) {
            params.insert("stationType".into(), t.into());
        }
        let n: i64 = match value {
            "-" | "" => {
                batch.skipped += 1;
                item.clear();
                return Ok(());
            }
            "10+" => {
                params.insert("aqhi".into(), "10+".into());
                11
            }
            s => match s.parse::<i64>() {
                Ok(n) if (1..=10).contains(&n) => n,
                _ => return Err(format!("item {items}: <aqhi> {s:?} is not 1 to 10, 10+ or -")),
            },
        };
        push(
            &mut batch,
            FeedReading {
                key: format!("aqhi/{station}"),
                phenomenon_time: at,
                phenomenon_end: None,
                result_time: None,
                result: n.into(),
                parameters: (!params.is_empty()).then_some(params),
            },
        )?;
        item.clear();
        Ok(())
    })?;
    if !root_ok {
        return Err("empty document".to_owned());
    }
    Ok(batch)
}

// ---- Writers: the same shapes, for the simulator -------------------------------------------

fn hk_text(t: OffsetDateTime, fmt: &[time::format_description::FormatItem<'_>]) -> String {
    t.to_offset(offset!(+8)).format(fmt).unwrap_or_default()
}

/// One smart-lamppost device's weather JSON: `elements` are `(code, value)` such as `("T0", 28.0)`;
/// `None` writes the empty string of a missing value.
pub fn write_hko(
    pi: &str,
    di: &str,
    at: OffsetDateTime,
    elements: &[(&str, Option<f64>)],
) -> serde_json::Value {
    let stamp = hk_text(at, format_description!("[year][month][day][hour][minute][second]"));
    let mut hko = serde_json::Map::new();
    for (code, v) in elements {
        hko.insert((*code).into(), v.map(|v| format!("{v:.1}")).unwrap_or_default().into());
    }
    hko.insert("TS".into(), stamp.clone().into());
    hko.insert("VN".into(), "1.0".into());
    hko.insert("TP".into(), stamp.into());
    serde_json::json!({"BD": "00", "DI": di, "GI": "00", "PI": pi, "TS": "0", "BODY": {"HKO": hko}})
}

/// One lane of one detector in one period of a detector snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct TdLane {
    /// The lane, such as `Fast Lane`.
    pub lane_id: String,
    /// Speed, km/h.
    pub speed: i64,
    /// Occupancy, percent.
    pub occupancy: i64,
    /// Vehicles in the period.
    pub volume: i64,
    /// Whether the detector vouches for the values.
    pub valid: bool,
}

/// One detector in one period: its id, its direction and its lanes.
pub type TdDetector = (String, String, Vec<TdLane>);

/// A detector snapshot: `periods` are `(start, detectors)`, each period 30 seconds, all on the date
/// of the first (Hong Kong time).
pub fn write_td(periods: &[(OffsetDateTime, Vec<TdDetector>)]) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let hms = format_description!("[hour]:[minute]:[second]");
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<raw_speed_volume_list>");
    if let Some((first, _)) = periods.first() {
        x += &format!("<date>{}</date>", hk_text(*first, format_description!("[year]-[month]-[day]")));
    }
    x += "<periods>";
    for (start, detectors) in periods {
        x += &format!(
            "<period><period_from>{}</period_from><period_to>{}</period_to><detectors>",
            hk_text(*start, hms),
            hk_text(*start + time::Duration::seconds(30), hms)
        );
        for (id, dir, lanes) in detectors {
            x += &format!(
                "<detector><detector_id>{}</detector_id><direction>{}</direction><lanes>",
                esc(id),
                esc(dir)
            );
            for l in lanes {
                x += &format!(
                    "<lane><lane_id>{}</lane_id><speed>{}</speed><occupancy>{}</occupancy><volume>{}</volume><s.d.>0</s.d.><valid>{}</valid></lane>",
                    esc(&l.lane_id),
                    l.speed,
                    l.occupancy,
                    l.volume,
                    if l.valid { "Y" } else { "N" }
                );
            }
            x += "</lanes></detector>";
        }
        x += "</detectors></period>";
    }
    x += "</periods></raw_speed_volume_list>\n";
    x
}

/// A past-24-hour AQHI document: `(station type, station, hour, value)` where the value is `None`
/// for missing and 11 or more for `10+`.
pub fn write_aqhi(items: &[(&str, &str, OffsetDateTime, Option<i64>)]) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AQHI24HrReport>");
    for (kind, station, at, v) in items {
        let value = match v {
            None => "-".to_owned(),
            Some(n) if *n > 10 => "10+".to_owned(),
            Some(n) => n.to_string(),
        };
        let when = at.to_offset(offset!(+8)).format(&Rfc2822).unwrap_or_default();
        x += &format!(
            "<item><type>{}</type><StationName>{}</StationName><DateTime>{when}</DateTime><aqhi>{value}</aqhi></item>",
            esc(kind),
            esc(station)
        );
    }
    x += "</AQHI24HrReport>\n";
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hko_lamppost_json() {
        let doc = br#"{"BD":"00","DI":"04","GI":"00","PI":"DF1020","TS":"0",
            "BODY":{"HKO":{"RH":"76.9","T0":"28.0","W0":"","TS":"20260730130018","VN":"1.0","TP":"20260730130020"}}}"#;
        let b = parse(FeedKind::HkoLamppost, doc).unwrap();
        assert_eq!(b.skipped, 1);
        let keys: Vec<&str> = b.readings.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["hko/DF1020/04/RH", "hko/DF1020/04/T0"]);
        assert_eq!(b.readings[0].phenomenon_time, datetime!(2026-07-30 05:00:18 UTC));
        assert_eq!(b.readings[0].result_time, Some(datetime!(2026-07-30 05:00:20 UTC)));
        assert_eq!(b.readings[1].result, serde_json::json!(28.0));
        // Round trip through the writer, as an array of devices.
        let w = serde_json::json!([write_hko(
            "GF3637",
            "01",
            datetime!(2026-01-02 03:10 UTC),
            &[("T0", Some(17.25)), ("RH", None)]
        )]);
        let b = parse(FeedKind::HkoLamppost, w.to_string().as_bytes()).unwrap();
        assert_eq!((b.readings.len(), b.skipped), (1, 1));
        assert_eq!(b.readings[0].key, "hko/GF3637/01/T0");
        assert_eq!(b.readings[0].phenomenon_time, datetime!(2026-01-02 03:10 UTC));
        let bad: [(&[u8], &str); 6] = [
            (b"{", "not JSON"),
            (b"3", "expected an object"),
            (br#"{"BODY":{"HKO":{}}}"#, "device 1: \"PI\""),
            (br#"{"PI":"A","BODY":{"HKO":{"T0":"1"}}}"#, "\"TS\" (measuring time) is missing"),
            (br#"{"PI":"A","BODY":{"HKO":{"TS":"2026-01-01","T0":"1"}}}"#, "is not YYYYMMDDhhmmss"),
            (
                br#"{"PI":"A","BODY":{"HKO":{"TS":"20260101000000","T0":"warm"}}}"#,
                "T0 \"warm\" is not a number",
            ),
        ];
        for (doc, says) in bad {
            let e = parse(FeedKind::HkoLamppost, doc).unwrap_err().to_string();
            assert!(e.starts_with("hko-lamppost: ") && e.contains(says), "{e}");
        }
    }

    fn lane(id: &str, speed: i64, valid: bool) -> TdLane {
        TdLane { lane_id: id.into(), speed, occupancy: 7, volume: 3, valid }
    }

    #[test]
    fn td_detector_xml() {
        let t0 = datetime!(2026-03-01 15:59:30 UTC); // 23:59:30 in Hong Kong
        let doc = write_td(&[
            (
                t0,
                vec![(
                    "AID01101".into(),
                    "South East".into(),
                    vec![lane("Fast Lane", 75, true), lane("Slow Lane", 0, false)],
                )],
            ),
            (
                t0 + time::Duration::seconds(30),
                vec![("AID01101".into(), "South East".into(), vec![lane("Fast Lane", 71, true)])],
            ),
        ]);
        let b = parse(FeedKind::TdDetectors, doc.as_bytes()).unwrap();
        assert_eq!(b.skipped, 3);
        assert_eq!(b.readings.len(), 6);
        let r = &b.readings[0];
        assert_eq!(r.key, "td/AID01101/Fast Lane/speed");
        assert_eq!(r.result, serde_json::json!(75));
        assert_eq!(r.phenomenon_time, t0);
        assert_eq!(r.phenomenon_end, Some(t0 + time::Duration::seconds(30)));
        assert_eq!(r.parameters.as_ref().unwrap()["direction"], "South East");
        // The second period starts at 00:00:00 on the next day in Hong Kong, under the snapshot's
        // one date: the reader moves it to the next day.
        assert_eq!(b.readings[3].key, "td/AID01101/Fast Lane/speed");
        assert_eq!(b.readings[3].phenomenon_time, t0 + time::Duration::seconds(30));
        assert_eq!(b.readings[3].phenomenon_end, Some(t0 + time::Duration::seconds(60)));
        assert_eq!(r.phenomenon_end, Some(t0 + time::Duration::seconds(30)), "00:00:00 ends on the next day");
        assert_eq!(b.readings[3].result, serde_json::json!(71));
        let bad: [(&str, &str); 6] = [
            ("<raw_speed_volume_list></raw_speed_volume_list>", "no <date>"),
            ("<raw_speed_volume_list><date>2026-13-01</date></raw_speed_volume_list>", "not YYYY-MM-DD"),
            ("<raw_speed_volume_list><date>2026-01-01", "ends inside"),
            ("<!DOCTYPE x [<!ENTITY a 'b'>]><raw_speed_volume_list/>", "DOCTYPE"),
            (
                "<raw_speed_volume_list><date>2026-01-01</date><periods><period><period_from>00:00:00</period_from><detectors><detector><detector_id>A</detector_id><lanes><lane><lane_id>L</lane_id><speed>fast</speed><occupancy>1</occupancy><volume>1</volume><valid>Y</valid></lane></lanes></detector></detectors></period></periods></raw_speed_volume_list>",
                "<speed> \"fast\" is not a whole number",
            ),
            (
                "<raw_speed_volume_list><date>2026-01-01</date><periods><period><period_from>00:00:00</period_from><detectors><detector><detector_id>A</detector_id><lanes><lane><lane_id>L</lane_id><speed>1</speed><occupancy>1</occupancy><volume>1</volume><valid>maybe</valid></lane></lanes></detector></detectors></period></periods></raw_speed_volume_list>",
                "<valid> must be Y or N",
            ),
        ];
        for (doc, says) in bad {
            let e = parse(FeedKind::TdDetectors, doc.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with("td-detectors: ") && e.contains(says), "{e}");
        }
        let deep = "<a>".repeat(40);
        assert!(parse(FeedKind::TdDetectors, deep.as_bytes()).unwrap_err().to_string().contains("deeper"));
    }

    #[test]
    fn aqhi_xml() {
        let h = datetime!(2026-10-05 06:00 UTC);
        let doc = write_aqhi(&[
            ("General Stations", "Central/Western", h, Some(4)),
            ("Roadside Stations", "Causeway Bay", h, Some(12)),
            ("General Stations", "Tap Mun", h, None),
        ]);
        assert!(doc.contains("<DateTime>Mon, 05 Oct 2026 14:00:00 +0800</DateTime>"), "{doc}");
        assert!(doc.contains("<aqhi>10+</aqhi>") && doc.contains("<aqhi>-</aqhi>"));
        let b = parse(FeedKind::Aqhi, doc.as_bytes()).unwrap();
        assert_eq!(b.skipped, 1);
        assert_eq!(b.readings.len(), 2);
        assert_eq!(b.readings[0].key, "aqhi/Central/Western");
        assert_eq!(b.readings[0].phenomenon_time, h);
        assert_eq!(b.readings[0].result, serde_json::json!(4));
        assert_eq!(b.readings[1].result, serde_json::json!(11));
        assert_eq!(b.readings[1].parameters.as_ref().unwrap()["aqhi"], "10+");
        for (v, says) in [("0", "is not 1 to 10"), ("11", "is not 1 to 10"), ("x", "is not 1 to 10")] {
            let doc = format!(
                "<AQHI24HrReport><item><StationName>A</StationName><DateTime>Mon, 05 Oct 2026 14:00:00 +0800</DateTime><aqhi>{v}</aqhi></item></AQHI24HrReport>"
            );
            assert!(parse(FeedKind::Aqhi, doc.as_bytes()).unwrap_err().to_string().contains(says));
        }
        let doc = "<AQHI24HrReport><item><StationName>A</StationName><DateTime>2026-10-05 14:00</DateTime><aqhi>1</aqhi></item></AQHI24HrReport>";
        assert!(parse(FeedKind::Aqhi, doc.as_bytes()).unwrap_err().to_string().contains("RFC 2822"));
        let doc = "<AQHI24HrReport><item><StationName>&foo;</StationName></item></AQHI24HrReport>";
        assert!(parse(FeedKind::Aqhi, doc.as_bytes()).unwrap_err().to_string().contains("&foo;"));
        assert!(parse(FeedKind::Aqhi, b"").unwrap_err().to_string().contains("empty"));
        let big = vec![b' '; MAX_FEED_BYTES + 1];
        assert!(parse(FeedKind::Aqhi, &big).unwrap_err().to_string().contains("more than"));
    }

    #[test]
    fn kinds() {
        for k in FeedKind::ALL {
            assert_eq!(FeedKind::parse(k.name()), Some(k));
        }
        assert_eq!(FeedKind::parse("rss"), None);
    }
}
