#!/usr/bin/env bash
# bench/spatial.sh: how many OGC API Features requests a second does `citydata serve` answer, next
# to pygeoapi serving the same 50,000 buildings? And how long does a vector tile take to make?
#
# Input: `citydata generate buildings --count 50000` (a GeoJSON FeatureCollection of polygons, ~28 MB,
# the same bytes every time) and `citydata generate hotspots --count 45000` (points), published with
# `citydata publish FILE --dataset buildings|hotspots` into one new database, served with
# `citydata serve --no-demo`.
# pygeoapi (PYGEOAPI_VERSION from PyPI, in a venv under BENCH_DIR) runs under
# `gunicorn pygeoapi.flask_app:APP -w 2` (sync workers), its configuration bench/pygeoapi.yml.in
# filled in, its OpenAPI document made by `pygeoapi openapi generate`, logging at ERROR. It serves the
# same features through one of its providers (PROVIDERS, each its own gunicorn):
#   spatialite  its SQLite provider on `ogr2ogr -f SQLite -dsco SPATIALITE=YES` of the same file
#               (id_field ogc_fid: 1..50000 in file order, as citydata's ids)
#   gpkg        its SQLite provider on `ogr2ogr -f GPKG` of the same file (id_field fid, the same)
#   geojson     its GeoJSON provider on the very same file (id_field id: the "BLDG-000123" property);
#               it parses the whole file on every request (its own docs say so), so expect about
#               one answer a second and wrk time-outs
# The SQLite provider needs Python's sqlite3 with extension loading (Debian's python3 has it; the
# venv is made with the first of /usr/bin/python3 and python3 that has it) and mod_spatialite.
#
# Workloads, each `wrk -t2 -c16 -d${DURATION}s --timeout 10s --latency` with bench/cycle.lua, which
# cycles through a list of paths (the same pages, windows and features in the same order for every
# server; made by bench/spatial_helper.py paths):
#   pages   items?limit=100&offset=O, the 500 pages of 100 in a shuffled order
#   bbox    items?limit=100&bbox=..., 500 windows of 0.5 to 4 km a side over Hong Kong
#   one     items/{id}, 2,000 random features
# (pygeoapi's paths add f=json.) Before timing, the first answers of each list are fetched from both
# servers and compared: 200, the same numberMatched (pygeoapi's SQLite provider leaves it out of
# a page, so it is asked with resulttype=hits) and the same features; a count that differs is
# printed, a non-200 stops the script. Runs are interleaved (each workload, each server in turn)
# ROUNDS times; the table gives the median round by requests a second. wrk's non-2xx answers and
# socket errors (time-outs included) are counted: any for citydata stops the script, pygeoapi's are
# reported in the table (a request that timed out is not in wrk's req/s; a server none of whose
# answers came within the run shows 0 req/s and no latency). A sync gunicorn worker goes on with the
# requests that wrk left queued when it stopped: after each pygeoapi run the script waits until its
# workers use no CPU, so that this work does not fall into the next run.
# Memory: VmRSS and VmHWM from /proc/PID/status after the runs (gunicorn: master + both workers,
# summed).
# Tiles: for z = 12..16 the tiles holding at least one hotspot (at most TILE_CAP a zoom, a seeded
# sample), GET /tiles/hotspots/z/x/y.mvt one at a time on one connection from Python, TILE_PASSES
# times (citydata keeps no tile cache: every request makes the tile); p50/p99 per zoom over all
# passes, tile sizes, and the server's RSS after.
#
# Printed: per workload the requests a second of citydata and of each pygeoapi provider, the ratio,
# p99 latency and errors; the tile table; RSS; `uptime` before and after and the busiest
# processes (the machine is shared).
#
# Run (from anywhere; ~22 minutes with the three providers, most of it waiting for the GeoJSON
# provider's workers to finish the requests queued in each run; ~6 minutes with PROVIDERS=spatialite):
#   CITYDATA_BIN=/path/to/citydata bench/spatial.sh
#   CITYDATA_BIN=/path/to/citydata BENCH_DIR=/tmp/spatial-work ROUNDS=1 PROVIDERS=spatialite KEEP=1 bench/spatial.sh
# Environment:
#   CITYDATA_BIN      the binary to measure (default: `cargo build --release -p citydata` once and
#                     use the release binary under CARGO_TARGET_DIR, or target/)
#   BENCH_DIR         work directory (default: a new `mktemp -d`); a venv with pygeoapi there is reused
#   ROUNDS            rounds of the wrk workloads (default 3)
#   DURATION          seconds of each wrk run (default 10)
#   PROVIDERS         pygeoapi providers to run, of spatialite gpkg geojson (default: all three)
#   PYGEOAPI_VERSION  (default 0.21.0), GUNICORN_VERSION (default 23.0.0)
#   TILE_CAP          tiles a zoom at most (default 300); TILE_PASSES (default 3)
#   KEEP=1            keep BENCH_DIR and its files (default: remove them, BENCH_DIR too when the
#                     script made it; the venv is kept in a BENCH_DIR given by the caller)
# Installs, if missing: wrk, curl, gdal-bin (ogr2ogr), libsqlite3-mod-spatialite and python3-venv
# (apt-get); pygeoapi and gunicorn (pip, into the venv).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || (cd "$script_dir/.." && pwd))

BUILDINGS=50000
HOTSPOTS=45000
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PROVIDERS=${PROVIDERS:-spatialite gpkg geojson}
PYGEOAPI_VERSION=${PYGEOAPI_VERSION:-0.21.0}
GUNICORN_VERSION=${GUNICORN_VERSION:-23.0.0}
TILE_CAP=${TILE_CAP:-300}
TILE_PASSES=${TILE_PASSES:-3}
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

for p in $PROVIDERS; do
    case $p in spatialite | gpkg | geojson) ;; *) die "unknown provider '$p' in PROVIDERS (spatialite gpkg geojson)" ;; esac
done

# --- cleaning up -------------------------------------------------------------------------------
server_pids=() # citydata and each gunicorn master (a master stops its workers)
cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
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
command -v curl >/dev/null || apt_install curl
command -v ogr2ogr >/dev/null || apt_install gdal-bin
compgen -G '/usr/lib/*/mod_spatialite.so' >/dev/null || compgen -G '/usr/lib/mod_spatialite.so' >/dev/null ||
    apt_install libsqlite3-mod-spatialite
helper=(python3 "$root/bench/spatial_helper.py")

# A Python whose sqlite3 can load extensions (pygeoapi's SQLite provider loads mod_spatialite).
can_load='import sqlite3; sqlite3.connect(":memory:").enable_load_extension(True)'
venv=$BENCH_DIR/venv
if ! "$venv/bin/python" -c "import pygeoapi, gunicorn; $can_load" 2>/dev/null ||
    [ "$("$venv/bin/python" -c 'import pygeoapi; print(pygeoapi.__version__)')" != "$PYGEOAPI_VERSION" ]; then
    py=''
    for c in /usr/bin/python3 python3; do
        if command -v "$c" >/dev/null && "$c" -c "$can_load" 2>/dev/null; then py=$c; break; fi
    done
    [ -n "$py" ] || die "no python3 whose sqlite3 can load extensions (Debian's python3 can)"
    "$py" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    rm -rf "$venv"
    log "installing pygeoapi $PYGEOAPI_VERSION and gunicorn $GUNICORN_VERSION into $venv (pip)"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "pygeoapi==$PYGEOAPI_VERSION" "gunicorn==$GUNICORN_VERSION"
fi
pg_version=$("$venv/bin/python" -c 'import pygeoapi; print(pygeoapi.__version__)')
gu_version=$("$venv/bin/python" -c 'import gunicorn; print(gunicorn.__version__)')

if [ -n "${CITYDATA_BIN:-}" ]; then
    citydata=$CITYDATA_BIN
else
    log "building citydata (cargo build --release -p citydata)"
    (cd "$root" && cargo build --release -p citydata)
    citydata=${CARGO_TARGET_DIR:-$root/target}/release/citydata
fi
[ -x "$citydata" ] || die "no citydata binary at $citydata"

uptime_before=$(uptime)

# --- the data ----------------------------------------------------------------------------------
log "generating and publishing $BUILDINGS buildings and $HOTSPOTS hotspots"
"$citydata" generate buildings --count "$BUILDINGS" --out "$work/buildings.geojson"
"$citydata" generate hotspots --count "$HOTSPOTS" --out "$work/hotspots.geojson"
db=$work/citydata.db
"$citydata" publish "$work/buildings.geojson" --dataset buildings --db "$db" >"$work/publish.log"
"$citydata" publish "$work/hotspots.geojson" --dataset hotspots --db "$db" >>"$work/publish.log"
for p in $PROVIDERS; do
    case $p in
        gpkg) ogr2ogr -f GPKG "$work/buildings.gpkg" "$work/buildings.geojson" -nln buildings ;;
        spatialite) ogr2ogr -f SQLite -dsco SPATIALITE=YES "$work/buildings.sqlite" "$work/buildings.geojson" -nln buildings ;;
    esac
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- citydata ----------------------------------------------------------------------------------
"$citydata" serve --db "$db" --port 0 --no-demo >"$work/citydata.out" 2>"$work/citydata.err" &
cd_pid=$!
server_pids+=("$cd_pid")
for _ in $(seq 100); do
    [ -s "$work/citydata.out" ] && break
    sleep 0.1
done
cd_url=$(head -1 "$work/citydata.out" | grep -o 'http://[^ ]*' | sed 's#/$##') || true
[ -n "$cd_url" ] || { cat "$work/citydata.err" >&2; die "citydata did not start"; }

# --- pygeoapi, one gunicorn a provider ---------------------------------------------------------
declare -A pg_url pg_pid pg_list_one label
label[citydata]=citydata
label[spatialite]="pygeoapi SQLite provider (SpatiaLite db)"
label[gpkg]="pygeoapi SQLite provider (GeoPackage)"
label[geojson]="pygeoapi GeoJSON provider (the .geojson)"
for p in $PROVIDERS; do
    case $p in
        spatialite) provider=SQLiteGPKG data=$work/buildings.sqlite id_field=ogc_fid one=one-pg ;;
        gpkg) provider=SQLiteGPKG data=$work/buildings.gpkg id_field=fid one=one-pg ;;
        geojson) provider=GeoJSON data=$work/buildings.geojson id_field=id one=one-pgjson ;;
    esac
    port=$(free_port)
    url=http://127.0.0.1:$port
    sed -e "s#@URL@#$url#" -e "s#@NAME@#${label[$p]}#" -e "s#@PROVIDER@#$provider#" -e "s#@DATA@#$data#" \
        -e "s#@ID_FIELD@#$id_field#" -e "s#@TABLE@#buildings#" "$root/bench/pygeoapi.yml.in" >"$work/pygeoapi-$p.yml"
    PYGEOAPI_CONFIG=$work/pygeoapi-$p.yml PYGEOAPI_OPENAPI=$work/openapi-$p.yml \
        "$venv/bin/pygeoapi" openapi generate "$work/pygeoapi-$p.yml" --output-file "$work/openapi-$p.yml" >"$work/openapi-$p.log" 2>&1 ||
        { cat "$work/openapi-$p.log" >&2; die "pygeoapi openapi generate failed ($p)"; }
    PYGEOAPI_CONFIG=$work/pygeoapi-$p.yml PYGEOAPI_OPENAPI=$work/openapi-$p.yml \
        "$venv/bin/gunicorn" pygeoapi.flask_app:APP -w 2 -b "127.0.0.1:$port" --timeout 120 \
        >"$work/gunicorn-$p.out" 2>"$work/gunicorn-$p.err" &
    pg_pid[$p]=$!
    server_pids+=("${pg_pid[$p]}")
    pg_url[$p]=$url
    pg_list_one[$p]=$one
done
for p in $PROVIDERS; do
    ok=0
    for _ in $(seq 150); do
        if curl -fs "${pg_url[$p]}/collections/buildings?f=json" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.2
    done
    [ "$ok" = 1 ] || { cat "$work/gunicorn-$p.err" >&2; die "pygeoapi ($p) did not start"; }
done

# --- the request lists, checked ----------------------------------------------------------------
"${helper[@]}" paths "$work" "$BUILDINGS"
for p in $PROVIDERS; do
    log "checking citydata against ${label[$p]}"
    n_bbox=20 n_pages=5 n_one=10
    if [ "$p" = geojson ]; then n_bbox=5 n_pages=2 n_one=3; fi
    "${helper[@]}" check citydata "$cd_url" "$work/bbox-cd.txt" "pygeoapi-$p" "${pg_url[$p]}" "$work/bbox-pg.txt" "$n_bbox" | tee -a "$work/checks.txt" >&2 ||
        die "a check failed"
    "${helper[@]}" check citydata "$cd_url" "$work/pages-cd.txt" "pygeoapi-$p" "${pg_url[$p]}" "$work/pages-pg.txt" "$n_pages" | tee -a "$work/checks.txt" >&2 ||
        die "a check failed"
    "${helper[@]}" check citydata "$cd_url" "$work/one-cd.txt" "pygeoapi-$p" "${pg_url[$p]}" "$work/${pg_list_one[$p]}.txt" "$n_one" | tee -a "$work/checks.txt" >&2 ||
        die "a check failed"
done

# --- measuring ---------------------------------------------------------------------------------
results=$work/results.txt
: >"$results"
# to_ms 1.23ms|456.00us|1.05s -> milliseconds
to_ms() {
    awk -v t="$1" 'BEGIN {
        if (t == "") { print "-"; exit }
        if (t ~ /us$/) { sub(/us$/, "", t); printf "%.3f", t / 1000 }
        else if (t ~ /ms$/) { sub(/ms$/, "", t); printf "%.2f", t }
        else if (t ~ /m$/) { sub(/m$/, "", t); printf "%.0f", t * 60000 }
        else { sub(/s$/, "", t); printf "%.0f", t * 1000 } }'
}
# load SERVER WORKLOAD URL PATHS: one wrk run; appends "SERVER-WORKLOAD ROUND REQ_PER_S P50_MS
# P99_MS ERRORS" to $results.
load() {
    local name=$1-$2 url=$3 paths=$4 out=$work/wrk-$1-$2-$round.txt
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
    if awk -v r="$rps" 'BEGIN { exit !(r + 0 == 0) }'; then p50='' p99=''; fi
    drain "$1"
    log "$(printf '  %-22s %10s req/s  p50 %9s  p99 %9s  errors %s' "$name" "$rps" "${p50:--}" "${p99:--}" "$errors")"
    if [ "$1" = citydata ] && ((errors != 0)); then
        cat "$out" >&2
        die "$name: $errors errors (non-2xx answers or socket errors)"
    fi
    echo "$name $round $rps $(to_ms "$p50") $(to_ms "$p99") $errors" >>"$results"
}
# drain SERVER: waits (at most 300 s) until a gunicorn's workers are idle again: a sync worker goes on
# answering the requests that wrk left queued when it stopped, and that work must not fall into the
# next run. The wait is logged; a server that never gets there stops the script.
drain() {
    [ "$1" != citydata ] || return 0
    local waited
    # shellcheck disable=SC2046
    waited=$("${helper[@]}" idle 300 $(pgrep -P "${pg_pid[$1]}"))
    if awk -v w="$waited" 'BEGIN { exit !(w + 0 >= 300) }'; then die "pygeoapi ($1) still busy 300 s after wrk stopped"; fi
    if awk -v w="$waited" 'BEGIN { exit !(w + 0 > 1) }'; then log "    (pygeoapi $1 answered queued requests for $waited s after wrk stopped)"; fi
}
list_of() { # SERVER WORKLOAD -> the paths file
    case $1-$2 in
        citydata-*) echo "$work/$2-cd.txt" ;;
        *-one) echo "$work/${pg_list_one[$1]}.txt" ;;
        *) echo "$work/$2-pg.txt" ;;
    esac
}
url_of() { if [ "$1" = citydata ]; then echo "$cd_url"; else echo "${pg_url[$1]}"; fi; }

log "citydata: $citydata ($cd_url)"
for p in $PROVIDERS; do log "pygeoapi $pg_version (gunicorn $gu_version, 2 sync workers), ${label[$p]}: ${pg_url[$p]}"; done
log "load: wrk -t2 -c16 -d${DURATION}s --timeout 10s --latency -s bench/cycle.lua; $ROUNDS round(s)"
log "warming up (2 s each, not counted)"
for s in citydata $PROVIDERS; do
    for w in pages bbox one; do
        wrk -t2 -c16 -d2s --timeout 10s -s "$root/bench/cycle.lua" "$(url_of "$s")" -- "$(list_of "$s" "$w")" >/dev/null 2>&1 || true
        drain "$s"
    done
done
for ((round = 1; round <= ROUNDS; round++)); do
    log "--- round $round"
    for w in pages bbox one; do
        for s in citydata $PROVIDERS; do
            load "$s" "$w" "$(url_of "$s")" "$(list_of "$s" "$w")"
        done
    done
done

# --- memory after the runs ---------------------------------------------------------------------
# rss_of SERVER -> "VmRSS VmHWM" in KiB (gunicorn: the master and its workers, summed)
rss_of() {
    if [ "$1" = citydata ]; then
        "${helper[@]}" rss "$cd_pid"
    else
        # shellcheck disable=SC2046
        "${helper[@]}" rss "${pg_pid[$1]}" $(pgrep -P "${pg_pid[$1]}")
    fi
}
declare -A rss_wrk
for s in citydata $PROVIDERS; do rss_wrk[$s]=$(rss_of "$s"); done

# --- tiles -------------------------------------------------------------------------------------
log "tiles: /tiles/hotspots/z/x/y.mvt, z12..16, at most $TILE_CAP a zoom, $TILE_PASSES pass(es), one at a time"
"${helper[@]}" tiles "$cd_url" hotspots "$work/hotspots.geojson" 12 16 "$TILE_CAP" "$TILE_PASSES" "$work/tiles.txt" ||
    die "the tile timing failed"
rss_tiles=$(rss_of citydata)
uptime_after=$(uptime)
busy=$(ps -eo pcpu=,comm= --sort=-pcpu | head -8 | awk '{ printf "%s %s%%; ", $2, $1 }') # CPU over each one's life

# --- the table ---------------------------------------------------------------------------------
# median NAME -> "req/s p50 p99 errors" of the round with the median requests a second (the lower
# middle one for an even count), and the errors summed over the rounds.
median() {
    awk -v t="$1" 'BEGIN { n = 0; e = 0 }
        $1 == t { r[n] = $3; l[n] = $4 " " $5; e += $6; n++ }
        END {
            if (n == 0) { print "- - - -"; exit }
            for (i = 0; i < n; i++) idx[i] = i
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (r[idx[j]] + 0 < r[idx[i]] + 0) { x = idx[i]; idx[i] = idx[j]; idx[j] = x }
            m = idx[int((n - 1) / 2)]
            printf "%.1f %s %d\n", r[m], l[m], e
        }' "$results"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.0fx", a / b; else print "n/a" }'; }

echo
echo "OGC API Features on $BUILDINGS buildings (polygons): citydata and pygeoapi $pg_version side by side"
echo "(wrk -t2 -c16 -d${DURATION}s --timeout 10s, median of $ROUNDS round(s) by req/s; p50/p99 latency in ms of"
echo " that round; errors: non-2xx answers and socket errors (time-outs) over all rounds; $(nproc) cores, shared)"
printf '%-8s %-42s %10s %9s %9s %7s %9s\n' workload server "req/s" "p50 ms" "p99 ms" errors "citydata/"
for w in pages bbox one; do
    read -r c_rps c_p50 c_p99 c_err < <(median "citydata-$w")
    printf '%-8s %-42s %10s %9s %9s %7s %9s\n' "$w" citydata "$c_rps" "$c_p50" "$c_p99" "$c_err" ""
    for p in $PROVIDERS; do
        read -r rps p50 p99 err < <(median "$p-$w")
        printf '%-8s %-42s %10s %9s %9s %7s %9s\n' "" "${label[$p]}" "$rps" "$p50" "$p99" "$err" "$(ratio "$c_rps" "$rps")"
    done
done
echo "pages: items?limit=100&offset=O (500 pages); bbox: items?limit=100&bbox=... (500 windows of 0.5-4 km);"
echo "one: items/{id} (2,000 random features). citydata's pages carry numberMatched; pygeoapi's SQLite"
echo "provider's do not (it counts only for resulttype=hits), its GeoJSON provider's do."
echo
echo "Memory after the wrk runs (KiB; gunicorn: master + 2 workers summed)"
printf '  %-42s VmRSS %8s  VmHWM %8s\n' citydata ${rss_wrk[citydata]}
for p in $PROVIDERS; do printf '  %-42s VmRSS %8s  VmHWM %8s\n' "${label[$p]}" ${rss_wrk[$p]}; done
echo
echo "Vector tiles of $HOTSPOTS hotspots (/tiles/hotspots/z/x/y.mvt; the tiles holding a hotspot, at most $TILE_CAP"
echo "a zoom, seeded sample; one request at a time on one connection, $TILE_PASSES pass(es); latency in ms over all passes)"
printf '  %4s %6s %8s %9s %9s %9s %6s %6s %12s %12s\n' zoom tiles "of held" "p50 ms" "p99 ms" "max ms" empty cut "median B" "max B"
awk '{ printf "  %4s %6s %8s %9s %9s %9s %6s %6s %12s %12s\n", $1, $2, $10, $3, $4, $5, $6, $7, $8, $9 }' "$work/tiles.txt"
read -r t_rss t_hwm <<<"$rss_tiles"
echo "  citydata after the tiles: VmRSS $t_rss KiB, VmHWM $t_hwm KiB"
echo
echo "checks (citydata vs pygeoapi, first answers of each list):"
grep 'checked\|DIFFERENT\|NOT 200' "$work/checks.txt" | sed 's/^ */  /'
echo
echo "uptime before: $uptime_before"
echo "uptime after:  $uptime_after"
echo "busiest processes at the end (ps %cpu, over each process's life): $busy"
echo "citydata: $citydata"
echo "pygeoapi $pg_version, gunicorn $gu_version (2 sync workers), raw outputs: $work (kept with KEEP=1)"
