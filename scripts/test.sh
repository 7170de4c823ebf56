#!/usr/bin/env bash
# README command 2: run every test (as root: the jail tests use real
# namespaces, mounts and cgroups; the boot tests run a real QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
# Integration tests of several crates exec the `vmjail` and `vmjail-probe`
# binaries from the target dir, so build every binary first.
cargo build --workspace --bins
scripts/build-guest.sh build/guest
cargo nextest run --workspace --profile ci "$@"
