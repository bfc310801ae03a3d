#!/usr/bin/env python3
"""Helpers of bench/query.sh (standard library only).

  query_helper.py paths DIR ROWS_PATH DS_TABLE_PATH
      Writes the request paths that wrk cycles through (bench/cycle.lua), the same values in the
      same order for both servers:
        filtered-cd.txt, filtered-cd-exact.txt, filtered-ds.txt: a page of 100 rows filtered on
          each of the 18 districts in turn, with its total (citydata's default capped total, its
          exact total, Datasette's count);
        key-cd.txt, key-ds.txt: 10,000 random keys (_id) in 1..1,000,000, one row each.
  query_helper.py check KIND BASE PATHS N COUNTS_JSON
      Fetches the first N paths of PATHS from BASE and checks each answer (200, JSON, and the
      content KIND asks: cd-filtered, cd-filtered-exact, ds-filtered, cd-key, ds-key, search);
      COUNTS_JSON maps each district to its exact row count. Exits non-zero on the first failure.
  query_helper.py latency BASE QUERIES N
      One keep-alive connection, N package_search requests cycling through QUERIES one after the
      other (no concurrency): prints "p50_ms p99_ms max_ms mean_ms", checks every answer.
  query_helper.py import-dump URL DB CREATE_SQL
      Fallback for building Datasette's table when sqlite3 cannot ATTACH citydata's database:
      streams citydata's CSV dump from URL and inserts it into DB with CREATE_SQL's table, typed
      by the declared column types (INTEGER, REAL, TEXT), `_id` as the INTEGER PRIMARY KEY.
"""
import csv
import http.client
import io
import json
import random
import re
import sqlite3
import sys
import time
import urllib.parse
import urllib.request

DISTRICTS = ["Central and Western", "Wan Chai", "Eastern", "Southern", "Yau Tsim Mong", "Sham Shui Po",
             "Kowloon City", "Wong Tai Sin", "Kwun Tong", "Kwai Tsing", "Tsuen Wan", "Tuen Mun",
             "Yuen Long", "North", "Tai Po", "Sha Tin", "Sai Kung", "Islands"]


def paths(out, rows_path, ds_table):
    enc = urllib.parse.quote
    with open(f"{out}/filtered-cd.txt", "w") as a, open(f"{out}/filtered-cd-exact.txt", "w") as b, \
            open(f"{out}/filtered-ds.txt", "w") as c:
        for d in DISTRICTS:
            a.write(f"{rows_path}?district={enc(d)}&_limit=100\n")
            b.write(f"{rows_path}?district={enc(d)}&_limit=100&_total=exact\n")
            c.write(f"{ds_table}.json?district={enc(d)}&_size=100&_nosuggest=1&_nofacet=1\n")
    rnd = random.Random(1)
    keys = [rnd.randint(1, 1_000_000) for _ in range(10_000)]
    with open(f"{out}/key-cd.txt", "w") as a, open(f"{out}/key-ds.txt", "w") as b:
        for k in keys:
            a.write(f"{rows_path}?_id={k}\n")
            b.write(f"{ds_table}/{k}.json\n")


def fail(msg):
    sys.exit(f"check failed: {msg}")


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        fail(f"{path}: HTTP {r.status}: {body[:300]!r}")
    try:
        return json.loads(body)
    except ValueError:
        fail(f"{path}: not JSON: {body[:300]!r}")


def district_of(path):
    m = re.search(r"district=([^&]*)", path)
    return urllib.parse.unquote_plus(m.group(1))


def check_one(kind, path, doc, counts):
    if kind.endswith("filtered") or kind.endswith("filtered-exact"):
        d = district_of(path)
        want = counts[d]
        if kind.startswith("cd"):
            recs = doc["records"]
            if len(recs) != 100 or any(r["district"] != d for r in recs):
                fail(f"{path}: expected 100 rows of {d}, got {len(recs)}")
            total, exact = doc["total"], doc["total_exact"]
            if kind == "cd-filtered-exact":
                if total != want or exact is not True:
                    fail(f"{path}: total {total} (exact {exact}), expected exactly {want}")
            elif exact and total != want:
                # An equality filter on a column whose values were counted at publish: exact.
                fail(f"{path}: total {total} marked exact, expected {want}")
            elif not exact and not (0.8 * want <= total <= 1.2 * want):
                # Otherwise, over the cap of 10,000 the default total is an estimate, marked as such.
                fail(f"{path}: total {total} (exact {exact}), expected an estimate near {want}")
        else:
            rows = doc["rows"]
            col = doc["columns"].index("district")
            if len(rows) != 100 or any(r[col] != d for r in rows):
                fail(f"{path}: expected 100 rows of {d}, got {len(rows)}")
            if doc.get("filtered_table_rows_count") != want:
                fail(f"{path}: filtered_table_rows_count {doc.get('filtered_table_rows_count')}, expected {want}")
    elif kind == "cd-key":
        k = int(path.rsplit("=", 1)[1])
        recs = doc["records"]
        if len(recs) != 1 or recs[0]["_id"] != k or recs[0]["id"] != k:
            fail(f"{path}: expected the one row with _id {k}, got {recs[:2]}")
    elif kind == "ds-key":
        k = int(path.rsplit("/", 1)[1].split(".")[0])
        rows = doc["rows"]
        if len(rows) != 1 or rows[0][0] != k or rows[0][1] != k:
            fail(f"{path}: expected the one row with _id {k}, got {rows[:2]}")
    elif kind == "search":
        if doc.get("success") is not True or "count" not in doc["result"]:
            fail(f"{path}: not a successful package_search: {str(doc)[:300]}")
    else:
        fail(f"unknown kind {kind}")


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def check(kind, base, paths_file, n, counts_file):
    counts = json.load(open(counts_file)) if counts_file != "-" else {}
    lines = [line.rstrip("\n") for line in open(paths_file) if line.strip()]
    conn = connect(base)
    for path in lines[:n]:
        check_one(kind, path, get(conn, path), counts)
    print(f"ok: {min(n, len(lines))} answers of {kind} checked")


def latency(base, queries_file, n):
    queries = [line.strip() for line in open(queries_file) if line.strip()]
    conn = connect(base)
    times = []
    hits = 0
    for i in range(n):
        path = "/api/3/action/package_search?" + queries[i % len(queries)]
        t = time.perf_counter()
        doc = get(conn, path)
        times.append(time.perf_counter() - t)
        check_one("search", path, doc, {})
        hits += doc["result"]["count"] > 0
    if hits < n // 2:
        fail(f"only {hits} of {n} searches found anything: is the catalogue there?")
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000  # noqa: E731
    print(f"{pct(0.5):.2f} {pct(0.99):.2f} {times[-1] * 1000:.2f} {sum(times) / len(times) * 1000:.2f}")


def import_dump(url, db, create_sql):
    con = sqlite3.connect(db)
    con.execute(create_sql)
    table = re.match(r'\s*CREATE TABLE\s+(?:IF NOT EXISTS\s+)?("[^"]+"|\w+)', create_sql, re.I).group(1)
    cols = [(r[1], (r[2] or "").upper()) for r in con.execute(f"PRAGMA table_info({table})")]
    # Booleans are stored as 0/1 in INTEGER columns and written as true/false in the dump.
    booleans = {"true": 1, "false": 0}
    conv = {"INTEGER": lambda v: booleans[v] if v in booleans else int(v), "REAL": float}

    def typed(row):
        return [None if v == "" else conv[t](v) if t in conv else v for v, (_, t) in zip(row, cols)]

    with urllib.request.urlopen(url) as r:
        reader = csv.reader(io.TextIOWrapper(r, encoding="utf-8", newline=""))
        header = next(reader)
        if header != [c for c, _ in cols]:
            fail(f"dump columns {header} differ from the table's {[c for c, _ in cols]}")
        marks = ",".join("?" * len(cols))
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", (typed(row) for row in reader))
    con.commit()
    con.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "paths":
        paths(*args)
    elif cmd == "check":
        check(args[0], args[1], args[2], int(args[3]), args[4])
    elif cmd == "latency":
        latency(args[0], args[1], int(args[2]))
    elif cmd == "import-dump":
        import_dump(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
