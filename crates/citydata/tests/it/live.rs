//! The live half of the sensors, end to end with the real binary: the SSE stream read by a real
//! HTTP client (resume with `Last-Event-ID`), the government feeds posted in their own shapes, and
//! the MQTT bridge against a real mosquitto that the test restarts mid-stream.

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Server;
use crate::mqtt::{Broker, Device};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn post(server: &Server, path: &str, body: &str) -> (u16, Value) {
    let mut resp = agent().post(&format!("{}{path}", server.url)).send(body.as_bytes()).expect("POST");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_json().unwrap_or(Value::Null))
}

/// A past-24-hour AQHI document with station `A` for hours `hours` (ids of the hour after
/// 2026-10-05 00:00 Hong Kong time) and `B` for the first of them.
fn aqhi_doc(hours: std::ops::Range<u32>) -> String {
    let mut x = String::from("<?xml version=\"1.0\"?><AQHI24HrReport>");
    for (i, h) in hours.enumerate() {
        for station in ["A", "B"] {
            if station == "B" && i > 0 {
                continue;
            }
            x += &format!(
                "<item><type>General Stations</type><StationName>{station}</StationName>\
                 <DateTime>Mon, 05 Oct 2026 {h:02}:00:00 +0800</DateTime><aqhi>{}</aqhi></item>",
                if h % 5 == 4 { "10+".to_owned() } else { (h % 10 + 1).to_string() }
            );
        }
    }
    x + "</AQHI24HrReport>"
}

/// One SSE event: its id (if any), its kind and its data.
#[derive(Debug)]
struct Sse {
    id: Option<i64>,
    event: String,
    data: Value,
}

/// An open SSE stream, read with ureq (a real HTTP client) line by line.
struct Stream {
    lines: std::io::Lines<BufReader<Box<dyn Read + Send>>>,
}

impl Stream {
    fn open(server: &Server, query: &str, last: Option<i64>) -> Stream {
        let mut req = agent().get(&format!("{}/api/v1/live?{query}", server.url));
        if let Some(l) = last {
            req = req.header("Last-Event-ID", &l.to_string());
        }
        let resp = req.call().expect("GET /api/v1/live");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let reader: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
        Stream { lines: BufReader::new(reader).lines() }
    }

    /// The next event that has data (comments and keep-alives skipped).
    fn next(&mut self) -> Sse {
        let (mut id, mut event, mut data) = (None, String::new(), String::new());
        loop {
            let line = self.lines.next().expect("the stream ended").expect("read");
            if line.is_empty() {
                if !data.is_empty() {
                    return Sse { id, event, data: serde_json::from_str(&data).expect("JSON data") };
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().expect("numeric id"));
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
    }
}

#[test]
fn sse_streams_new_observations_and_resumes_with_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-demo"]);
    // Hours 1-3 of station A (datastream 1, the first key) and hour 1 of B (datastream 2).
    let (status, body) = post(&server, "/api/v1/feeds/aqhi", &aqhi_doc(1..4));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["stored"].as_u64(), body["datastreams"].as_u64()), (Some(4), Some(2)));

    // From the start: what was stored before the stream opened, for datastream 1 only, in order.
    let mut s = Stream::open(&server, "datastreams=1", Some(0));
    let first: Vec<Sse> = (0..3).map(|_| s.next()).collect();
    for e in &first {
        assert_eq!(e.event, "observation");
        assert_eq!(e.data["Datastream@iot.id"], 1);
        assert_eq!(e.id, e.data["@iot.id"].as_i64());
    }
    assert_eq!(first[0].data["phenomenonTime"], "2026-10-04T17:00:00Z");
    assert_eq!(first[2].data["result"], 4);
    assert!(first[0].id < first[1].id && first[1].id < first[2].id);

    // New ones arrive live; the overlapping document's repeats are duplicates and send nothing.
    let (_, body) = post(&server, "/api/v1/feeds/aqhi", &aqhi_doc(1..6));
    assert_eq!((body["stored"].as_u64(), body["duplicates"].as_u64()), (Some(2), Some(4)));
    let e4 = s.next();
    assert_eq!(e4.data["phenomenonTime"], "2026-10-04T20:00:00Z");
    assert_eq!(e4.data["result"], 11, "10+ is stored as 11");
    assert_eq!(e4.data["parameters"]["aqhi"], "10+");
    let e5 = s.next();
    assert_eq!(e5.data["phenomenonTime"], "2026-10-04T21:00:00Z");
    drop(s);

    // Disconnected after e4's id: a reading arrives meanwhile; the resumed stream sends e5 and it,
    // nothing before, nothing twice.
    post(&server, "/api/v1/feeds/aqhi", &aqhi_doc(6..7));
    let mut s = Stream::open(&server, "datastreams=1,2", e4.id);
    let again = s.next();
    assert_eq!(again.id, e5.id);
    let new = s.next();
    assert_eq!(new.data["phenomenonTime"], "2026-10-04T22:00:00Z");
    assert!(new.id > e5.id);

    // Bad requests say what is wrong.
    for (q, status, says) in [
        ("datastreams=", 400, "one or more ids"),
        ("datastreams=x", 400, "is not a datastream id"),
        ("datastreams=999", 404, "datastream 999 not found"),
        ("datastreams=1&lastEventId=abc", 400, "Last-Event-ID"),
    ] {
        let mut resp = agent().get(&format!("{}/api/v1/live?{q}", server.url)).call().unwrap();
        assert_eq!(resp.status().as_u16(), status, "{q}");
        let body: Value = resp.body_mut().read_json().unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{q}: {body}");
    }
    let stats = server.json("/api/v1/live/stats");
    assert!(stats["live"]["delivered"].as_u64().unwrap() >= 2, "{stats}");
}

#[test]
fn sse_streams_rollups_of_each_commit_and_resumes_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-demo"]);
    // Station A (datastream 1): AQHI 2 at 17:00Z and 3 at 18:00Z.
    let (status, body) = post(&server, "/api/v1/feeds/aqhi", &aqhi_doc(1..3));
    assert_eq!(status, 200, "{body}");
    let mut s = Stream::open(&server, "datastreams=1&rollups=hour&observations=false", None);
    // A late reading into the 17:00 hour: the hour's rollup is sent with the whole bucket's figures.
    let obs = r#"{"phenomenonTime": "2026-10-04T17:30:00Z", "result": 7, "Datastream": {"@iot.id": 1}}"#;
    let (status, body) = post(&server, "/sta/v1.1/Observations", obs);
    assert_eq!(status, 201, "{body}");
    let id = body["@iot.id"].as_i64().unwrap();
    let e = s.next();
    assert_eq!(e.event, "rollup");
    assert_eq!(e.id, Some(id), "a rollup's id is its commit's greatest observation id");
    let d = &e.data;
    assert_eq!(
        (d["kind"].as_str(), d["datastream"].as_i64(), d["resolution"].as_str()),
        (Some("rollup"), Some(1), Some("hour"))
    );
    assert_eq!(d["phenomenonTime"], "2026-10-04T17:00:00Z/2026-10-04T18:00:00Z");
    assert_eq!((d["count"].as_u64(), d["min"].as_f64(), d["max"].as_f64()), (Some(2), Some(2.0), Some(7.0)));
    assert_eq!((d["mean"].as_f64(), d["asOf"].as_i64()), (Some(4.5), Some(id)));
    // The next reading's observation and minute are not asked for: only its hour comes.
    let obs = r#"{"phenomenonTime": "2026-10-04T18:10:00Z", "result": 1, "Datastream": {"@iot.id": 1}}"#;
    let (_, body) = post(&server, "/sta/v1.1/Observations", obs);
    let id2 = body["@iot.id"].as_i64().unwrap();
    let e = s.next();
    assert_eq!((e.event.as_str(), e.id), ("rollup", Some(id2)));
    assert_eq!(e.data["phenomenonTime"], "2026-10-04T18:00:00Z/2026-10-04T19:00:00Z");
    assert_eq!((e.data["count"].as_u64(), e.data["mean"].as_f64()), (Some(2), Some(2.0)));
    drop(s);
    // Resuming after the first late reading, with observations and both resolutions: its commit's
    // rollups again (snapshots), then the second reading and its rollups, in stream order.
    let mut s = Stream::open(&server, "datastreams=1&rollups=minute,hour", Some(id));
    let got: Vec<(String, Option<i64>, String)> = (0..5)
        .map(|_| {
            let e = s.next();
            let res = e.data["resolution"].as_str().unwrap_or("").to_owned();
            (e.event, e.id, res)
        })
        .collect();
    let want = [
        ("rollup", id, "minute"),
        ("rollup", id, "hour"),
        ("observation", id2, ""),
        ("rollup", id2, "minute"),
        ("rollup", id2, "hour"),
    ];
    let want: Vec<(String, Option<i64>, String)> =
        want.iter().map(|(k, i, r)| ((*k).to_owned(), Some(*i), (*r).to_owned())).collect();
    assert_eq!(got, want);
    for (q, says) in [
        ("datastreams=1&rollups=day", "is not a rollup"),
        ("datastreams=1&observations=false", "asks for nothing"),
        ("datastreams=1&observations=no", "neither true nor false"),
    ] {
        let mut resp = agent().get(&format!("{}/api/v1/live?{q}", server.url)).call().unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{q}");
        let body: Value = resp.body_mut().read_json().unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{q}: {body}");
    }
}

#[test]
fn feeds_in_the_government_shapes_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-demo"]);
    let lane = |speed: u32, valid: &str| {
        format!("<lane><lane_id>Fast Lane</lane_id><speed>{speed}</speed><occupancy>5</occupancy><volume>3</volume><s.d.>1.2</s.d.><valid>{valid}</valid></lane>")
    };
    let snapshot = |a: &str, b: &str, l1: String, l2: String| {
        format!(
            "<raw_speed_volume_list><date>2026-11-25</date><periods>\
             <period><period_from>{a}</period_from><period_to>{b}</period_to><detectors><detector><detector_id>AID01101</detector_id><direction>North</direction><lanes>{l1}</lanes></detector></detectors></period>\
             </periods></raw_speed_volume_list>"
        ) + &l2
    };
    // Two overlapping 30-second snapshots: the second repeats the first's period.
    let one = snapshot("08:00:00", "08:00:30", lane(70, "Y"), String::new());
    let (status, body) = post(&server, "/api/v1/feeds/td-detectors", &one);
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["stored"].as_u64(), body["datastreams"].as_u64()), (Some(3), Some(3)));
    let two = one.replace(
        "</periods>",
        "<period><period_from>08:00:30</period_from><period_to>08:01:00</period_to><detectors><detector><detector_id>AID01101</detector_id><direction>North</direction><lanes>",
    ) + "";
    let two = two.replace(
        "</raw_speed_volume_list>",
        &format!(
            "{}</lanes></detector></detectors></period></periods></raw_speed_volume_list>",
            lane(65, "Y")
        ),
    );
    let (status, body) = post(&server, "/api/v1/feeds/td-detectors", &two);
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["stored"].as_u64(), body["duplicates"].as_u64()), (Some(3), Some(3)), "{body}");
    // The Observatory's lamppost JSON, values as strings, an empty one skipped.
    let hko = r#"[{"BD":"00","DI":"01","GI":"00","PI":"DF1020","TS":"0","BODY":{"HKO":{"T0":"28.0","RH":"","TS":"20261125093000","VN":"1.0","TP":"20261125093002"}}}]"#;
    let (status, body) = post(&server, "/api/v1/feeds/hko-lamppost", hko);
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["stored"].as_u64(), body["skipped"].as_u64()), (Some(1), Some(1)));
    // Bad documents: 400 with the place, nothing stored.
    let (status, body) =
        post(&server, "/api/v1/feeds/hko-lamppost", r#"{"PI":"X","BODY":{"HKO":{"TS":"2026","T0":"1"}}}"#);
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("is not YYYYMMDDhhmmss"), "{body}");
    let (status, body) = post(&server, "/api/v1/feeds/td-detectors", "<raw_speed_volume_list><date>x");
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(&server, "/api/v1/feeds/rss", "x");
    assert_eq!(status, 404);
}

fn reading(i: u32) -> String {
    format!(
        r#"{{"phenomenonTime":"2026-10-05T{:02}:{:02}:{:02}Z","result":{i}}}"#,
        i / 3600,
        i / 60 % 60,
        i % 60
    )
}

#[test]
fn mqtt_readings_are_stored_counted_announced_and_survive_a_broker_restart() {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let server = Server::start(dir.path(), &["--no-demo", "--mqtt", &url]);
    // Datastream 1 (station A) from a feed.
    assert_eq!(post(&server, "/api/v1/feeds/aqhi", &aqhi_doc(1..2)).0, 200);
    let t = Instant::now();
    while server.json("/api/v1/live/stats")["mqtt"][0]["connected"] != true {
        assert!(t.elapsed() < Duration::from_secs(10), "the server did not connect to the broker");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut dev = Device::connect(broker.port, "device-e2e");
    let topic = "v1.1/Datastreams(1)/Observations";
    let patience = Duration::from_secs(15);
    assert!(dev.publish_acked(topic, "{\"result\": 1}", patience));
    assert!(dev.publish_acked("v1.1/Datastreams(777)/Observations", &reading(1), patience));
    let mut acked = Vec::new();
    for i in 1..=200u32 {
        if i == 100 {
            broker.restart();
        }
        if dev.publish_acked(topic, &reading(i), patience) {
            acked.push(i);
        }
    }
    assert!(acked.len() >= 195, "the device could publish only {}", acked.len());
    // Every acknowledged reading is stored: read them back from the live stream's retained events.
    let mut s = Stream::open(&server, "datastreams=1", Some(0));
    let mut seen = std::collections::HashSet::new();
    let wanted: std::collections::HashSet<String> = acked
        .iter()
        .map(|i| {
            serde_json::from_str::<Value>(&reading(*i)).unwrap()["phenomenonTime"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let t = Instant::now();
    while !wanted.iter().all(|w| seen.contains(w)) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "missing {:?}",
            wanted.difference(&seen).collect::<Vec<_>>()
        );
        let e = s.next();
        seen.insert(e.data["phenomenonTime"].as_str().unwrap().to_owned());
    }
    let stats = server.json("/api/v1/live/stats");
    let m = &stats["mqtt"][0];
    // Messages not yet acknowledged when the broker stopped come again (as duplicates): each bad
    // message is counted at least once.
    assert!(m["malformed"].as_u64().unwrap() >= 1, "{stats}");
    assert!(m["rejected"].as_u64().unwrap() >= 1, "{stats}");
    assert!(m["connections"].as_u64().unwrap() >= 2, "{stats}");
    assert!(m["stored"].as_u64().unwrap() >= acked.len() as u64, "{stats}");
}

fn count(server: &Server, set: &str) -> u64 {
    server.json(&format!("/sta/v1.1/{set}?$count=true&$top=1"))["@iot.count"].as_u64().unwrap()
}

fn stored_of(summary: &str) -> u64 {
    let words: Vec<&str> = summary.split_whitespace().collect();
    let i =
        words.iter().position(|w| w.trim_end_matches(',') == "stored").unwrap_or_else(|| panic!("{summary}"));
    words[i - 1].parse().unwrap()
}

/// `citydata simulate` over HTTP creates its Things and Datastreams once (a second run finds
/// them) and posts readings through CreateObservations; over MQTT it publishes them to the broker
/// that the server takes them from.
#[test]
fn simulate_over_http_and_mqtt() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let server = Server::start(dir.path(), &["--no-demo", "--mqtt", &mqtt]);
    let args = ["simulate", "--lampposts", "4", "--rate", "200", "--duration", "1.5", "--target"];
    let out = crate::common::ok(dir.path(), &[&args[..], &[server.url.as_str()]].concat());
    let first = stored_of(&out);
    assert!(first > 150, "{out}");
    let datastreams = count(&server, "Datastreams");
    assert_eq!(count(&server, "Things"), 4);
    assert!(datastreams >= 8, "{datastreams}");
    // They are the first sensing lampposts of the demo's map, with its ids, places, area and district.
    let city = citydata::demo::City::hong_kong().unwrap();
    let fleet = citydata::lampposts::fleet(&city, Some(4)).unwrap();
    let things = server.json(
        "/sta/v1.1/Things?$filter=properties/area%20eq%20'Kowloon%20East'&$expand=Locations,Datastreams($select=name,properties)&$orderby=id",
    );
    let things = things["value"].as_array().unwrap();
    assert_eq!(things.len(), 4, "{things:?}");
    for (t, l) in things.iter().zip(&fleet.lampposts) {
        assert_eq!(t["name"], format!("Smart lamppost {}", l.id));
        assert_eq!(t["properties"]["network"], "smart-lampposts");
        assert_eq!(t["properties"]["district"].as_str(), l.district.as_deref());
        assert_eq!(t["Locations"][0]["location"]["coordinates"], serde_json::json!([l.lon, l.lat]));
        let measures: Vec<&str> = t["Datastreams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["properties"]["measure"].as_str().unwrap())
            .collect();
        assert_eq!(measures.len(), l.measures.len(), "{t}");
    }
    assert_eq!(count(&server, "Observations"), first);
    let out =
        crate::common::ok(dir.path(), &[&args[..], &[mqtt.as_str(), "--api", server.url.as_str()]].concat());
    let second = stored_of(&out);
    assert!(second > 150, "{out}");
    assert_eq!(count(&server, "Datastreams"), datastreams, "the second run found the datastreams");
    let t = Instant::now();
    while count(&server, "Observations") < first + second {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the server stored {} of {}",
            count(&server, "Observations"),
            first + second
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The simulator speaks the government's feed shapes too.
    let out = crate::common::ok(
        dir.path(),
        &["simulate", "--lampposts", "4", "--feeds", "--duration", "0", "--target", server.url.as_str()],
    );
    assert!(out.starts_with("3 feed documents posted"), "{out}");
    assert!(stored_of(&out) > 100, "{out}");
}

/// `serve` on the demo database runs the simulator in process: the demo city's lampposts report.
#[test]
fn the_demo_city_is_alive() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none_or(|v| v == "0") {
        // Setting up the demo's 400 lampposts takes tens of seconds in a debug build; the fast
        // suite checks only that --no-simulate keeps the store quiet.
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &["--no-simulate"]);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(count(&server, "Things"), 0);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let t = Instant::now();
    while count(&server, "Observations") == 0 {
        assert!(t.elapsed() < Duration::from_secs(180), "no observation from the demo's lampposts");
        std::thread::sleep(Duration::from_millis(500));
    }
    let city = citydata::demo::City::hong_kong().unwrap();
    let fleet = citydata::lampposts::fleet(&city, None).unwrap();
    assert_eq!(count(&server, "Things"), fleet.lampposts.len() as u64);
    // "Air quality by area" is one query: the Things of an area with their PM2.5 Datastreams.
    let q = "/sta/v1.1/Things?$filter=properties/area%20eq%20'Central'&$top=1000&$expand=Datastreams($filter=ObservedProperty/name%20eq%20'PM2.5')";
    let central = server.json(q);
    let want = fleet.lampposts.iter().filter(|l| l.area == "Central").count();
    assert_eq!(central["value"].as_array().unwrap().len(), want);
    let pm: usize =
        central["value"].as_array().unwrap().iter().map(|t| t["Datastreams"].as_array().unwrap().len()).sum();
    let want_pm = fleet
        .lampposts
        .iter()
        .filter(|l| l.area == "Central" && l.measures.contains(&citydata_sensors::simulate::Measure::Pm25))
        .count();
    assert_eq!(pm, want_pm);
}
