#!/usr/bin/env bash
# bench/big.sh: can `citydata publish` load a ~2 GB CSV, how long does it take, and how much memory
# does it use doing it?
#
# Generates bench/gen_csv.py ROWS (default 33,000,000 rows of 8 columns, ~2.0 GB) in BENCH_DIR,
# unless it is already there, then publishes it once into a new database under
# `/usr/bin/time -f '%e %M'` (wall seconds, peak RSS in KiB). While it runs, the sizes of the
# database and its WAL are sampled every second to give the peak disk use (the publish is one
# transaction, so the WAL grows to about the size of the new data before the commit). Afterwards the
# row count is checked, the figures are printed, and the database is removed; the CSV is removed
# too unless KEEP=1.
#
# Needs about 12 GB free in BENCH_DIR (CSV ~2 GB, database and WAL at their peak several times
# that); checked with df first.
#
# Run (from anywhere):
#   bench/big.sh
#   CITYDATA_BIN=/path/to/citydata BENCH_DIR=/tmp/bench-work KEEP=1 bench/big.sh
# Environment:
#   CITYDATA_BIN  the binary to measure (default: `cargo build --release -p citydata` once and use
#                 target/release/citydata)
#   BENCH_DIR     work directory (default: a new `mktemp -d`); an existing CSV there is reused
#   ROWS          rows to generate (default 33000000)
#   NEED_GB       free space required, in GB (default 12)
#   KEEP=1        keep the CSV afterwards
# Installs, if missing: sqlite3 and time (apt-get).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || (cd "$script_dir/.." && pwd))

ROWS=${ROWS:-33000000}
NEED_GB=${NEED_GB:-12}
KEEP=${KEEP:-0}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
apt_install() {
    log "installing Debian package(s): $*"
    "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null ||
        { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y "$@" >/dev/null; }
}

# file_bytes FILE...: total size of those FILEs that exist.
file_bytes() {
    local total=0 f
    for f in "$@"; do
        if [ -e "$f" ]; then total=$((total + $(stat -c %s "$f" 2>/dev/null || echo 0))); fi
    done
    echo "$total"
}

# --- the tools ---------------------------------------------------------------------------------
[ -x /usr/bin/time ] || apt_install time
command -v sqlite3 >/dev/null || apt_install sqlite3 # for the row count

if [ -n "${CITYDATA_BIN:-}" ]; then
    citydata=$CITYDATA_BIN
else
    log "building citydata (cargo build --release -p citydata)"
    (cd "$root" && cargo build --release -p citydata)
    citydata=$root/target/release/citydata
fi
[ -x "$citydata" ] || die "no citydata binary at $citydata"

# --- disk space --------------------------------------------------------------------------------
csv=$BENCH_DIR/rows-$ROWS.csv
db=$BENCH_DIR/big.db
rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
avail=$(df -B1 --output=avail "$BENCH_DIR" | tail -n 1 | tr -d ' ')
have=$((avail + $(file_bytes "$csv"))) # a CSV already there counts as room
need=$((NEED_GB * 1000 * 1000 * 1000))
log "free in $BENCH_DIR: $((avail / 1000000)) MB (need $((need / 1000000)) MB, counting an existing CSV)"
((have >= need)) || die "not enough disk space in $BENCH_DIR"

# --- the input ---------------------------------------------------------------------------------
if [ ! -s "$csv" ]; then
    log "generating $csv ($ROWS rows)"
    start=$(date +%s)
    python3 "$root/bench/gen_csv.py" "$ROWS" >"$csv.part"
    mv "$csv.part" "$csv"
    log "generated in $(($(date +%s) - start)) s"
fi
csv_bytes=$(file_bytes "$csv")
log "input: $csv ($csv_bytes bytes, $ROWS rows)"
log "citydata: $citydata"

# --- the publish -------------------------------------------------------------------------------
# Sample db + WAL sizes once a second in the background; the highest total is the peak disk use.
peak_file=$BENCH_DIR/big.peak
echo "0 0" >"$peak_file"
(
    peak=0 peak_wal=0
    while :; do
        wal=$(file_bytes "$db-wal")
        total=$((wal + $(file_bytes "$db")))
        if ((total > peak || wal > peak_wal)); then
            ((total > peak)) && peak=$total
            ((wal > peak_wal)) && peak_wal=$wal
            echo "$peak $peak_wal" >"$peak_file"
        fi
        sleep 1
    done
) &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT

log "publishing (one run)"
time_file=$BENCH_DIR/big.time
out=$BENCH_DIR/big.log
if ! /usr/bin/time -f '%e %M' -o "$time_file" "$citydata" publish "$csv" --dataset big --db "$db" >"$out" 2>&1; then
    cat "$out" >&2
    die "citydata publish failed"
fi
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
cat "$out" >&2
read -r secs kib <"$time_file"
read -r peak_disk peak_wal <"$peak_file"
db_bytes=$(file_bytes "$db")
left_wal=$(file_bytes "$db-wal")

# --- the check ---------------------------------------------------------------------------------
table=$(sqlite3 "$db" 'SELECT id FROM resources')
[ -n "$table" ] && [ "$(wc -l <<<"$table")" = 1 ] || die "expected one resource, got: '$table'"
rows=$(sqlite3 "$db" "SELECT count(*) FROM \"$table\"")
[ "$rows" = "$ROWS" ] || die "$rows rows in the database, expected $ROWS"

echo
echo "citydata publish of a big CSV"
printf '%-26s %s\n' "CSV bytes" "$csv_bytes ($((csv_bytes / 1048576)) MiB)"
printf '%-26s %s\n' "rows (checked in the db)" "$rows"
printf '%-26s %s\n' "wall time s" "$secs"
printf '%-26s %s\n' "rows/s" "$(awk -v r="$rows" -v s="$secs" 'BEGIN { printf "%.0f", r / s }')"
printf '%-26s %s\n' "peak RSS MB" "$((kib / 1024))"
printf '%-26s %s\n' "db bytes after" "$db_bytes ($((db_bytes / 1048576)) MiB), WAL left: $left_wal"
printf '%-26s %s\n' "peak db+WAL bytes" "$peak_disk ($((peak_disk / 1048576)) MiB; WAL peak $((peak_wal / 1048576)) MiB; sampled 1/s)"

# --- clean up ----------------------------------------------------------------------------------
rm -f "$db" "$db-wal" "$db-shm" "$db-journal" "$peak_file"
if [ "$KEEP" = 1 ]; then
    log "kept $csv"
else
    rm -f "$csv"
    log "removed $csv and the database (KEEP=1 keeps the CSV)"
fi
