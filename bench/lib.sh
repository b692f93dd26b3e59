# What bench/redirect.sh and bench/manifest-cache.sh share: a work
# directory removed on exit with every server started there (pids, and an
# nginx whose pid file is $work/nginx.pid), loopback ports, wrk's latency
# units, medians. Sourced, not run.

# bench_workdir NAME: sets $work and the cleanup on exit.
bench_workdir() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    pids=()
    trap bench_cleanup EXIT
}
# SIGTERM, not SIGINT: a non-interactive shell starts background jobs with
# SIGINT ignored, and docker-registry keeps it ignored, so `wait` below
# waited for it forever after manifest-cache.sh had printed its results.
# pullgate stops gracefully on either.
bench_cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }
# wrk prints latencies as 512.00us, 1.20ms or 1.02s.
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v); print v } else { sub(/s$/,"",v); print v*1000 } }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
