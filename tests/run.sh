#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests
# need (idempotent), runs the static checks, the unit, table and property
# tests, then the end-to-end matrix with the real registry and real clients.
# Servers the tests start listen on 127.0.0.1 and are stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

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
cargo build --locked -p pullgate-cli --bin pullgate
export PULLGATE_BIN="$PWD/target/debug/pullgate"
cargo build --locked -p pullgate-server --features aws --bin pullgate-serve
export PULLGATE_SERVE_BIN="$PWD/target/debug/pullgate-serve"
cargo build --locked -p gateway
export PULLGATE_GATEWAY_BIN="$PWD/target/debug/gateway"

step "end-to-end matrix (real distribution registry, real clients)"
.venv/bin/python -m pytest tests/e2e -ra "$@"
