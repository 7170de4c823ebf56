#!/usr/bin/env bash
# Installs the host packages vmjail, its guest assets and its tests need on
# Debian (run as root). Idempotent: skips apt when everything is present.
set -euo pipefail

packages=(qemu-system-x86 busybox-static cpio gzip xz-utils zstd iproute2 kmod hyperfine)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "==> Debian packages present"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
