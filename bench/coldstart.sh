#!/usr/bin/env bash
# Cold start of the gateway Lambda bootstrap (a benchmark script, not a
# test): builds the release bootstrap for this machine's architecture, runs
# it against a local Lambda Runtime API with DynamoDB, Firehose and Secrets
# Manager on a local moto_server (all on 127.0.0.1), and prints the time
# from exec to its first `GET /2018-06-01/runtime/invocation/next` (Init),
# the first response's latency and a warm one. Then the zipped size of the
# arm64 bootstrap `sam build` produced (run `sam build` first, or
# tests/run.sh, which does).
#
#   bench/coldstart.sh            # 15 cold starts per configuration
#   RUNS=50 bench/coldstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || bash tests/install-deps.sh >/dev/null
cargo build --release --locked -p gateway 2>&1 | tail -1
echo "host: $(uname -m), $(nproc) cores; bootstrap $(stat -c %s target/release/gateway) bytes"
.venv/bin/python bench/coldstart.py target/release/gateway

zip_size() {
    .venv/bin/python - "$1" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
PY
}
arm64=.aws-sam/build/GatewayFunction/bootstrap
if [ -f "$arm64" ] && file "$arm64" | grep -q aarch64; then
    echo "arm64 bootstrap (sam build): $(stat -c %s "$arm64") bytes, zipped $(zip_size "$arm64") bytes"
else
    echo "no arm64 bootstrap at $arm64: run sam build (see README) for its zipped size"
fi
echo "host bootstrap zipped: $(zip_size target/release/gateway) bytes"
