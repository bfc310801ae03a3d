#!/usr/bin/env bash
# bench/publish.sh: how fast does `citydata publish` load a CSV into SQLite, next to its peers?
#
# Input: bench/gen_csv.py 1000000, i.e. 1,000,000 rows of 8 columns (~60 MB).
# Each tool loads it into a NEW SQLite database file, RUNS times (the slow sqlite-utils SLOW_RUNS
# times); each run is measured with `/usr/bin/time -f '%e %M'` (wall seconds, peak RSS in KiB):
#   sqlite3 .import     `sqlite3 new.db -cmd '.mode csv' '.import FILE t'`
#                       infers nothing: every column is TEXT, no checks, the floor for SQLite.
#   sqlite-utils        `sqlite-utils insert new.db t FILE --csv --detect-types`
#                       infers column types (INTEGER/FLOAT/TEXT); from sqlite-utils 4 that is the
#                       default and the flag is gone, so it is passed only if the version has it.
#   citydata publish    `citydata publish FILE --dataset bench --db new.db`
#                       infers types (dates, times, numbers with separators, booleans), stores the
#                       original bytes, records a version, all in one transaction.
# Tools are interleaved run by run (import, citydata, sqlite-utils, import, ...) so that noise from
# other work on the machine spreads over all of them, and dirty pages are flushed (`sync`) before
# each run. The CSV is read once first, so every tool
# reads it from the page cache. After every run the row count in the new database is checked
# (1,000,000 rows), so a failed load cannot pass for a fast one.
#
# Printed: per tool the median wall time, the highest peak RSS over its runs, the database size,
# and the ratios .import/citydata and sqlite-utils/citydata of median times (> 1: citydata faster).
#
# Run (from anywhere):
#   bench/publish.sh
#   CITYDATA_BIN=/path/to/citydata BENCH_DIR=/tmp/bench-work RUNS=5 SLOW_RUNS=1 bench/publish.sh
# Environment:
#   CITYDATA_BIN  the binary to measure (default: `cargo build --release -p citydata` once and use
#                 target/release/citydata)
#   BENCH_DIR     work directory for the CSV and the databases (default: a new `mktemp -d`); an
#                 existing CSV there is reused
#   ROWS          rows to generate (default 1000000)
#   RUNS          runs of sqlite3 .import and citydata (default 3)
#   SLOW_RUNS     runs of sqlite-utils (default 1)
#   SU_PYTHON     the Python whose sqlite-utils to measure (default python3; e.g. a venv's python
#                 with another sqlite-utils version)
# Installs, if missing: sqlite3 and time (apt-get), sqlite-utils (pip).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || (cd "$script_dir/.." && pwd))

ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
SLOW_RUNS=${SLOW_RUNS:-1}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Root runs apt-get directly; anyone else through sudo.
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
apt_install() {
    log "installing Debian package(s): $*"
    "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null ||
        { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null; }
}

# --- the tools ---------------------------------------------------------------------------------
[ -x /usr/bin/time ] || apt_install time
command -v sqlite3 >/dev/null || apt_install sqlite3
SU_PYTHON=${SU_PYTHON:-python3}
"$SU_PYTHON" -c 'import sqlite_utils' 2>/dev/null || { log "installing sqlite-utils (pip)"; "$SU_PYTHON" -m pip install --quiet sqlite-utils; }
# The pip console script may land outside PATH; the module entry point always works.
sqlite_utils=("$SU_PYTHON" -m sqlite_utils)
# sqlite-utils 3.x infers types only with --detect-types; 4.x does it by default and no longer
# knows the flag (it has --no-detect-types instead).
su_help=$("${sqlite_utils[@]}" insert --help)
su_detect=()
if [[ $su_help == *"--detect-types"* && $su_help != *"--no-detect-types"* ]]; then su_detect=(--detect-types); fi

if [ -n "${CITYDATA_BIN:-}" ]; then
    citydata=$CITYDATA_BIN
else
    log "building citydata (cargo build --release -p citydata)"
    (cd "$root" && cargo build --release -p citydata)
    citydata=$root/target/release/citydata
fi
[ -x "$citydata" ] || die "no citydata binary at $citydata"

# --- the input ---------------------------------------------------------------------------------
csv=$BENCH_DIR/rows-$ROWS.csv
if [ ! -s "$csv" ]; then
    log "generating $csv ($ROWS rows)"
    python3 "$root/bench/gen_csv.py" "$ROWS" >"$csv.part"
    mv "$csv.part" "$csv"
fi
cat "$csv" >/dev/null # into the page cache, the same for every tool

# --- measuring ---------------------------------------------------------------------------------
# measure TOOL DB COMMAND...: runs COMMAND into the fresh database DB under /usr/bin/time and
# appends "TOOL SECONDS PEAK_KIB DB_BYTES" to $results. Output goes to a log; on failure it is shown.
results=$BENCH_DIR/results.txt
: >"$results"
measure() {
    local tool=$1 db=$2
    shift 2
    rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
    local out=$BENCH_DIR/$tool.log tf=$BENCH_DIR/time.txt
    # The previous run's database is still being written back by the kernel: flush it first, so that
    # no run pays for another's writes.
    sync
    if ! /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$out" 2>&1; then
        cat "$out" >&2
        die "$tool failed"
    fi
    local secs kib
    read -r secs kib <"$tf"
    local table rows types
    table=$(table_of "$tool" "$db")
    rows=$(sqlite3 "$db" "SELECT count(*) FROM \"$table\"")
    [ "$rows" = "$ROWS" ] || die "$tool: $rows rows in $db, expected $ROWS"
    # The declared column types, to show what was inferred.
    types=$(sqlite3 "$db" "SELECT group_concat(type, ',') FROM pragma_table_info('$table')")
    # Size of the database with any WAL left beside it.
    local bytes
    bytes=$(file_bytes "$db" "$db-wal")
    log "$(printf '%-16s %7s s %6d MB RSS %5d MB db  %s rows  %s' "$tool" "$secs" $(((kib + 512) / 1024)) $(((bytes + 524288) / 1048576)) "$rows" "$types")"
    echo "$tool $secs $kib $bytes" >>"$results"
    rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
}

# file_bytes FILE...: total size of those FILEs that exist.
file_bytes() {
    local total=0 f
    for f in "$@"; do
        if [ -e "$f" ]; then total=$((total + $(stat -c %s "$f"))); fi
    done
    echo "$total"
}

# table_of TOOL DB: the loaded table. citydata names it by the resource id.
table_of() {
    if [ "$1" != citydata ]; then echo t; return; fi
    local table
    table=$(sqlite3 "$2" 'SELECT id FROM resources')
    [ -n "$table" ] && [ "$(wc -l <<<"$table")" = 1 ] || die "citydata: expected one resource, got: '$table'"
    echo "$table"
}

log "citydata: $citydata"
log "sqlite3:  $(sqlite3 --version | cut -d' ' -f1-2)"
log "sqlite-utils: $("${sqlite_utils[@]}" --version | awk '{print $NF}')"
log "input: $csv ($(wc -c <"$csv") bytes, $ROWS rows); RUNS=$RUNS SLOW_RUNS=$SLOW_RUNS"

max_runs=$((RUNS > SLOW_RUNS ? RUNS : SLOW_RUNS))
for ((i = 1; i <= max_runs; i++)); do
    log "--- run $i"
    if ((i <= RUNS)); then
        measure sqlite3-import "$BENCH_DIR/import-$i.db" sqlite3 "$BENCH_DIR/import-$i.db" -cmd '.mode csv' ".import $csv t"
        measure citydata "$BENCH_DIR/citydata-$i.db" "$citydata" publish "$csv" --dataset bench --db "$BENCH_DIR/citydata-$i.db"
    fi
    if ((i <= SLOW_RUNS)); then
        measure sqlite-utils "$BENCH_DIR/sqlite-utils-$i.db" "${sqlite_utils[@]}" insert "$BENCH_DIR/sqlite-utils-$i.db" t "$csv" --csv "${su_detect[@]}"
    fi
done

# --- the table ---------------------------------------------------------------------------------
# Median of the times (mean of the middle two for an even count), max of the peak RSS.
summary() { # TOOL -> "median_s peak_mb db_mb runs"
    awk -v t="$1" '$1 == t { s[n++] = $2; if ($3 > m) m = $3; b = $4 }
        END {
            if (n == 0) { print "- - - 0"; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (s[j] < s[i]) { x = s[i]; s[i] = s[j]; s[j] = x }
            med = (n % 2) ? s[int(n / 2)] : (s[n / 2 - 1] + s[n / 2]) / 2
            printf "%.2f %.0f %.0f %d\n", med, m / 1024, b / 1048576, n
        }' "$results"
}
read -r imp_s imp_mb imp_db imp_n < <(summary sqlite3-import)
read -r cd_s cd_mb cd_db cd_n < <(summary citydata)
read -r su_s su_mb su_db su_n < <(summary sqlite-utils)

echo
echo "Loading $ROWS rows x 8 columns ($(($(wc -c <"$csv") / 1048576)) MB CSV) into a new SQLite db"
printf '%-18s %5s %10s %12s %8s\n' tool runs "median s" "peak RSS MB" "db MB"
printf '%-18s %5s %10s %12s %8s\n' "sqlite3 .import" "$imp_n" "$imp_s" "$imp_mb" "$imp_db"
printf '%-18s %5s %10s %12s %8s\n' "sqlite-utils" "$su_n" "$su_s" "$su_mb" "$su_db"
printf '%-18s %5s %10s %12s %8s\n' "citydata publish" "$cd_n" "$cd_s" "$cd_mb" "$cd_db"
echo
awk -v i="$imp_s" -v s="$su_s" -v c="$cd_s" '
    function ratio(x) { return (x + 0 > 0 && c + 0 > 0) ? sprintf("%.2fx", x / c) : "n/a" }
    BEGIN {
        printf "citydata vs sqlite3 .import: %s (import time / citydata time; < 1: citydata is slower)\n", ratio(i)
        printf "citydata vs sqlite-utils:    %s (sqlite-utils time / citydata time)\n", ratio(s)
    }'
echo "raw runs: $results"
