#!/usr/bin/env bash
# Installs what the tests need, idempotently: Debian packages for the real
# registry and the real clients, and a Python venv for the e2e harness.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(docker-registry skopeo podman buildah umoci containerd nginx wrk apache2-utils jq uidmap docker.io curl python3-venv chromium file docker-compose systemd)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Real published IP data for the enrichment tests (pinned versions).
ipdb=.cache/ip-location-db
if [ ! -f "$ipdb/asn/asn-ipv4.csv" ] || [ ! -f "$ipdb/country/geo-whois-asn-country-ipv4.csv" ] \
    || [ ! -f "$ipdb/country-mmdb/geo-whois-asn-country.mmdb" ]; then
    command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
    rm -rf "$ipdb" && mkdir -p "$ipdb"
    (
        cd "$ipdb"
        npm pack --silent @ip-location-db/asn@2.3.2026061719 \
            @ip-location-db/geo-whois-asn-country@2.3.2026061719 \
            @ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719 >/dev/null
        tar xzf ip-location-db-asn-2*.tgz && mv package asn
        tar xzf ip-location-db-geo-whois-asn-country-2*.tgz && mv package country
        tar xzf ip-location-db-geo-whois-asn-country-mmdb-*.tgz && mv package country-mmdb
        rm -f ./*.tgz
    )
fi

if ! rustup component list --installed 2>/dev/null | grep -q clippy; then
    rustup component add clippy rustfmt || true
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import pytest, jwt, cryptography" 2>/dev/null \
    || ! cmp -s tests/e2e/requirements.txt .venv/.requirements.txt; then
    .venv/bin/pip install -q -r tests/e2e/requirements.txt
    cp tests/e2e/requirements.txt .venv/.requirements.txt
fi

# AWS deployment checks (tests/aws-checks.sh): SAM CLI, cargo-lambda and
# zig from PyPI, in their own venv under .venv (the SAM CLI's pins conflict
# with the e2e harness's), and the aarch64 target for the arm64 bootstrap.
sam_tools="aws-sam-cli==1.170.0 cargo-lambda==1.9.2 ziglang==0.13.0.post1"
if [ ! -x .venv/sam/bin/sam ] || [ "$(cat .venv/sam/.requirements 2>/dev/null)" != "$sam_tools" ]; then
    python3 -m venv .venv/sam
    # shellcheck disable=SC2086
    .venv/sam/bin/pip install -q $sam_tools
    echo "$sam_tools" > .venv/sam/.requirements
fi
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu \
        || echo "aarch64 Rust target unavailable: the AWS checks build x86_64 instead"
fi
echo "test dependencies ready"
