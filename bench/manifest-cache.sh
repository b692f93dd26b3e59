#!/usr/bin/env bash
# Proxied manifest GETs with the manifest cache and without, side by side in
# one run: a real distribution registry on loopback (behind nginx, whose
# access log counts what reaches the upstream), one image pushed, and three
# pullgate servers proxying it — the cache on (tag resolutions trusted for
# the default 5 s), the cache on with no trust (a HEAD upstream for every
# GET, the body from memory), and the cache off (a GET upstream for every
# GET). Prints p50/p99 latency of a manifest GET by tag, requests/s, and
# the upstream manifest GETs and HEADs per 1,000 client pulls. Not a test:
# numbers go to docs/benchmarks.md and the README.
#
#   bench/manifest-cache.sh                  # 3 rounds x 10 s, 16 connections
#   DURATION=20 ROUNDS=5 bench/manifest-cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
ACCEPT="application/vnd.oci.image.manifest.v1+json"

for tool in nginx wrk curl skopeo docker-registry; do
    command -v "$tool" >/dev/null || { echo "missing $tool: bash tests/install-deps.sh" >&2; exit 1; }
done
if [ -z "${PULLGATE_SERVE_BIN:-}" ]; then
    cargo build --release --locked -q -p pullgate-server --bin pullgate-serve
    PULLGATE_SERVE_BIN=target/release/pullgate-serve
fi

source bench/lib.sh
bench_workdir pullgate-bench-manifests

# The upstream: distribution, and nginx in front of it counting requests.
port_registry=$(free_port)
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry-data
http:
  addr: 127.0.0.1:$port_registry
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
port_upstream=$(free_port)
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  log_format line '\$request_method \$uri \$status';
  access_log $work/upstream-access.log line;
  upstream registry { server 127.0.0.1:$port_registry; keepalive 32; }
  server {
    listen 127.0.0.1:$port_upstream;
    location / {
      proxy_pass http://registry;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
    }
  }
}
NGINX
nginx -c "$work/nginx.conf"
wait_port "$port_registry"
wait_port "$port_upstream"

# One image, built without a daemon by the e2e harness, pushed directly.
PYTHONPATH=tests/e2e python3 -c "from harness import images; images.build('$work/layout')"
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:single" "docker://127.0.0.1:$port_registry/app:single"

cat > "$work/mappings.toml" <<TOML
[[mappings]]
host = "127.0.0.1"
name = "app"
upstream = "http://127.0.0.1:$port_upstream/app"
mode = "proxy"
TOML

names=("cache on (tag trusted 5 s)" "cache on (a HEAD per GET)" "cache off")
flags=("" "--manifest-reference-ttl-secs 0" "--manifest-cache-mib 0")
ports=()
for i in 0 1 2; do
    port=$(free_port)
    ports+=("$port")
    # shellcheck disable=SC2086 # the flags are words
    "$PULLGATE_SERVE_BIN" --mappings "$work/mappings.toml" --listen "127.0.0.1:$port" \
        --access-log off --events off ${flags[$i]} 2>"$work/server-$i.log" &
    pids+=($!)
done
for port in "${ports[@]}"; do wait_port "$port"; done
for port in "${ports[@]}"; do
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" "http://127.0.0.1:$port/v2/app/manifests/single")
    [ "$status" = 200 ] || { echo "port $port answered $status" >&2; exit 1; }
done

upstream_count() { grep -c "^$1 /v2/app/manifests/" "$work/upstream-access.log" || true; }
declare -A rps p50 p99 gets heads gets_abs
for round in $(seq "$ROUNDS"); do
    for k in 0 1 2; do
        i=$(( (k + round) % 3 ))
        get_before=$(upstream_count GET); head_before=$(upstream_count HEAD)
        out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Accept: $ACCEPT" \
            "http://127.0.0.1:${ports[$i]}/v2/app/manifests/single")
        # nginx writes its log line after the answer: let the last land.
        sleep 0.5
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        gets[$i,$round]=$(awk -v d=$(( $(upstream_count GET) - get_before )) -v n="$requests" 'BEGIN { printf "%.2f", d * 1000 / n }')
        gets_abs[$i,$round]=$(( $(upstream_count GET) - get_before ))
        heads[$i,$round]=$(awk -v d=$(( $(upstream_count HEAD) - head_before )) -v n="$requests" 'BEGIN { printf "%.2f", d * 1000 / n }')
        rps[$i,$round]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        p50[$i,$round]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
        p99[$i,$round]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
        echo "round $round ${names[$i]}: ${rps[$i,$round]} req/s, p50 ${p50[$i,$round]} ms, ${gets[$i,$round]} upstream GETs / 1000 (${gets_abs[$i,$round]} for $requests pulls)" >&2
    done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "$("$PULLGATE_SERVE_BIN" --version), distribution $(docker-registry --version 2>&1 | awk '{print $3}'), wrk -t$THREADS -c$CONNECTIONS, $ROUNDS rounds x ${DURATION}s (median)"
echo
echo "| proxied manifest GET by tag | requests/s | p50 ms | p99 ms | upstream GETs per 1,000 pulls | upstream HEADs per 1,000 pulls |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
declare -A med50
for i in 0 1 2; do
    r=(); a=(); b=(); g=(); h=()
    for round in $(seq "$ROUNDS"); do
        r+=("${rps[$i,$round]}"); a+=("${p50[$i,$round]}"); b+=("${p99[$i,$round]}")
        g+=("${gets[$i,$round]}"); h+=("${heads[$i,$round]}")
    done
    med50[$i]=$(median "${a[@]}")
    printf '| %s | %.0f | %s | %s | %s | %s |\n' "${names[$i]}" "$(median "${r[@]}")" "${med50[$i]}" \
        "$(median "${b[@]}")" "$(median "${g[@]}")" "$(median "${h[@]}")"
done
echo
awk -v hit="${med50[0]}" -v head="${med50[1]}" -v off="${med50[2]}" 'BEGIN {
    printf "p50, cache hit / cache off: %.2f; a HEAD per GET / cache off: %.2f\n", hit / off, head / off
}'
