#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests
# need (idempotent), runs the static checks, the unit, table and property
# tests, then the end-to-end matrix with the real registry and real clients.
# Servers the tests start listen on 127.0.0.1 and are stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# A run from a fresh clone builds everything once: incremental compilation
# only adds its caches to the disk (several GB over the three target
# triples). Set CARGO_INCREMENTAL=1 to keep them for repeated local runs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

started=$(date +%s)
# Each step says how far into the run it starts and how much disk is free
# there: where CI's time and space go.
step() {
    printf '\n==> [%ss, %s free] %s\n' "$(($(date +%s) - started))" \
        "$(df -h --output=avail . | tail -1 | tr -d ' ')" "$*"
}

step "installing test dependencies"
bash tests/install-deps.sh

step "cargo fmt --check"
cargo fmt --all --check

step "docs: the code table names real paths, nothing points outside the repository"
python3 tests/docs_paths.py

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "unit, table and property tests"
cargo test --workspace --locked

step "AWS template: cfn-lint, sam validate --lint, sam build (offline)"
bash tests/aws-checks.sh

step "building pullgate for the end-to-end matrix"
# The binaries as `cargo test --workspace` built them: one build of the
# workspace with its features unified (pullgate-serve has the AWS adapters
# because the CLI asks for them) and the test targets selected, so nothing
# is compiled again. Building each package on its own (-p) would resolve
# other feature sets and recompile most dependencies three times.
cargo build --workspace --locked --bins --tests
export PULLGATE_BIN="$PWD/target/debug/pullgate"
export PULLGATE_SERVE_BIN="$PWD/target/debug/pullgate-serve"
export PULLGATE_GATEWAY_BIN="$PWD/target/debug/gateway"

step "building the container image's static pullgate-serve (--features aws, quick profile)"
# The image's binary as the Dockerfile builds it (same script, features and
# static linking) for test_k_container.py, in the quick profile (opt-level 1,
# no LTO): about 300 s of CPU cold against 350-450 s for release, whose LTO
# link is one long serial step; the test checks the packaging, not speed.
# Nothing built above is reused (another target triple and RUSTFLAGS).
PULLGATE_IMAGE_BIN="$(PULLGATE_IMAGE_PROFILE=quick deploy/image/build-static.sh)"
export PULLGATE_IMAGE_BIN

step "end-to-end matrix (real distribution registry, real clients)"
.venv/bin/python -m pytest tests/e2e -ra "$@"
step "done"
