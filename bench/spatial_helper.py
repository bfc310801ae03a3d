#!/usr/bin/env python3
"""bench/spatial_helper.py: the request lists, answer checks and tile timings of bench/spatial.sh.

Standard library only. Subcommands:
  paths WORK COUNT           writes the request lists (one path a line) into WORK for the three
                             wrk workloads, the same windows, offsets and features in the same order
                             for every server: pages-{cd,pg}.txt, bbox-{cd,pg}.txt,
                             one-{cd,pg,pgjson}.txt ("pgjson": pygeoapi's GeoJSON provider, whose
                             ids are the features' own "id" property; its SQLite provider uses the
                             GeoPackage fid, which is citydata's id: both number the file's
                             features 1..COUNT)
  check NAME_A URL_A LIST_A NAME_B URL_B LIST_B N
                             fetches the first N paths of two parallel lists from two servers and
                             compares them: 200 and the same numberMatched (pages, bbox; asked
                             with resulttype=hits where a page leaves it out) or the
                             same feature (single features, by the "id" property); prints each
                             difference and exits 1 if any answer is not 200 (a count that differs
                             is printed, not fatal, so that it shows in the report)
  tiles URL LAYER GEOJSON ZMIN ZMAX CAP PASSES OUT
                             times GET /tiles/LAYER/z/x/y.mvt one request at a time on one kept-open
                             connection, for the tiles at each zoom that hold at least one feature
                             of GEOJSON (at most CAP a zoom, a seeded sample), PASSES times; writes
                             one line per zoom to OUT: "z tiles p50_ms p99_ms max_ms empty
                             truncated bytes_p50 bytes_max" (latencies over all passes)
  rss PID...                 prints "VmRSS VmHWM" in KiB summed over the given processes
  idle SECONDS PID...        waits until the processes have used no CPU for half a second (a
                             sync gunicorn worker goes on answering requests that wrk left queued
                             when it stopped), at most SECONDS; prints how long it waited
"""

import http.client
import json
import math
import random
import sys
import time
import urllib.parse

# Hong Kong, as the generator draws it (lon/lat, WGS 84).
HK = (113.84, 22.18, 114.38, 22.56)
SEED = 20261125


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def cmd_paths(work, count):
    rnd = random.Random(SEED)
    # (a) pages of 100 by offset, all of them in a shuffled order.
    offsets = list(range(0, count, 100))
    rnd.shuffle(offsets)
    write_lines(f"{work}/pages-cd.txt", [f"/ogc/collections/buildings/items?limit=100&offset={o}" for o in offsets])
    write_lines(f"{work}/pages-pg.txt", [f"/collections/buildings/items?f=json&limit=100&offset={o}" for o in offsets])
    # (b) 500 bbox windows of 0.005 to 0.04 degrees a side (about 0.5 to 4 km) over Hong Kong,
    # the first page of 100 of each.
    boxes = []
    for _ in range(500):
        w = rnd.uniform(0.005, 0.04)
        h = rnd.uniform(0.005, 0.04)
        x = rnd.uniform(HK[0], HK[2] - w)
        y = rnd.uniform(HK[1], HK[3] - h)
        boxes.append(f"{x:.5f},{y:.5f},{x + w:.5f},{y + h:.5f}")
    write_lines(f"{work}/bbox-cd.txt", [f"/ogc/collections/buildings/items?limit=100&bbox={b}" for b in boxes])
    write_lines(f"{work}/bbox-pg.txt", [f"/collections/buildings/items?f=json&limit=100&bbox={b}" for b in boxes])
    # (c) 2,000 random features.
    ids = [rnd.randint(1, count) for _ in range(2000)]
    write_lines(f"{work}/one-cd.txt", [f"/ogc/collections/buildings/items/{i}" for i in ids])
    write_lines(f"{work}/one-pg.txt", [f"/collections/buildings/items/{i}?f=json" for i in ids])
    write_lines(f"{work}/one-pgjson.txt", [f"/collections/buildings/items/BLDG-{i:06d}?f=json" for i in ids])


def connect(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def fetch(conn, path):
    conn.request("GET", path, headers={"Accept": "application/json"})
    r = conn.getresponse()
    body = r.read()
    return r.status, body, r


def summary(status, body):
    if status != 200:
        return None
    doc = json.loads(body)
    if doc.get("type") == "Feature":
        return ("feature", doc.get("properties", {}).get("id"))
    ids = [f.get("properties", {}).get("id") for f in doc.get("features", [])]
    return ("page", doc.get("numberMatched"), len(ids), ids)


def with_count(conn, path, r):
    if r[0] != "page" or r[1] is not None:
        return r
    status, body, _ = fetch(conn, path + "&resulttype=hits")
    if status != 200:
        return r
    return (r[0], json.loads(body).get("numberMatched"), r[2], r[3])


def cmd_check(name_a, url_a, list_a, name_b, url_b, list_b, n):
    with open(list_a, encoding="utf-8") as f:
        pa = [l.strip() for l in f if l.strip()][:n]
    with open(list_b, encoding="utf-8") as f:
        pb = [l.strip() for l in f if l.strip()][:n]
    ca, cb = connect(url_a), connect(url_b)
    bad = 0
    differ = 0
    for a, b in zip(pa, pb):
        sa, ba, _ = fetch(ca, a)
        sb, bb, _ = fetch(cb, b)
        if sa != 200 or sb != 200:
            print(f"  NOT 200: {name_a} {sa} {a} | {name_b} {sb} {b}")
            bad += 1
            continue
        ra, rb = summary(sa, ba), summary(sb, bb)
        # pygeoapi's SQLite provider leaves numberMatched out of a page; it gives it for
        # resulttype=hits.
        ra, rb = with_count(ca, a, ra), with_count(cb, b, rb)
        if ra[0] == "feature":
            if ra != rb:
                differ += 1
                print(f"  DIFFERENT FEATURE: {name_a} {ra[1]} ({a}) | {name_b} {rb[1]} ({b})")
        else:
            if ra[1] != rb[1] or ra[2] != rb[2]:
                differ += 1
                print(f"  DIFFERENT COUNT: {name_a} numberMatched {ra[1]}, returned {ra[2]} | "
                      f"{name_b} numberMatched {rb[1]}, returned {rb[2]} ({a})")
            elif sorted(x or "" for x in ra[3]) != sorted(x or "" for x in rb[3]):
                # Same count; the order of a page may differ (neither promises one for a bbox).
                same = len(set(ra[3]) & set(rb[3]))
                print(f"  same numberMatched {ra[1]}, {same} of {ra[2]} features in common on the page ({a})")
    print(f"  checked {len(pa)}: {bad} not 200, {differ} different counts or features "
          f"({name_a} vs {name_b})")
    return 1 if bad else 0


def lonlat_to_tile(lon, lat, z):
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    lat = max(min(lat, 85.0511), -85.0511)
    r = math.radians(lat)
    y = int((1.0 - math.log(math.tan(r) + 1.0 / math.cos(r)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def points_of(geom):
    t, c = geom["type"], geom["coordinates"]
    if t == "Point":
        yield c
    elif t in ("MultiPoint", "LineString"):
        yield from c
    elif t in ("MultiLineString", "Polygon"):
        for r in c:
            yield from r
    elif t == "MultiPolygon":
        for p in c:
            for r in p:
                yield from r


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def cmd_tiles(url, layer, geojson, zmin, zmax, cap, passes, out):
    with open(geojson, encoding="utf-8") as f:
        feats = json.load(f)["features"]
    pts = [p for ft in feats if ft.get("geometry") for p in points_of(ft["geometry"])]
    conn = connect(url)
    lines = []
    for z in range(zmin, zmax + 1):
        tiles = sorted({lonlat_to_tile(p[0], p[1], z) for p in pts})
        held = len(tiles)
        if len(tiles) > cap:
            tiles = sorted(random.Random(SEED + z).sample(tiles, cap))
        lat_ms, sizes, empty, truncated = [], [], 0, 0
        for _ in range(passes):
            for x, y in tiles:
                path = f"/tiles/{layer}/{z}/{x}/{y}.mvt"
                t0 = time.perf_counter()
                status, body, resp = fetch(conn, path)
                dt = (time.perf_counter() - t0) * 1000.0
                if status not in (200, 204):
                    print(f"tile {path}: HTTP {status}", file=sys.stderr)
                    return 1
                lat_ms.append(dt)
                sizes.append(len(body))
                empty += status == 204
                truncated += resp.getheader("x-tile-truncated") == "true"
        lat_ms.sort()
        sizes.sort()
        line = (f"{z} {len(tiles)} {pct(lat_ms, 50):.2f} {pct(lat_ms, 99):.2f} {lat_ms[-1]:.2f} "
                f"{empty // passes} {truncated // passes} {pct(sizes, 50)} {sizes[-1]} {held}")
        print(f"  z{z}: {len(tiles)} tiles (of {held} holding a feature) x {passes}: p50 {pct(lat_ms, 50):.2f} ms, "
              f"p99 {pct(lat_ms, 99):.2f} ms, max {lat_ms[-1]:.2f} ms; median size {pct(sizes, 50)} B, "
              f"max {sizes[-1]} B; truncated {truncated // passes}", file=sys.stderr)
        lines.append(line)
    write_lines(out, lines)
    return 0


def cmd_rss(pids):
    rss = hwm = 0
    for pid in pids:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
    print(rss, hwm)
    return 0


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def cmd_idle(limit, pids):
    t0 = time.monotonic()
    last = cpu_ticks(pids)
    while time.monotonic() - t0 < limit:
        time.sleep(0.5)
        now = cpu_ticks(pids)
        if now == last:
            break
        last = now
    print(f"{time.monotonic() - t0:.1f}")
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "paths":
        cmd_paths(args[0], int(args[1]))
        return 0
    if cmd == "check":
        return cmd_check(*args[:6], int(args[6]))
    if cmd == "tiles":
        return cmd_tiles(args[0], args[1], args[2], int(args[3]), int(args[4]), int(args[5]), int(args[6]), args[7])
    if cmd == "idle":
        return cmd_idle(float(args[0]), args[1:])
    if cmd == "rss":
        return cmd_rss(args)
    print(f"unknown subcommand {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
