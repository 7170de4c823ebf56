#!/usr/bin/env bash
# Installs the host packages vmjail, its guest assets and its tests need on
# Debian (run as root). Idempotent: skips apt when everything is present.
# Never removes a package the host has (--no-remove): when the host already
# carries a newer QEMU part from the release's backports (e.g. qemu-utils),
# the QEMU packages come from the same backports suite instead.
set -euo pipefail

# docker.io, containerd, runc, podman, conmon, containernetworking-plugins
# and tar: the Docker/Podman tests (crates/vmjail/tests/docker_qemu.rs,
# podman_qemu.rs) run vmjail as those engines' OCI runtime; containerd (its
# ctr) and bsdutils (script: a terminal for `ctr run -t`) the containerd
# shim's tests. libseccomp-dev, libcap-ng-dev, pkg-config: building
# virtiofsd (below). protobuf-compiler: building the CRI test's client
# (the k8s-cri crate generates its gRPC code with protoc).
packages=(qemu-system-x86 busybox-static cpio gzip xz-utils zstd iproute2 kmod e2fsprogs
          docker.io containerd runc podman conmon containernetworking-plugins tar bsdutils
          libseccomp-dev libcap-ng-dev pkg-config protobuf-compiler)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

install() {
  DEBIAN_FRONTEND=noninteractive apt-get "$@" install -y -qq --no-remove --no-install-recommends "${missing[@]}"
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get update -qq
  if ! install; then
    # Only the host's own sources plus <codename>-backports, in a private
    # apt state dir: the host's sources.list is left as it was.
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
    echo "==> retrying from ${codename}-backports (an installed package conflicts with ${codename}'s QEMU)"
    apt_dir=/var/lib/vmjail/apt
    mkdir -p "$apt_dir/sources" "$apt_dir/lists/partial"
    rm -f "$apt_dir"/sources/*
    cp /etc/apt/sources.list.d/*.sources "$apt_dir/sources/" 2>/dev/null || true
    [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$apt_dir/sources/host.list"
    cat >"$apt_dir/sources/vmjail-backports.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    opts=(-o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$apt_dir/sources"
          -o "Dir::State::Lists=$apt_dir/lists")
    apt-get "${opts[@]}" update -qq
    install "${opts[@]}" -t "${codename}-backports"
  fi
else
  echo "==> Debian packages present"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# QEMU's vsock back-end (no Debian package): vhost-device-vsock serves the
# guest's vsock as a Firecracker-style hybrid vsock on a host Unix socket.
if [ ! -x /usr/local/bin/vhost-device-vsock ]; then
  echo "==> installing vhost-device-vsock to /usr/local/bin"
  cargo install --locked --root /usr/local vhost-device-vsock --version 0.3.0
fi

# QEMU's shared_fs = "virtio-fs" daemon (not packaged in bookworm; builds
# against libseccomp and libcap-ng, installed above).
if [ ! -x /usr/local/bin/virtiofsd ]; then
  echo "==> installing virtiofsd to /usr/local/bin"
  cargo install --locked --root /usr/local virtiofsd --version 1.14.0
fi
