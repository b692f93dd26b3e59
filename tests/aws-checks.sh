#!/usr/bin/env bash
# The AWS deployment checks tests/run.sh runs: cfn-lint, `sam validate
# --lint`, and `sam build` producing the Lambda bootstrap (arm64 through
# cargo-lambda and zig, both from PyPI; x86_64 through the template's
# Architecture parameter where the aarch64 Rust target cannot be
# installed). `sam build` runs without network: in an empty network
# namespace where `unshare` allows one, otherwise with every proxy pointed
# at a closed port and cargo offline. Prints each zipped bootstrap's size.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.venv/sam/bin
[ -x "$tools/sam" ] || { echo "SAM CLI missing: run tests/install-deps.sh" >&2; exit 1; }
export PATH="$PWD/$tools:$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

echo "cfn-lint $(cfn-lint --version | awk '{print $2}'): template.yaml"
cfn-lint template.yaml

sam validate --lint

arch=arm64
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    arch=x86_64
    echo "aarch64-unknown-linux-gnu not installed: building x86_64 (Architecture=x86_64)"
fi

offline=(env CARGO_NET_OFFLINE=true HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
         http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy=)
if unshare -n true 2>/dev/null; then
    offline=(unshare -n "${offline[@]}")
    echo "sam build in an empty network namespace (no network at all)"
fi
"${offline[@]}" sam build --parameter-overrides "Architecture=$arch"

for function in .aws-sam/build/*Function; do
    bootstrap="$function/bootstrap"
    file "$bootstrap"
    case "$arch" in
        arm64) file "$bootstrap" | grep -q aarch64 ;;
        x86_64) file "$bootstrap" | grep -q x86-64 ;;
    esac
    zipped=$(.venv/bin/python - "$bootstrap" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
PY
)
    echo "$(basename "$function") bootstrap ($arch): $(stat -c %s "$bootstrap") bytes, zipped $zipped bytes"
    if [ "$zipped" -gt $((10 * 1024 * 1024)) ]; then
        echo "zipped bootstrap over the 10 MB target" >&2
        exit 1
    fi
done
