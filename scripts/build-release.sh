#!/usr/bin/env bash
# Release builds of vmjail, vmjail-probe (the benchmarks' stand-in VMM),
# the containerd shim (installed from here; its benches measure this build)
# and the built-in jailer into target/release. The jailer is linked statically:
# it is exec'd between vmjail and every VMM, and without the dynamic loader
# that step is ~0.3 ms shorter (measured by `cargo bench -p vmjail-jail`).
# It reads no user or group database (ids are numeric), so static glibc is
# safe for it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vmjail -p vmjail-probe -p containerd-shim-vmjail-v2
cargo rustc --release -p vmjail-jailer --bin vmjail-jailer -- -C target-feature=+crt-static
