#!/usr/bin/env bash
# Redirect throughput, side by side in one run: pullgate against nginx doing
# the same 307 on loopback (both with an access log to a file), pullgate
# with events on and off. Prints requests/s, p50, p99, the server's CPU
# time per request (user + system, all its threads and processes: a figure
# that other load on the machine disturbs far less than requests/s) and
# the ratios. Not a test: numbers go to docs/benchmarks.md.
#
#   bench/redirect.sh            # 3 rounds x 10 s, 64 connections
#   DURATION=20 ROUNDS=5 CONNECTIONS=128 bench/redirect.sh
#   BASELINE_BIN=/path/to/old/pullgate bench/redirect.sh
#   PULLGATE_BIN=target/release/pullgate-serve ADMIN=on BASELINE_BIN=... bench/redirect.sh
#
# BASELINE_BIN: a second pullgate build (an earlier commit) run side by
# side in the same rounds, events off and on, so a change is compared with
# what it replaces on the same machine at the same moment (this kind of
# machine drifts by 10% between runs); the ratios new / baseline follow.
# Either binary may be the full `pullgate` (run as `pullgate serve`) or the
# lean `pullgate-serve`. ADMIN=on gives the PULLGATE_BIN servers (not the
# baseline's) an admin listener, so metrics are recorded; the script then
# checks their request counters saw the run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PATH_=/v2/library/alpine/manifests/3.20

for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nginx wrk curl" >&2; exit 1; }
done
if [ -z "${PULLGATE_BIN:-}" ]; then
    cargo build --release --locked -q -p pullgate-cli --bin pullgate
    PULLGATE_BIN=target/release/pullgate
fi

source bench/lib.sh
bench_workdir pullgate-bench

cat > "$work/mappings.toml" <<TOML
[[mappings]]
host = "127.0.0.1"
name = "library/alpine"
upstream = "docker.io/library/alpine"
mode = "redirect"
TOML

port_nginx=$(free_port)
cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log combined;
  server {
    listen 127.0.0.1:$port_nginx;
    location ~ ^/v2/library/alpine/manifests/([A-Za-z0-9_][A-Za-z0-9_.-]*)\$ {
      add_header Cache-Control no-store always;
      return 307 https://registry-1.docker.io/v2/library/alpine/manifests/\$1;
    }
  }
}
NGINX
nginx -c "$work/nginx.conf"

# Each pullgate server: a name, a binary, and its events flag.
names=("nginx")
bins=("")
events=("")
add_server() { names+=("$1"); bins+=("$2"); events+=("$3"); }
add_server "pullgate (events off)" "$PULLGATE_BIN" off
add_server "pullgate (events on)" "$PULLGATE_BIN" on
if [ -n "${BASELINE_BIN:-}" ]; then
    add_server "baseline (events off)" "$BASELINE_BIN" off
    add_server "baseline (events on)" "$BASELINE_BIN" on
fi
count=${#names[@]}
ports=("$port_nginx")
declare -A admin_ports
for i in $(seq 1 $((count - 1))); do
    port=$(free_port)
    ports+=("$port")
    extra=()
    if [ "${ADMIN:-off}" = on ] && [ "$i" -le 2 ]; then
        admin_ports[$i]=$(free_port)
        extra=(--admin-listen "127.0.0.1:${admin_ports[$i]}")
    fi
    # `pullgate serve`, or `pullgate-serve` with no subcommand.
    cmd=("${bins[$i]}")
    case "$(basename "${bins[$i]}")" in pullgate-serve*) ;; *) cmd+=(serve) ;; esac
    "${cmd[@]}" --config "$work/mappings.toml" --listen "127.0.0.1:$port" \
        --access-log "$work/pullgate-$i-access.log" --events "${events[$i]}" \
        --data-dir "$work/data-$i" "${extra[@]}" 2>"$work/server-$i.log" &
    pids+=($!)
done
for port in "${ports[@]}"; do wait_port "$port"; done

for port in "${ports[@]}"; do
    loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$port$PATH_")
    [ "$loc" = "307 https://registry-1.docker.io/v2/library/alpine/manifests/3.20" ] \
        || { echo "port $port answered: $loc" >&2; exit 1; }
done

# CPU time (clock ticks) used so far by a server: all threads of a
# process, or nginx's master and workers.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
nginx_master=$(cat "$work/nginx.pid")
server_pids() {
    if [ "$1" -eq 0 ]; then
        echo "$nginx_master" $(pgrep -P "$nginx_master")
    else
        echo "${pids[$(($1 - 1))]}"
    fi
}
hz=$(getconf CLK_TCK)

declare -A rps p50 p99 cpu
for round in $(seq "$ROUNDS"); do
    # The order rotates round by round, so that no server always runs
    # right after another's file writes or in the same slot of the round.
    for k in $(seq 0 $((count - 1))); do
        i=$(( (k + round) % count ))
        before=$(cpu_ticks $(server_pids "$i"))
        out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:${ports[$i]}$PATH_")
        after=$(cpu_ticks $(server_pids "$i"))
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        cpu[$i,$round]=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
        rps[$i,$round]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        p50[$i,$round]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
        p99[$i,$round]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
        echo "round $round ${names[$i]}: ${rps[$i,$round]} req/s, ${cpu[$i,$round]} us CPU/request" >&2
    done
done

# With ADMIN=on, the counters must have seen every request of the run.
for i in "${!admin_ports[@]}"; do
    counted=$(curl -s "http://127.0.0.1:${admin_ports[$i]}/metrics" \
        | awk '/^pullgate_requests_total\{.*status="307"/ {n += $2} END {printf "%d", n}')
    [ "${counted:-0}" -gt 0 ] || { echo "${names[$i]}: /metrics counted no request" >&2; exit 1; }
    echo "${names[$i]}: admin listener on, $counted requests counted in /metrics" >&2
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "$(nginx -v 2>&1), $("$PULLGATE_BIN" --version)${ADMIN:+ (admin listener ${ADMIN})}${BASELINE_BIN:+, baseline $BASELINE_BIN}, wrk -t$THREADS -c$CONNECTIONS, $ROUNDS rounds x ${DURATION}s (median)"
echo
echo "| server | requests/s | p50 ms | p99 ms | server CPU µs/request |"
echo "| --- | ---: | ---: | ---: | ---: |"
declare -A med medcpu
for i in $(seq 0 $((count - 1))); do
    r=(); a=(); b=(); c=()
    for round in $(seq "$ROUNDS"); do
        r+=("${rps[$i,$round]}"); a+=("${p50[$i,$round]}"); b+=("${p99[$i,$round]}"); c+=("${cpu[$i,$round]}")
    done
    med[$i]=$(median "${r[@]}")
    medcpu[$i]=$(median "${c[@]}")
    printf '| %s | %.0f | %s | %s | %s |\n' "${names[$i]}" "${med[$i]}" "$(median "${a[@]}")" "$(median "${b[@]}")" "${medcpu[$i]}"
done
echo
awk -v n="${med[0]}" -v off="${med[1]}" -v on="${med[2]}" 'BEGIN {
    printf "pullgate (events off) / nginx: %.2f\n", off / n
    printf "pullgate (events on)  / nginx: %.2f\n", on / n
    printf "events on / events off:        %.2f\n", on / off
}'
awk -v n="${medcpu[0]}" -v off="${medcpu[1]}" -v on="${medcpu[2]}" 'BEGIN {
    printf "CPU per request, events on / off: %.2f (events cost %.2f us); pullgate (events off) / nginx: %.2f\n", on / off, on - off, off / n
}'
if [ -n "${BASELINE_BIN:-}" ]; then
    awk -v off="${med[1]}" -v on="${med[2]}" -v boff="${med[3]}" -v bon="${med[4]}" \
        -v coff="${medcpu[1]}" -v con="${medcpu[2]}" -v cboff="${medcpu[3]}" -v cbon="${medcpu[4]}" 'BEGIN {
        printf "requests/s, new / baseline: events off %.2f, events on %.2f\n", off / boff, on / bon
        printf "CPU per request, new / baseline: events off %.2f (%.2f vs %.2f us), events on %.2f (%.2f vs %.2f us)\n", coff / cboff, coff, cboff, con / cbon, con, cbon
    }'
fi
