#!/usr/bin/env bash
# README command 1: set everything up on a fresh Debian machine and run
# vmjail's main job — boot a real guest kernel in a jailed QEMU through the
# shipped example configuration. Run as root from the repository root.
# Afterwards `vmjail` is on PATH (/usr/local/bin) and the guest is where the
# embedded default configuration looks (/usr/share/vmjail/guest), so every
# command README shows works as written.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
echo "==> building vmjail (release) and installing it (and its jailer) in /usr/local/bin"
scripts/build-release.sh
install -m 0755 target/release/vmjail target/release/vmjail-jailer /usr/local/bin/
scripts/build-guest.sh --install build/guest

echo "==> vmjail env (the embedded default configuration finds the guest)"
vmjail env >/dev/null
echo "==> vmjail check (host and configuration)"
vmjail --config examples/qemu.toml check
echo "==> vmjail run: boot the example sandbox"
vmjail --config examples/qemu.toml run --timeout 180 | tee build/demo-console.log
# The job is done only when the guest itself said so.
if ! grep -q VMJAIL-GUEST-READY build/demo-console.log; then
  echo "demo: the guest's VMJAIL-GUEST-READY marker never appeared" >&2
  exit 1
fi
echo "==> demo: a real guest kernel booted in a jailed QEMU"
