#!/usr/bin/env python3
"""bench/live.py: sensor ingest over HTTP and MQTT against raw SQLite, SSE fan-out latency, and the
latest value of every datastream.

Four measurements, one `citydata serve --no-demo --no-simulate` on a new database each:

  http     CreateObservations, batches of BATCH (5,000) readings over 10 datastreams, posted one
           after another on one kept-alive connection; each answer (201) comes after the commit.
           Beside it, in the same run, Python's sqlite3 inserts the same rows into a plain table
           (id, datastream, time, result, UNIQUE(datastream, time)) in WAL mode with
           synchronous=FULL, one transaction per batch: the floor for durable inserts. Printed:
           observations/s of both and their ratio.
  mqtt     the same readings published at QoS 1 to a mosquitto the script starts (INFLIGHT in flight toward citydata),
           which the server takes through `--mqtt`; timed from the first publish until the
           server's counters (`/api/v1/live/stats`) show every reading stored, i.e. committed.
           The readings are published by PUBLISHERS (4) device connections, one process each,
           each with up to WINDOW (1,000) messages awaiting the broker's PUBACK (one Python
           connection alone cannot feed the broker as fast as citydata commits). ANNOUNCE=0 runs
           the server with --no-mqtt-announce: each stored observation is then not published
           back to the broker (whose one thread otherwise carries it, and its echo to citydata's
           own subscription, besides the device's message).
  mqtt-bulk the http mode's CreateObservations bodies (BATCHES of BATCH readings), each published
           as one QoS 1 message on `v1.1/CreateObservations` by one gateway connection (up to
           WINDOW unacknowledged), taken by the server through `--mqtt`; timed from the first
           publish until the server's counters show every reading stored. Beside it, in the same
           run, the raw sqlite3 inserts of the http mode. Printed: observations/s of both and their
           ratio. ANNOUNCE=0 as for mqtt.
  fanout   SUBSCRIBERS (1,000) SSE clients on one datastream while a writer posts one reading
           every 1/RATE s for SECONDS. Each reading's result is its send time; a client notes when
           the event arrives (clients run in PROCS (2) processes and parse after the run, so that
           their own work delays deliveries as little as it can). Printed: p50/p99 of send-to-delivery (POST, commit and fan-out: an upper
           bound of commit-to-delivery) and of ack-to-delivery (from the 201, which follows the
           commit: delivery often comes first, so this is negative then), and how many clients got
           every event.

  latest   LATEST (10,000) datastreams with READINGS (3) readings each; then ROUNDS (50) times, one
           after another on one kept-alive connection, the SensorThings request for the latest
           observation of every datastream
           (`Datastreams?$top=10000&$expand=Observations($top=1;$orderby=phenomenonTime desc)`,
           "full"), and the same with `$select` of the datastreams' id and name and the
           observations' time and result ("selected", what a dashboard asks), each timed from the
           request to the last byte of the answer. Printed: p50/p99/max and the answer's size; the
           answers are checked (every datastream, its latest reading).

Run:  bench/live.py [http] [mqtt] [mqtt-bulk] [fanout] [latest]      (all five by default)
Environment: CITYDATA_BIN (default: target/release/citydata, else target/debug/citydata),
BATCHES (40), BATCH (5000), SUBSCRIBERS (1000), RATE (20), SECONDS (10), INFLIGHT (1000: mosquitto's
max_inflight_messages toward citydata, which acknowledges only after the commit).
Needs: Python 3 (standard library only), mosquitto for `mqtt`.
"""

import asyncio
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES = int(os.environ.get("BATCHES", 40))
BATCH = int(os.environ.get("BATCH", 5000))
SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", 1000))
RATE = float(os.environ.get("RATE", 20))
SECONDS = float(os.environ.get("SECONDS", 10))
DATASTREAMS = 10
INFLIGHT = int(os.environ.get("INFLIGHT", 1000))  # mosquitto max_inflight_messages toward citydata
PUBLISHERS = int(os.environ.get("PUBLISHERS", 4))  # device connections (processes) publishing
WINDOW = int(os.environ.get("WINDOW", 1000))  # unacknowledged messages per device connection
ANNOUNCE = os.environ.get("ANNOUNCE", "1") != "0"  # ANNOUNCE=0: serve --no-mqtt-announce


def binary():
    if os.environ.get("CITYDATA_BIN"):
        return os.environ["CITYDATA_BIN"]
    tgt = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for p in ("release", "debug"):
        b = os.path.join(tgt, p, "citydata")
        if os.path.exists(b):
            return b
    sys.exit("build citydata first (cargo build --release -p citydata) or set CITYDATA_BIN")


class Server:
    def __init__(self, work, extra=()):
        self.proc = subprocess.Popen(
            [binary(), "serve", "--no-demo", "--no-simulate", "--port", "0", "--db", os.path.join(work, "bench.db"), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        url = next(w for w in line.split() if w.startswith("http://")).rstrip("/")
        self.host, self.port = url[len("http://"):].split(":")
        self.port = int(self.port)

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method, path, body=None, conn=None):
        c = conn or self.conn()
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read()
        return r.status, (json.loads(text) if text else None)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def make_datastreams(server, n):
    body = {
        "name": "bench",
        "description": "benchmark thing",
        "Datastreams": [
            {
                "name": f"bench {i}",
                "description": "benchmark",
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "unitOfMeasurement": {"name": "n", "symbol": "n", "definition": "n"},
                "Sensor": {"name": f"s{i}", "description": "s", "encodingType": "text/html", "metadata": "x"},
                "ObservedProperty": {"name": f"p{i}", "definition": "p", "description": "p"},
            }
            for i in range(n)
        ],
    }
    status, _ = server.call("POST", "/sta/v1.1/Things", body)
    assert status == 201, status
    status, page = server.call("GET", "/sta/v1.1/Datastreams?$select=id&$top=1000")
    return [d["@iot.id"] for d in page["value"]]


T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def iso(us):
    s, frac = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:06d}Z"


def rows(b):
    """Batch b: BATCH readings spread over the datastreams, times unique per datastream."""
    for k in range(BATCH):
        n = b * BATCH + k
        yield n % DATASTREAMS, T0 * 1_000_000 + (n // DATASTREAMS) * 1000, (n % 997) / 10.0


def create_observations_bodies(ids):
    """The CreateObservations body of each batch."""
    bodies = []
    for b in range(BATCHES):
        groups = {}
        for d, t, v in rows(b):
            groups.setdefault(d, []).append([iso(t), v])
        bodies.append(
            json.dumps(
                [{"Datastream": {"@iot.id": ids[d]}, "components": ["phenomenonTime", "result"], "dataArray": g}
                 for d, g in groups.items()]
            ).encode()
        )
    return bodies


def raw_inserts(work):
    """Seconds Python's sqlite3 takes to insert the rows, one durable transaction per batch."""
    db = sqlite3.connect(os.path.join(work, "raw.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE obs (id INTEGER PRIMARY KEY, datastream INTEGER NOT NULL, t INTEGER NOT NULL, result REAL, UNIQUE (datastream, t))")
    batches = [list(rows(b)) for b in range(BATCHES)]
    start = time.perf_counter()
    for batch in batches:
        db.execute("BEGIN")
        db.executemany("INSERT INTO obs (datastream, t, result) VALUES (?, ?, ?)", batch)
        db.execute("COMMIT")
    return time.perf_counter() - start


def bench_http(work):
    server = Server(work)
    try:
        ids = make_datastreams(server, DATASTREAMS)
        bodies = create_observations_bodies(ids)
        conn = server.conn()
        start = time.perf_counter()
        for body in bodies:
            conn.request("POST", "/sta/v1.1/CreateObservations", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 201, r.status
        http_s = time.perf_counter() - start
        status, page = server.call("GET", "/sta/v1.1/Observations?$count=true&$top=0")
        assert page["@iot.count"] == BATCHES * BATCH, page
    finally:
        server.stop()
    raw_s = raw_inserts(work)
    n = BATCHES * BATCH
    print(f"http: {n} observations in batches of {BATCH}: citydata CreateObservations {n / http_s:,.0f}/s "
          f"({http_s:.2f} s), raw sqlite3 {n / raw_s:,.0f}/s ({raw_s:.2f} s), ratio {raw_s / http_s:.2f}")


def mqtt_packet(kind, body):
    n, enc = len(body), b""
    while True:
        d, n = n % 128, n // 128
        enc += bytes([d | (0x80 if n else 0)])
        if not n:
            break
    return bytes([kind]) + enc + body


def mqtt_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def start_broker(work):
    """A mosquitto on a free port: (process, port)."""
    mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    os.chmod(work, 0o777)
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages {INFLIGHT}\nmax_queued_messages 1000000\n")
    broker = subprocess.Popen([mosq, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return broker, port


def bench_mqtt_bulk(work):
    broker, port = start_broker(work)
    server = Server(work, ["--mqtt", f"mqtt://127.0.0.1:{port}"] + ([] if ANNOUNCE else ["--no-mqtt-announce"]))
    try:
        ids = make_datastreams(server, DATASTREAMS)
        while not (server.call("GET", "/api/v1/live/stats")[1]["mqtt"] or [{}])[0].get("connected"):
            time.sleep(0.05)
        topic = mqtt_str("v1.1/CreateObservations")
        msgs = [(topic, body) for body in create_observations_bodies(ids)]
        n = BATCHES * BATCH
        import multiprocessing
        go = multiprocessing.Event()
        done = multiprocessing.Queue()
        proc = multiprocessing.Process(target=publisher, args=(port, "bench-gateway", msgs, go, done))
        proc.start()
        time.sleep(0.5)
        start = time.perf_counter()
        go.set()
        assert done.get() == "ok"
        proc.join()
        broker_s = time.perf_counter() - start
        while True:
            m = server.call("GET", "/api/v1/live/stats")[1]["mqtt"][0]
            if m["stored"] + m["duplicates"] >= n or m["malformed"] or m["rejected"]:
                break
            time.sleep(0.01)
        stored_s = time.perf_counter() - start
        assert (m["batches"], m["stored"], m["malformed"], m["rejected"]) == (BATCHES, n, 0, 0), m
        status, page = server.call("GET", "/sta/v1.1/Observations?$count=true&$top=0")
        assert page["@iot.count"] == n, page
    finally:
        server.stop()
        broker.terminate()
        broker.wait()
    raw_s = raw_inserts(work)
    print(f"mqtt-bulk{'' if ANNOUNCE else ' (no announcements)'}: {n} observations in {BATCHES} CreateObservations "
          f"messages of {BATCH} at QoS 1 from one gateway connection: all acknowledged by the broker in "
          f"{broker_s:.2f} s, all committed by citydata in {stored_s:.2f} s: {n / stored_s:,.0f}/s; raw sqlite3 "
          f"{n / raw_s:,.0f}/s ({raw_s:.2f} s), ratio {raw_s / stored_s:.2f}"
          + (f"; by then {m['published']} announced, {m['publishDropped']} dropped (the bridge's outgoing queue full)" if ANNOUNCE else ""))


def bench_mqtt(work):
    broker, port = start_broker(work)
    server = Server(work, ["--mqtt", f"mqtt://127.0.0.1:{port}"] + ([] if ANNOUNCE else ["--no-mqtt-announce"]))
    try:
        ids = make_datastreams(server, DATASTREAMS)
        while not (server.call("GET", "/api/v1/live/stats")[1]["mqtt"] or [{}])[0].get("connected"):
            time.sleep(0.05)
        msgs = []
        for b in range(BATCHES):
            for d, t, v in rows(b):
                topic = mqtt_str(f"v1.1/Datastreams({ids[d]})/Observations")
                payload = json.dumps({"phenomenonTime": iso(t), "result": v}).encode()
                msgs.append((topic, payload))
        n = len(msgs)
        # PUBLISHERS device connections, each in its own process with its own window of WINDOW
        # unacknowledged messages, publish disjoint shares of the readings.
        import multiprocessing
        go = multiprocessing.Event()
        done = multiprocessing.Queue()
        shares = [msgs[k::PUBLISHERS] for k in range(PUBLISHERS)]
        procs = [multiprocessing.Process(target=publisher, args=(port, f"bench-device-{k}", shares[k], go, done))
                 for k in range(PUBLISHERS)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        start = time.perf_counter()
        go.set()
        for _ in procs:
            assert done.get() == "ok"
        for p in procs:
            p.join()
        broker_s = time.perf_counter() - start
        while True:
            m = server.call("GET", "/api/v1/live/stats")[1]["mqtt"][0]
            if m["stored"] + m["duplicates"] >= n:
                break
            time.sleep(0.02)
        stored_s = time.perf_counter() - start
        print(f"mqtt{'' if ANNOUNCE else ' (no announcements)'}: {n} observations at QoS 1 from {PUBLISHERS} device connections (window {WINDOW}, broker in-flight "
              f"toward citydata {INFLIGHT}): all acknowledged by the broker in {broker_s:.2f} s, all committed by "
              f"citydata in {stored_s:.2f} s: {n / stored_s:,.0f}/s ({m['stored']} stored, {m['duplicates']} duplicates)")
    finally:
        server.stop()
        broker.terminate()
        broker.wait()


def publisher(port, client_id, msgs, go, done):
    """One device connection: publishes `msgs` at QoS 1 with up to WINDOW unacknowledged."""
    dev = socket.create_connection(("127.0.0.1", port))
    dev.sendall(mqtt_packet(0x10, mqtt_str("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + mqtt_str(client_id)))
    assert dev.recv(4)[0] == 0x20
    packets = [mqtt_packet(0x32, topic + struct.pack("!H", i % 65535 + 1) + payload)
               for i, (topic, payload) in enumerate(msgs)]
    n = len(packets)
    go.wait()
    sent, acked, buf = 0, 0, b""
    while acked < n:
        if sent < n and sent - acked < WINDOW:
            upto = min(n, acked + WINDOW)
            dev.sendall(b"".join(packets[sent:upto]))
            sent = upto
        buf += dev.recv(1 << 20)
        k = len(buf) // 4  # every packet the broker sends here is a 4-byte PUBACK
        assert all(buf[j] == 0x40 for j in range(0, k * 4, 4)), buf[:16]
        acked += k
        buf = buf[k * 4:]
    dev.close()
    done.put("ok")


async def subscriber(host, port, path, got, ready):
    """Reads one SSE stream; notes each data line with its arrival time (parsed afterwards, so
    that the client's own work delays deliveries as little as it can)."""
    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await w.drain()
    ready.append(1)
    while True:
        line = await r.readline()
        if not line:
            return
        if line.startswith(b"data: {"):
            got.append((line, time.time()))


def subscribers_process(host, port, path, count, start_at, stop_at, out):
    """One process of `count` subscribers from `start_at` until `stop_at` (wall clock)."""
    async def run():
        gots = [[] for _ in range(count)]
        ready = []
        tasks = [asyncio.create_task(subscriber(host, port, path, g, ready)) for g in gots]
        while time.time() < stop_at:
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        return len(ready), [[(json.loads(line[6:])["result"], at) for line, at in g] for g in gots]
    ready, gots = asyncio.run(run())
    out.put((ready, gots))


def bench_fanout(work):
    import multiprocessing
    server = Server(work)
    try:
        ds = make_datastreams(server, 1)[0]
        path = f"/api/v1/live?datastreams={ds}"
        procs = int(os.environ.get("PROCS", 2))
        n = int(RATE * SECONDS)
        start_at = time.time()
        stop_at = start_at + 4 + SECONDS + 3
        out = multiprocessing.Queue()
        ps = [multiprocessing.Process(target=subscribers_process,
                                      args=(server.host, server.port, path, SUBSCRIBERS // procs, start_at, stop_at, out))
              for _ in range(procs)]
        for p in ps:
            p.start()
        while time.time() < start_at + 3:
            time.sleep(0.1)
        stats = server.call("GET", "/api/v1/live/stats")[1]["live"]
        assert stats["subscribers"] == SUBSCRIBERS // procs * procs, stats
        conn = server.conn()
        acks = {}
        for k in range(n):
            sent = time.time()
            body = json.dumps([{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
                                "dataArray": [[iso(T0 * 1_000_000 + k * 1000), sent]]}]).encode()
            conn.request("POST", "/sta/v1.1/CreateObservations", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 201
            acks[sent] = time.time()
            time.sleep(max(0.0, 1.0 / RATE - (time.time() - sent)))
        results = [out.get() for _ in ps]
        for p in ps:
            p.join()
    finally:
        server.stop()
    send_lat, ack_lat, complete, clients = [], [], 0, 0
    for _, gots in results:
        for g in gots:
            clients += 1
            complete += len(g) >= n
            for sent, at in g:
                send_lat.append((at - sent) * 1000)
                ack_lat.append((at - acks.get(sent, sent)) * 1000)
    q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1] if len(xs) > 1 else float("nan")
    print(f"fanout: {clients} SSE clients in {procs} processes, {n} events at {RATE:g}/s: {complete} clients got all {n}; "
          f"send-to-delivery p50 {q(send_lat, 50):.1f} ms, p99 {q(send_lat, 99):.1f} ms; "
          f"ack-to-delivery p50 {q(ack_lat, 50):.1f} ms, p99 {q(ack_lat, 99):.1f} ms ({len(send_lat)} deliveries)")


LATEST = int(os.environ.get("LATEST", 10000))
READINGS = int(os.environ.get("READINGS", 3))
ROUNDS = int(os.environ.get("ROUNDS", 50))


def bench_latest(work):
    server = Server(work)
    try:
        status, sensor = server.call("POST", "/sta/v1.1/Sensors",
                                     {"name": "s", "description": "s", "encodingType": "text/html", "metadata": "x"})
        assert status == 201, status
        status, prop = server.call("POST", "/sta/v1.1/ObservedProperties",
                                   {"name": "PM2.5", "definition": "p", "description": "p"})
        assert status == 201, status
        per_thing = 1000
        for t in range(0, LATEST, per_thing):
            body = {"name": f"lamppost {t // per_thing}", "description": "benchmark thing",
                    "Datastreams": [{"name": f"ds {t + i}", "description": "d",
                                     "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                                     "unitOfMeasurement": {"name": "n", "symbol": "n", "definition": "n"},
                                     "Sensor": {"@iot.id": sensor["@iot.id"]},
                                     "ObservedProperty": {"@iot.id": prop["@iot.id"]}}
                                    for i in range(min(per_thing, LATEST - t))]}
            status, _ = server.call("POST", "/sta/v1.1/Things", body)
            assert status == 201, status
        status, page = server.call("GET", f"/sta/v1.1/Datastreams?$select=id&$top={LATEST}")
        ids = [d["@iot.id"] for d in page["value"]]
        assert len(ids) == LATEST, len(ids)
        # READINGS readings each, in batches of at most 30,000; the last one of each is the latest.
        per = max(1, 30000 // READINGS)
        for k in range(0, LATEST, per):
            body = [{"Datastream": {"@iot.id": d}, "components": ["phenomenonTime", "result"],
                     "dataArray": [[iso(T0 * 1_000_000 + r * 60_000_000), d + r / 10] for r in range(READINGS)]}
                    for d in ids[k:k + per]]
            status, _ = server.call("POST", "/sta/v1.1/CreateObservations", body)
            assert status == 201, status
        full = f"/sta/v1.1/Datastreams?$top={LATEST}&$expand=Observations($top=1;$orderby=phenomenonTime%20desc)"
        lean = (f"/sta/v1.1/Datastreams?$top={LATEST}&$select=id,name&$expand=Observations($top=1;"
                f"$orderby=phenomenonTime%20desc;$select=phenomenonTime,result)")
        conn = server.conn()
        runs = {}
        for name, path in (("full", full), ("selected", lean)):
            times, size = [], 0
            for r in range(ROUNDS + 3):
                start = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                text = resp.read()
                took = (time.perf_counter() - start) * 1000
                assert resp.status == 200, resp.status
                if r >= 3:
                    times.append(took)
                size = len(text)
            doc = json.loads(text)
            got = {d["@iot.id"]: d["Observations"] for d in doc["value"]}
            assert len(got) == LATEST, len(got)
            for d, obs in got.items():
                assert len(obs) == 1 and abs(obs[0]["result"] - (d + (READINGS - 1) / 10)) < 1e-9, (d, obs)
            runs[name] = (times, size)
    finally:
        server.stop()
    q = lambda xs, p: statistics.quantiles(xs, n=100, method="inclusive")[p - 1]
    for name, (times, size) in runs.items():
        print(f"latest ({name}): the latest observation of each of {LATEST} datastreams ({READINGS} readings each), "
              f"{ROUNDS} requests of {size / 1e6:.2f} MB: p50 {q(times, 50):.1f} ms, p99 {q(times, 99):.1f} ms, "
              f"max {max(times):.1f} ms")


def main():
    which = sys.argv[1:] or ["http", "mqtt", "mqtt-bulk", "fanout", "latest"]
    print(f"binary: {binary()}")
    for w in which:
        with tempfile.TemporaryDirectory() as work:
            modes = {"http": bench_http, "mqtt": bench_mqtt, "mqtt-bulk": bench_mqtt_bulk, "fanout": bench_fanout,
                     "latest": bench_latest}
            modes[w](work)


if __name__ == "__main__":
    main()
