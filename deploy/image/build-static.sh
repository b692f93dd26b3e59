#!/usr/bin/env bash
# Builds pullgate-serve, with the AWS adapters, as a static glibc binary for
# this machine's architecture, the binary the container image runs (FROM
# scratch: no libc there). Prints the binary's path; with a directory
# argument also stages the image's files there (deploy/image/stage.sh).
#
# One script for both build paths, so they cannot drift: the Dockerfile's
# build stage runs it inside rust:1-bookworm, and on a machine that cannot
# pull that image it runs on the host before `docker build --target
# from-host` (see the Dockerfile).
#
#   deploy/image/build-static.sh [STAGE_DIR]
#
# PULLGATE_IMAGE_PROFILE: `release` (default, what the image ships) or
# `quick`, for the test suite: the same features and static linking, with
# opt-level 1, no LTO and 16 codegen units, which takes about 40% less CPU
# to build cold (tests/run.sh). Another name is a profile of Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/../.."

# No musl target needed: glibc links statically with crt-static, and from
# glibc 2.34 on the files and dns name services are part of libc itself, so
# getaddrinfo works in FROM scratch without any libnss_*.so (bookworm has
# 2.36; tests/e2e/test_k_container.py resolves an upstream named localhost
# inside the image). --target keeps RUSTFLAGS off build scripts and proc
# macros, which must stay dynamic.
triple="$(uname -m)-unknown-linux-gnu"
profile="${PULLGATE_IMAGE_PROFILE:-release}"
define=()
if [ "$profile" = quick ]; then
    # Defined here, not in Cargo.toml: it exists for this build only.
    define=(--config 'profile.quick.inherits="release"' --config 'profile.quick.opt-level=1'
            --config 'profile.quick.lto=false' --config 'profile.quick.codegen-units=16')
fi
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build "${define[@]}" --locked --profile "$profile" --target "$triple" \
    -p pullgate-server --features aws --bin pullgate-serve >&2

# cargo names the dev profile's directory "debug".
dir="$profile"
[ "$profile" = dev ] && dir=debug
binary="${CARGO_TARGET_DIR:-target}/$triple/$dir/pullgate-serve"
case "$binary" in /*) ;; *) binary="$PWD/$binary" ;; esac

if [ $# -gt 0 ]; then
    deploy/image/stage.sh "$binary" "$1" >&2
fi
echo "$binary"
