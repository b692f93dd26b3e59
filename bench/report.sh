#!/usr/bin/env bash
# Report benchmark (a script, not a test): N generated events (default 10
# million, 30 days, 500 organizations), the overall report and the
# per-organization report on pullgate's embedded engine (DataFusion) and on
# DuckDB running the same SQL over the same files: wall time, peak memory
# (/usr/bin/time -v), events/s, and the ratio. DuckDB runs it twice: the
# way pullgate does (`--show-sql duckdb --sessions-table`: the sessions
# kept once, then the queries over them; the ratio's yardstick), and the
# queries as `--show-sql duckdb` prints them for pasting, each sessionizing
# on its own (as Athena runs them). Then the bytes Athena would scan per
# report, compressed JSON vs Parquet, and what that costs at $5 per TB.
#
#   bench/report.sh [EVENTS]        results under bench/results/report/
#   PULLGATE_BIN=path/to/pullgate bench/report.sh   (a release build already at hand)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
DAYS=30
END=2026-03-31
FROM=2026-03-02
OUT=bench/results/report
DATA=$OUT/data-$EVENTS
mkdir -p "$OUT"

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c "import duckdb" 2>/dev/null || .venv/bin/pip install -q duckdb==2.0.0

PG=${PULLGATE_BIN:-}
if [ -z "$PG" ]; then
    cargo build --release --locked -p pullgate-cli --bin pullgate
    PG=target/release/pullgate
fi

if [ ! -f "$DATA/.complete" ]; then
    rm -rf "$DATA"
    echo "generating $EVENTS events..."
    start=$(date +%s.%N)
    $PG generate --data-dir "$DATA" --events "$EVENTS" --days $DAYS --end $END --orgs 500 --files-per-day 2
    echo "generated in $(echo "$(date +%s.%N) - $start" | bc) s"
    touch "$DATA/.complete"
fi
bytes=$(du -cb "$DATA"/events/dt=*/*.json.gz | tail -1 | cut -f1)
echo "event files: $(ls "$DATA"/events/dt=*/*.json.gz | wc -l), $((bytes / 1024 / 1024)) MiB gzip"

measure() { # label, command...
    local label=$1; shift
    /usr/bin/time -v "$@" >"$OUT/$label.out" 2>"$OUT/$label.time"
    local wall rss
    wall=$(grep "Elapsed (wall clock)" "$OUT/$label.time" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    rss=$(grep "Maximum resident set size" "$OUT/$label.time" | awk '{print $NF}')
    printf '%-28s wall %8.2f s   peak RSS %7d MiB   %10.0f events/s\n' "$label" "$wall" $((rss / 1024)) "$(echo "$EVENTS / $wall" | bc -l)"
    echo "$label $wall $rss" >>"$OUT/summary.txt"
}

: >"$OUT/summary.txt"
for section in overall orgs; do
    $PG report --from $FROM --to $END --sections $section --show-sql duckdb >"$OUT/$section.duckdb.sql"
    $PG report --from $FROM --to $END --sections $section --show-sql duckdb \
        --sessions-table report_sessions >"$OUT/$section.duckdb-kept.sql"
    measure "pullgate-$section" $PG report --data-dir "$DATA" --from $FROM --to $END --sections $section --format json
    measure "duckdb-$section" .venv/bin/python bench/report_duckdb.py run "$DATA" "$OUT/$section.duckdb-kept.sql"
    measure "duckdb-per-query-$section" .venv/bin/python bench/report_duckdb.py run "$DATA" "$OUT/$section.duckdb.sql"
done
echo
wall() { awk -v l="$1" '$1==l {print $2}' "$OUT/summary.txt"; }
for section in overall orgs; do
    p=$(wall "pullgate-$section")
    printf 'ratio pullgate/duckdb (%s report, the same plan): %.2f  (target <= 1.5)\n' \
        "$section" "$(echo "$p / $(wall "duckdb-$section")" | bc -l)"
    printf 'ratio pullgate/duckdb (%s report, DuckDB sessionizing in every query): %.2f\n' \
        "$section" "$(echo "$p / $(wall "duckdb-per-query-$section")" | bc -l)"
done
echo
echo "bytes Athena would scan per report over $FROM..$END (each query scans anew):"
.venv/bin/python bench/report_duckdb.py scan "$DATA" "$OUT/parquet-$EVENTS" "$OUT/overall.duckdb.sql" "$OUT/orgs.duckdb.sql" | tee "$OUT/athena-scan.txt"
