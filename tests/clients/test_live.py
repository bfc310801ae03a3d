"""The live streams as a Python client sees them: Server-Sent Events read with the standard
library's HTTP client (as a dashboard's EventSource would), resumed with Last-Event-ID, on the demo
database whose lampposts the in-process simulator keeps reporting; and a government feed posted in
its own shape.
"""

import datetime
import http.client
import json
import time
import urllib.parse
import urllib.request

import pytest

AQHI = """<?xml version="1.0" encoding="UTF-8"?>
<AQHI24HrReport>
<item><type>Roadside Stations</type><StationName>Mong Kok</StationName><DateTime>Wed, 25 Nov 2026 09:00:00 +0800</DateTime><aqhi>5</aqhi></item>
<item><type>Roadside Stations</type><StationName>Mong Kok</StationName><DateTime>Wed, 25 Nov 2026 10:00:00 +0800</DateTime><aqhi>10+</aqhi></item>
<item><type>Roadside Stations</type><StationName>Mong Kok</StationName><DateTime>Wed, 25 Nov 2026 11:00:00 +0800</DateTime><aqhi>-</aqhi></item>
</AQHI24HrReport>"""


def get_json(url):
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def post(url, body, ctype="application/json"):
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": ctype}, method="POST")
    with urllib.request.urlopen(req) as r:
        return r.status, json.load(r)


class Events:
    """An open SSE stream: `next()` gives (id, event, data) of the next event with data."""

    def __init__(self, url, query, last=None):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        self.conn.request("GET", f"/api/v1/live?{query}", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type") == "text/event-stream"

    def next(self):
        ident, event, data = None, None, []
        while True:
            line = self.resp.readline().decode().rstrip("\n")
            if line == "":
                if data:
                    return ident, event, json.loads("\n".join(data))
                continue
            key, _, value = line.partition(": ")
            if key == "id":
                ident = int(value)
            elif key == "event":
                event = value
            elif key == "data":
                data.append(value)

    def close(self):
        self.conn.close()


@pytest.fixture(scope="module")
def lamppost_datastream(server):
    """A datastream of the demo's simulated lampposts (the simulator sets them up at start)."""
    key = urllib.parse.quote("properties/measure eq 'traffic_flow'")
    deadline = time.time() + 120
    while time.time() < deadline:
        page = get_json(f"{server.url}/sta/v1.1/Datastreams?$filter={key}&$select=id&$orderby=id&$top=1")
        if page["value"]:
            return page["value"][0]["@iot.id"]
        time.sleep(0.5)
    pytest.fail("the demo's lampposts were not set up within 120 s")


def create(server, ds, seconds, value):
    body = [{
        "Datastream": {"@iot.id": ds},
        "components": ["phenomenonTime", "result"],
        "dataArray": [[f"2020-01-01T00:00:{s:02d}Z", value + s] for s in seconds],
    }]
    status, _ = post(f"{server.url}/sta/v1.1/CreateObservations", json.dumps(body))
    assert status == 201


def test_events_arrive_and_resume(server, lamppost_datastream):
    ds = lamppost_datastream
    stream = Events(server.url, f"datastreams={ds}")
    create(server, ds, [1, 2], 1000)
    seen = []
    while len(seen) < 2:
        ident, event, data = stream.next()
        assert event == "observation" and data["Datastream@iot.id"] == ds and ident == data["@iot.id"]
        if data["phenomenonTime"].startswith("2020-01-01"):  # ours, not the simulator's
            seen.append((ident, data["result"]))
    assert [r for _, r in seen] == [1001, 1002]
    stream.close()
    # Missed while away: sent on resume, after the last id seen, in order.
    create(server, ds, [3], 1000)
    resumed = Events(server.url, f"datastreams={ds}", last=seen[-1][0])
    ident, _, data = resumed.next()
    while not data["phenomenonTime"].startswith("2020-01-01"):
        assert ident > seen[-1][0]
        ident, _, data = resumed.next()
    assert data["result"] == 1003 and ident > seen[-1][0]
    resumed.close()


def test_the_demo_lampposts_report_and_counters_show(server, lamppost_datastream):
    stats = get_json(f"{server.url}/api/v1/live/stats")
    assert set(stats) == {"live", "mqtt"} and stats["mqtt"] == []
    flt = urllib.parse.quote("startswith(name,'Smart lamppost')")
    deadline = time.time() + 120
    while True:
        things = get_json(f"{server.url}/sta/v1.1/Things?$count=true&$top=1&$filter={flt}")
        if things["@iot.count"] == 158 or time.time() > deadline:
            break
        time.sleep(0.5)
    # The sensing lampposts of the demo's lamppost layer (158 of its 450).
    assert things["@iot.count"] == 158
    # The lampposts report: observations come from the simulator alone within a minute or two.
    recent = urllib.parse.quote("phenomenonTime gt 2025-01-01T00:00:00Z")
    obs = f"{server.url}/sta/v1.1/Datastreams({lamppost_datastream})/Observations?$count=true&$top=1&$filter={recent}"
    while get_json(obs)["@iot.count"] == 0:
        assert time.time() < deadline + 120, "the simulated lamppost never reported"
        time.sleep(1)


def test_air_quality_by_area_in_one_query(server, lamppost_datastream):
    """What a dashboard asks: the Things of an area, with their PM2.5 Datastreams."""
    flt = urllib.parse.quote("properties/area eq 'Kowloon East'")
    exp = urllib.parse.quote("Datastreams($filter=ObservedProperty/name eq 'PM2.5';$select=id,name,properties)")
    page = get_json(f"{server.url}/sta/v1.1/Things?$filter={flt}&$expand={exp}&$top=1000")
    things = page["value"]
    assert len(things) > 20
    assert all(t["properties"]["area"] == "Kowloon East" and t["properties"]["network"] == "smart-lampposts"
               for t in things)
    assert {t["properties"]["district"] for t in things} >= {"Kwun Tong"}
    pm = [d for t in things for d in t["Datastreams"]]
    assert pm and all(d["properties"]["measure"] == "pm25" for d in pm)


def test_rollups_stream_for_a_dashboard(server, lamppost_datastream):
    """A rollups-only stream, as an EventSource for a chart: a reading posted now changes its
    minute and hour buckets, and both arrive as `rollup` events that say what they are."""
    ev = Events(server.url, f"datastreams={lamppost_datastream}&rollups=minute,hour&observations=false")
    # An odd microsecond: no simulated reading of the datastream has this time (a duplicate would
    # change no bucket).
    posted = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=123_457)
    now = posted.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    status, _ = post(f"{server.url}/sta/v1.1/Observations",
                     json.dumps({"phenomenonTime": now, "result": 12.5, "Datastream": {"@iot.id": lamppost_datastream}}))
    assert status == 201
    seen = {}
    deadline = time.time() + 60
    while set(seen) != {"minute", "hour"}:
        assert time.time() < deadline, seen
        ident, event, data = ev.next()
        assert event == "rollup" and data["kind"] == "rollup", (event, data)
        assert data["datastream"] == lamppost_datastream and ident == data["asOf"]
        assert data["count"] >= 1 and data["min"] <= data["mean"] <= data["max"]
        start, end = (datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
                      for t in data["phenomenonTime"].split("/"))
        if start <= posted < end:
            seen[data["resolution"]] = data
    assert seen["minute"]["max"] >= 12.5 and seen["hour"]["max"] >= 12.5
    ev.close()


def test_a_feed_in_its_own_shape(server):
    status, out = post(f"{server.url}/api/v1/feeds/aqhi", AQHI, "application/xml")
    assert status == 200
    assert (out["readings"], out["stored"], out["skipped"]) == (2, 2, 1)
    status, again = post(f"{server.url}/api/v1/feeds/aqhi", AQHI, "application/xml")
    assert (again["stored"], again["duplicates"]) == (0, 2)
    key = urllib.parse.quote("properties/key eq 'aqhi/Mong Kok'")
    ds = get_json(f"{server.url}/sta/v1.1/Datastreams?$filter={key}&$expand=Observations($orderby=phenomenonTime)")
    results = [o["result"] for o in ds["value"][0]["Observations"]]
    assert results == [5, 11]
