#!/usr/bin/env bash
# bench/query.sh: how many queries a second does `citydata serve` answer, next to Datasette serving
# the same rows? And how fast are catalogue search and a full CSV export?
#
# Input: bench/gen_csv.py 1000000, i.e. 1,000,000 rows of 8 columns (~60 MB), published with
# `citydata publish FILE --dataset bench`, plus a catalogue of 10,000 small datasets made by
# bench/gen_catalog.py (bilingual titles and descriptions, 12 organisations, tags), published one by
# one with the CLI, two at a time, into the same database (10,001 datasets in all).
# Datasette serves the very same typed table: its database is made with sqlite3 by ATTACHing
# citydata's and copying the resource's table with citydata's own CREATE TABLE (STRICT, `_id
# INTEGER PRIMARY KEY`, 16 KiB pages like citydata's), so a lookup by key is a rowid lookup in both
# and neither has any other index. (If ATTACH fails, the table is filled from citydata's CSV dump.)
# Datasette runs `datasette serve --immutable` with every other setting at its default.
#
# Workloads, each `wrk -t2 -c16 -d${DURATION}s --timeout 10s --latency` with bench/cycle.lua, which
# cycles through a list of paths (the same values in the same order for both servers):
#   (a) a filtered page of 100 rows with its total, on each of the 18 districts in turn (each
#       matches 1/18 of the rows, ~55,600):
#         citydata  /api/v1/datasets/bench/resources/R/rows?district=D&_limit=100
#                   (its default total: exact from the value counts made at publish for an
#                   equality filter on a counted column; otherwise exact up to 10,000, then estimated)
#         citydata  the same with &_total=exact (an exact count, like Datasette's)
#         Datasette /datasette/bench.json?district=D&_size=100&_nosuggest=1&_nofacet=1
#   (b) one row by key, 10,000 random keys in turn:
#         citydata  /api/v1/datasets/bench/resources/R/rows?_id=K
#         Datasette /datasette/bench/K.json (its row page)
#   package_search over the 10,001 datasets, cycling through 149 queries (English words, Chinese
#       words, fq on organization and tags, facet.field, sort, paging): wrk as above (16
#       connections: latency includes queueing), and one connection sending 2,000 requests one
#       after the other from Python (the latency of a search on an idle server).
#   CSV export: `curl` of /datastore/dump/ID (all 1,000,000 rows) EXPORT_RUNS times, its rows a
#       second, with the server's RSS sampled every 20 ms; for scale, one run of Datasette's
#       streamed CSV export (/datasette/bench.csv?_stream=on&_size=max).
# Runs are interleaved, citydata and Datasette in turn, ROUNDS times (each workload once per round);
# the table gives the median round by requests a second. Before timing, the first answers of every
# list are fetched and checked (200; 100 rows of the right district and the right total; the one
# row with the right key; a successful search), and after every wrk run any non-2xx/3xx answer or
# socket error fails the script, so that an error cannot pass for a fast run.
#
# Printed: per workload the requests a second of each server, the ratio citydata/Datasette, p99
# latency, errors; then the search and export figures.
#
# Run (from anywhere). The first run in a BENCH_DIR takes ~20 minutes, most of it publishing the
# catalogue (767 s on 2 cores: each publish costs more as the database holds more tables, as SQLite
# parses the whole schema on opening and on ALTER TABLE ... RENAME); later runs in the same
# BENCH_DIR reuse the database and take ~6 minutes:
#   bench/query.sh
#   CITYDATA_BIN=/path/to/citydata BENCH_DIR=/tmp/bench-work ROUNDS=3 KEEP=1 bench/query.sh
# Environment:
#   CITYDATA_BIN  the binary to measure (default: `cargo build --release -p citydata` once and use
#                 the release binary under CARGO_TARGET_DIR, or target/)
#   BENCH_DIR     work directory (default: a new `mktemp -d`); a CSV and a citydata database (with
#                 the 1,000,000 rows and the catalogue) already there are reused
#   ROUNDS        rounds of the wrk workloads (default 3)
#   DURATION      seconds of each wrk run (default 10)
#   DATASETS      datasets in the search catalogue (default 10000)
#   EXPORT_RUNS   runs of the CSV export (default 3)
#   KEEP=1        keep BENCH_DIR and its files (default: remove the scratch files, and BENCH_DIR too
#                 when the script made it)
# Installs, if missing: wrk, sqlite3 and curl (apt-get), datasette (pip).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || (cd "$script_dir/.." && pwd))

ROWS=1000000
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
DATASETS=${DATASETS:-10000}
EXPORT_RUNS=${EXPORT_RUNS:-3}
KEEP=${KEEP:-0}
made_dir=0
if [ -z "${BENCH_DIR:-}" ]; then
    BENCH_DIR=$(mktemp -d)
    made_dir=1
fi
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
work=$BENCH_DIR/run # scratch files of this run
rm -rf "$work"
mkdir -p "$work"

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- cleaning up -------------------------------------------------------------------------------
cd_pid='' ds_pid=''
cleanup() {
    local pid
    for pid in $cd_pid $ds_pid; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP" != 1 ]; then
        if [ "$made_dir" = 1 ]; then rm -rf "$BENCH_DIR"; else rm -rf "$work"; fi
    fi
}
trap cleanup EXIT

# --- the tools ---------------------------------------------------------------------------------
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
apt_updated=0
apt_install() {
    log "installing Debian package(s): $*"
    if ! "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null; then
        if [ "$apt_updated" = 0 ]; then "${sudo_cmd[@]}" apt-get update >/dev/null; apt_updated=1; fi
        "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null
    fi
}
command -v wrk >/dev/null || apt_install wrk
command -v sqlite3 >/dev/null || apt_install sqlite3
command -v curl >/dev/null || apt_install curl
python3 -c 'import datasette' 2>/dev/null || { log "installing datasette (pip)"; python3 -m pip install --quiet datasette; }
helper=(python3 "$root/bench/query_helper.py")

if [ -n "${CITYDATA_BIN:-}" ]; then
    citydata=$CITYDATA_BIN
else
    log "building citydata (cargo build --release -p citydata)"
    (cd "$root" && cargo build --release -p citydata)
    citydata=${CARGO_TARGET_DIR:-$root/target}/release/citydata
fi
[ -x "$citydata" ] || die "no citydata binary at $citydata"

# --- the data ----------------------------------------------------------------------------------
csv=$BENCH_DIR/rows-$ROWS.csv
if [ ! -s "$csv" ]; then
    log "generating $csv ($ROWS rows)"
    python3 "$root/bench/gen_csv.py" "$ROWS" >"$csv.part"
    mv "$csv.part" "$csv"
fi

db=$BENCH_DIR/citydata.db
catalogue=$BENCH_DIR/catalogue-$DATASETS
publish_note=$BENCH_DIR/catalogue-publish-seconds.txt
have=0
if [ -s "$db" ]; then
    have=$(sqlite3 "$db" "SELECT (SELECT COUNT(*) FROM datasets) || ' ' || IFNULL((SELECT v.row_count FROM versions v JOIN resources r ON r.id = v.resource_id JOIN datasets d ON d.id = r.dataset_id WHERE d.slug = 'bench'), 0)" 2>/dev/null || echo 0)
fi
if [ "$have" = "$((DATASETS + 1)) $ROWS" ] && [ -s "$publish_note" ]; then
    log "reusing $db ($DATASETS datasets and the $ROWS rows)"
    publish_reused=1
else
    publish_reused=0
    rm -f "$db" "$db-wal" "$db-shm"
    log "publishing $csv"
    "$citydata" publish "$csv" --dataset bench --db "$db" >"$work/publish.log"
    log "generating $DATASETS small datasets in $catalogue"
    rm -rf "$catalogue"
    python3 "$root/bench/gen_catalog.py" "$DATASETS" "$catalogue"
    log "publishing them one by one with the CLI, two at a time (this takes a few minutes)"
    t0=$(date +%s.%N)
    # Each line of slugs.txt is "NNNNN SLUG"; a failure stops xargs (exit 255).
    xargs -P2 -L1 sh -c '"$0" publish "$1/$2.csv" --dataset "$3" --meta "$1/$2.json" --resource readings --db "$4" >/dev/null || exit 255' \
        "$citydata" "$catalogue" <<<"$(awk -v db="$db" '{ print $1, $2, db }' "$catalogue/slugs.txt")" ||
        die "publishing the catalogue failed"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", b - a }' >"$publish_note"
    n=$(sqlite3 "$db" "SELECT COUNT(*) FROM datasets")
    [ "$n" = "$((DATASETS + 1))" ] || die "$n datasets in $db, expected $((DATASETS + 1))"
fi
cp "$catalogue/queries.txt" "$work/queries.txt" || die "no search queries in $catalogue"

# --- citydata ----------------------------------------------------------------------------------
"$citydata" serve --db "$db" --port 0 --no-demo >"$work/citydata.out" 2>"$work/citydata.err" &
cd_pid=$!
for _ in $(seq 100); do
    [ -s "$work/citydata.out" ] && break
    sleep 0.1
done
cd_url=$(head -1 "$work/citydata.out" | grep -o 'http://[^ ]*' | sed 's#/$##') || true
[ -n "$cd_url" ] || { cat "$work/citydata.err" >&2; die "citydata did not start"; }
read -r rid rname < <(curl -fsS "$cd_url/api/v1/datasets/bench" |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["resources"][0]; print(r["id"], r["name"])')
[ -n "$rid" ] || die "no resource in dataset bench"
rows_path=/api/v1/datasets/bench/resources/$rname/rows

# --- Datasette's copy of the same table ----------------------------------------------------------
dsdb=$BENCH_DIR/datasette.db
rm -f "$dsdb"
create=$(sqlite3 "$db" "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '$rid'")
create=${create/\"$rid\"/bench}
[[ $create == *'"_id" INTEGER PRIMARY KEY'* ]] || die "unexpected table definition: $create"
log "copying the table into $dsdb for Datasette"
if ! sqlite3 "$dsdb" "PRAGMA page_size = 16384; ATTACH '$db' AS c; $create; INSERT INTO bench SELECT * FROM c.\"$rid\";" 2>"$work/attach.err"; then
    log "ATTACH failed ($(head -1 "$work/attach.err")); importing citydata's CSV dump instead"
    rm -f "$dsdb"
    sqlite3 "$dsdb" "PRAGMA page_size = 16384; VACUUM"
    "${helper[@]}" import-dump "$cd_url/datastore/dump/$rid" "$dsdb" "$create"
fi
[ "$(sqlite3 "$dsdb" 'SELECT COUNT(*) FROM bench')" = "$ROWS" ] || die "Datasette's table does not have $ROWS rows"
sqlite3 "$dsdb" "SELECT json_group_object(district, n) FROM (SELECT district, COUNT(*) AS n FROM bench GROUP BY district)" >"$work/counts.json"

ds_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m datasette serve --immutable "$dsdb" --host 127.0.0.1 --port "$ds_port" >"$work/datasette.out" 2>"$work/datasette.err" &
ds_pid=$!
ds_url=http://127.0.0.1:$ds_port
for _ in $(seq 150); do
    curl -fs "$ds_url/-/versions.json" >"$work/ds-versions.json" 2>/dev/null && break
    sleep 0.2
done
[ -s "$work/ds-versions.json" ] || { cat "$work/datasette.err" >&2; die "Datasette did not start"; }
ds_version=$(python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); print(v["datasette"]["version"], "on SQLite", v["sqlite"]["version"])' "$work/ds-versions.json")

# --- the request lists, checked ----------------------------------------------------------------
"${helper[@]}" paths "$work" "$rows_path" /datasette/bench
check() { "${helper[@]}" check "$@" "$work/counts.json" >&2 || die "a check failed"; }
check cd-filtered "$cd_url" "$work/filtered-cd.txt" 18
check cd-filtered-exact "$cd_url" "$work/filtered-cd-exact.txt" 18
check ds-filtered "$ds_url" "$work/filtered-ds.txt" 18
check cd-key "$cd_url" "$work/key-cd.txt" 200
check ds-key "$ds_url" "$work/key-ds.txt" 200
sed 's#^#/api/3/action/package_search?#' "$work/queries.txt" >"$work/search-cd.txt"
check search "$cd_url" "$work/search-cd.txt" 1000

# --- measuring ---------------------------------------------------------------------------------
results=$work/results.txt
: >"$results"
# load NAME URL PATHS: one wrk run; appends "NAME ROUND REQ_PER_S P50_MS P99_MS ERRORS" to $results.
load() {
    local name=$1 url=$2 paths=$3 out=$work/wrk-$1-$round.txt
    wrk -t2 -c16 -d"${DURATION}s" --timeout 10s --latency -s "$root/bench/cycle.lua" "$url" -- "$paths" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed on $name"; }
    local rps p50 p99 non2xx sock
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    sock=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
    local errors=$((${non2xx:-0} + ${sock:-0}))
    [ -n "$rps" ] || { cat "$out" >&2; die "no result from wrk on $name"; }
    log "$(printf '  %-22s %10s req/s  p50 %9s  p99 %9s  errors %s' "$name" "$rps" "$p50" "$p99" "$errors")"
    ((errors == 0)) || { cat "$out" >&2; die "$name: $errors errors (non-2xx answers or socket errors)"; }
    echo "$name $round $rps $(to_ms "$p50") $(to_ms "$p99") $errors" >>"$results"
}
# to_ms 1.23ms|456.00us|1.05s -> milliseconds
to_ms() {
    awk -v t="$1" 'BEGIN {
        if (t ~ /us$/) { sub(/us$/, "", t); printf "%.3f", t / 1000 }
        else if (t ~ /ms$/) { sub(/ms$/, "", t); printf "%.2f", t }
        else if (t ~ /m$/) { sub(/m$/, "", t); printf "%.0f", t * 60000 }
        else { sub(/s$/, "", t); printf "%.0f", t * 1000 } }'
}

log "citydata: $citydata ($cd_url)"
log "Datasette $ds_version ($ds_url), --immutable, default settings"
log "load: wrk -t2 -c16 -d${DURATION}s --timeout 10s --latency -s bench/cycle.lua; $ROUNDS round(s)"
log "warming up (2 s each, not counted)"
for pair in "$cd_url filtered-cd" "$ds_url filtered-ds" "$cd_url key-cd" "$ds_url key-ds" "$cd_url search-cd"; do
    read -r u f <<<"$pair"
    wrk -t2 -c16 -d2s --timeout 10s -s "$root/bench/cycle.lua" "$u" -- "$work/$f.txt" >/dev/null 2>&1 || true
done
for ((round = 1; round <= ROUNDS; round++)); do
    log "--- round $round"
    load citydata-filtered "$cd_url" "$work/filtered-cd.txt"
    load datasette-filtered "$ds_url" "$work/filtered-ds.txt"
    load citydata-filtered-exact "$cd_url" "$work/filtered-cd-exact.txt"
    load citydata-key "$cd_url" "$work/key-cd.txt"
    load datasette-key "$ds_url" "$work/key-ds.txt"
    load citydata-search "$cd_url" "$work/search-cd.txt"
done

log "package_search, one connection, 2,000 requests one after the other"
read -r s1_p50 s1_p99 s1_max s1_mean < <("${helper[@]}" latency "$cd_url" "$work/queries.txt" 2000) ||
    die "the search latency run failed"

# export_run URL OUT: a full download into OUT; sets secs and bytes (curl's), failing on HTTP errors.
export_run() {
    curl -fsS -o "$2" -w '%{time_total} %{size_download}\n' "$1" >"$work/curl.txt" || die "export of $1 failed"
    read -r secs bytes <"$work/curl.txt"
}
# rss_sampler PID OUT: VmRSS (KiB) every 20 ms into OUT until killed.
rss_sampler() {
    while :; do
        awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || return 0
        sleep 0.02
    done >"$2"
}
rss_now() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

log "CSV export: /datastore/dump/$rid, $EXPORT_RUNS run(s)"
rss_before=$(rss_now "$cd_pid")
: >"$work/export.txt"
for ((i = 1; i <= EXPORT_RUNS; i++)); do
    rss_sampler "$cd_pid" "$work/rss-$i.txt" &
    sampler=$!
    export_run "$cd_url/datastore/dump/$rid" "$work/dump.csv"
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    lines=$(wc -l <"$work/dump.csv")
    [ "$lines" = "$((ROWS + 1))" ] || die "the dump has $lines lines, expected $((ROWS + 1))"
    peak=$(sort -n "$work/rss-$i.txt" | tail -1)
    log "$(printf '  citydata dump: %.2f s, %d bytes, %d rows/s, RSS peak %d MB' "$secs" "$bytes" "$(awk -v s="$secs" -v r="$ROWS" 'BEGIN { printf "%d", r / s }')" $((peak / 1024)))"
    echo "$secs $bytes $peak" >>"$work/export.txt"
done
rss_after=$(rss_now "$cd_pid")
export_run "$ds_url/datasette/bench.csv?_stream=on&_size=max" "$work/ds-dump.csv"
ds_secs=$secs ds_bytes=$bytes
ds_lines=$(wc -l <"$work/ds-dump.csv")
[ "$ds_lines" = "$((ROWS + 1))" ] || die "Datasette's CSV has $ds_lines lines, expected $((ROWS + 1))"
log "$(printf '  Datasette CSV stream: %.2f s, %d bytes' "$ds_secs" "$ds_bytes")"

# --- the table ---------------------------------------------------------------------------------
# median NAME -> "req/s p50 p99 errors" of the round with the median requests a second (the lower
# middle one for an even count), and the errors summed over the rounds.
median() {
    awk -v t="$1" 'BEGIN { n = 0; e = 0 }
        $1 == t { r[n] = $3; l[n] = $4 " " $5; e += $6; n++ }
        END {
            if (n == 0) { print "- - - -"; exit }
            for (i = 0; i < n; i++) idx[i] = i
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (r[idx[j]] < r[idx[i]]) { x = idx[i]; idx[i] = idx[j]; idx[j] = x }
            m = idx[int((n - 1) / 2)]
            printf "%.0f %s %d\n", r[m], l[m], e
        }' "$results"
}
read -r cf_rps cf_p50 cf_p99 cf_err < <(median citydata-filtered)
read -r ce_rps ce_p50 ce_p99 ce_err < <(median citydata-filtered-exact)
read -r df_rps df_p50 df_p99 df_err < <(median datasette-filtered)
read -r ck_rps ck_p50 ck_p99 ck_err < <(median citydata-key)
read -r dk_rps dk_p50 dk_p99 dk_err < <(median datasette-key)
read -r cs_rps cs_p50 cs_p99 cs_err < <(median citydata-search)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.1fx", a / b; else print "n/a" }'; }

echo
echo "Queries on one table of $ROWS rows x 8 columns, citydata and Datasette side by side"
echo "(wrk -t2 -c16 -d${DURATION}s, median of $ROUNDS round(s) by req/s; p50/p99 latency in ms of that round;"
echo " errors: non-2xx answers and socket errors over all rounds; machine: $(nproc) cores, shared with wrk)"
printf '%-38s %12s %8s %8s %12s %8s %8s %8s %7s\n' workload "citydata r/s" "p50" "p99" "Datasette r/s" "p50" "p99" ratio errors
printf '%-38s %12s %8s %8s %12s %8s %8s %8s %7s\n' "(a) page of 100 of ~55,600, total" "$cf_rps" "$cf_p50" "$cf_p99" "$df_rps" "$df_p50" "$df_p99" "$(ratio "$cf_rps" "$df_rps")" "$((cf_err + df_err))"
printf '%-38s %12s %8s %8s %12s %8s %8s %8s %7s\n' "(a) the same, _total=exact" "$ce_rps" "$ce_p50" "$ce_p99" "$df_rps" "$df_p50" "$df_p99" "$(ratio "$ce_rps" "$df_rps")" "$((ce_err + df_err))"
printf '%-38s %12s %8s %8s %12s %8s %8s %8s %7s\n' "(b) one row by key" "$ck_rps" "$ck_p50" "$ck_p99" "$dk_rps" "$dk_p50" "$dk_p99" "$(ratio "$ck_rps" "$dk_rps")" "$((ck_err + dk_err))"
echo "(a): citydata answers the total of an equality filter exactly from the value counts it made at publish"
echo "     (columns of up to 1,000 distinct values); other filters count exactly up to 10,000, then estimate."
echo
publish_secs=$(cat "$publish_note")
echo "package_search over $((DATASETS + 1)) datasets (149 queries in turn)"
printf '  16 connections (wrk):        %s req/s, p50 %s ms, p99 %s ms (includes queueing), errors %s\n' "$cs_rps" "$cs_p50" "$cs_p99" "$cs_err"
printf '  1 connection, 2,000 in turn: p50 %s ms, p99 %s ms, max %s ms, mean %s ms (a search on an idle server)\n' "$s1_p50" "$s1_p99" "$s1_max" "$s1_mean"
if [ "$publish_reused" = 1 ]; then
    printf '  publishing the %d datasets (CLI, 2 at a time): %s s, measured when %s was built\n' "$DATASETS" "$publish_secs" "$db"
else
    printf '  publishing the %d datasets (CLI, 2 at a time): %s s\n' "$DATASETS" "$publish_secs"
fi
echo
awk -v rows="$ROWS" -v before="$rss_before" -v after="$rss_after" -v dss="$ds_secs" -v runs="$EXPORT_RUNS" '
    BEGIN { n = 0; peak = 0 }
    { s[n] = $1; b = $2; if ($3 > peak) peak = $3; n++ }
    END {
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (s[j] < s[i]) { x = s[i]; s[i] = s[j]; s[j] = x }
        med = s[int((n - 1) / 2)]
        printf "CSV export of all %d rows (/datastore/dump, %d run(s), median)\n", rows, runs
        printf "  citydata:  %.2f s, %.0f rows/s, %.0f MB/s; server RSS %d MB before, %d MB peak during, %d MB after\n", med, rows / med, b / med / 1e6, before / 1024, peak / 1024, after / 1024
        printf "  Datasette: %.2f s, %.0f rows/s (bench.csv?_stream=on, one run)\n", dss, rows / dss
    }' "$work/export.txt"
echo
echo "citydata: $citydata"
echo "Datasette $ds_version, --immutable, default settings (num_sql_threads 3, sql_time_limit_ms 1000)"
echo "raw wrk outputs: $work (kept with KEEP=1)"
