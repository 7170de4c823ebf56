#!/bin/sh
# Build vmjail's guest assets: an uncompressed Debian kernel (vmlinux, boots
# via PVH on QEMU's microvm) and a busybox initramfs whose /init prints
# VMJAIL-GUEST-READY and the kernel's uptime, then powers off.
#
# usage: scripts/build-guest.sh [--install] [OUTDIR]
#   OUTDIR     where vmlinux and initramfs.cpio.gz go (default: build/guest
#              in the repository)
#   --install  also copy them to /usr/share/vmjail/guest/
#   VMJAIL_KERNEL_PACKAGE=linux-image-...-unsigned overrides the kernel package.
#
# Idempotent: each step is skipped when its output is already there.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
install=0
outdir=
for arg in "$@"; do
    case "$arg" in
        --install) install=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        -*) echo "build-guest: unknown option $arg (valid: --install, OUTDIR)" >&2; exit 2 ;;
        *) [ -z "$outdir" ] || { echo "build-guest: only one OUTDIR allowed" >&2; exit 2; }
           outdir=$arg ;;
    esac
done
outdir=${outdir:-$repo/build/guest}
install_dir=/usr/share/vmjail/guest

step() { echo "==> build-guest: $*"; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

for tool in apt-cache apt-get dpkg-deb cpio gzip readelf strip truncate; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (apt-get install -y dpkg apt cpio gzip binutils)"
done
busybox=$(command -v busybox) || die "busybox is missing (apt-get install -y busybox-static)"
# A dynamically linked busybox would need its libraries in the initramfs.
if readelf -l "$busybox" | grep -q 'Requesting program interpreter'; then
    die "$busybox is dynamically linked; install busybox-static"
fi

mkdir -p "$outdir/cache"
outdir=$(cd "$outdir" && pwd)
cache=$outdir/cache

# 1. Which kernel: the unsigned image the cloud metapackage points at.
if [ -n "${VMJAIL_KERNEL_PACKAGE:-}" ]; then
    pkg=$VMJAIL_KERNEL_PACKAGE
else
    dep=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
          sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
    if [ -z "$dep" ]; then
        dep=$(apt-cache depends linux-image-amd64 2>/dev/null |
              sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
    fi
    [ -n "$dep" ] || die "cannot resolve the kernel from linux-image-cloud-amd64 or linux-image-amd64 (run apt-get update)"
    pkg=${dep%-unsigned}-unsigned
fi
kver=${pkg#linux-image-}
kver=${kver%-unsigned}
step "kernel package $pkg (kernel $kver)"

# 2. Fetch it.
deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
    step "downloading $pkg"
    (cd "$cache" && apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    [ -n "$deb" ] || die "apt-get download $pkg produced no .deb in $cache"
else
    step "have $(basename "$deb")"
fi

# 3. Unpack it.
unpacked=$cache/unpacked-$kver
if [ ! -f "$unpacked/boot/vmlinuz-$kver" ]; then
    step "unpacking $(basename "$deb")"
    rm -rf "$unpacked.tmp"
    dpkg-deb -x "$deb" "$unpacked.tmp"
    [ -f "$unpacked.tmp/boot/vmlinuz-$kver" ] || die "$deb has no boot/vmlinuz-$kver"
    rm -rf "$unpacked"
    mv "$unpacked.tmp" "$unpacked"
else
    step "have unpacked kernel $kver"
fi
config=$unpacked/boot/config-$kver
if ! grep -q '^CONFIG_PVH=y' "$config"; then
    die "$config lacks CONFIG_PVH=y: this kernel cannot boot as vmlinux via PVH on microvm"
fi

# 4. vmlinuz -> vmlinux, like the kernel's scripts/extract-vmlinux: find a
#    compressor's magic in the bzImage and decompress from there.
is_pvh_elf() {
    [ "$(head -c4 "$1" | od -An -c | tr -d ' \n')" = "177ELF" ] &&
        readelf -n "$1" 2>/dev/null | grep -q 'Xen.*0x00000012\|PHYS32_ENTRY\|Unknown note type: (0x00000012)'
}
vmlinux=$outdir/vmlinux
stamp=$outdir/vmlinux.kver
if [ -f "$vmlinux" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$kver" ] && is_pvh_elf "$vmlinux"; then
    step "have vmlinux ($kver)"
else
    step "extracting vmlinux from vmlinuz-$kver"
    vmlinuz=$unpacked/boot/vmlinuz-$kver
    found=0
    # magic (as a grep -P pattern) and the decompressor that reads stdin.
    for spec in \
        '\x02\x21\x4c\x18|lz4 -dc' \
        '\x28\xb5\x2f\xfd|zstd -dcq' \
        '\xfd\x37\x7a\x58\x5a\x00|xz -dcq' \
        '\x1f\x8b\x08|gzip -dcq' \
        '\x5d\x00\x00\x00|unlzma -c' \
        '\x42\x5a\x68|bzip2 -dcq'
    do
        magic=${spec%%|*}
        cmd=${spec#*|}
        command -v "${cmd%% *}" >/dev/null || continue
        for pos in $(LC_ALL=C grep -aboP "$magic" "$vmlinuz" | cut -d: -f1); do
            # Trailing data after the payload makes some decompressors
            # complain; the ELF check below is what decides.
            tail -c "+$((pos + 1))" "$vmlinuz" | $cmd >"$vmlinux.tmp" 2>/dev/null || true
            if is_pvh_elf "$vmlinux.tmp"; then
                found=1
                break 2
            fi
        done
    done
    [ "$found" = 1 ] || { rm -f "$vmlinux.tmp"; die "no compressed ELF kernel with a PVH entry note found in $vmlinuz"; }
    mv "$vmlinux.tmp" "$vmlinux"
    echo "$kver" >"$stamp"
fi
step "vmlinux: $(readelf -h "$vmlinux" | sed -n 's/^ *Type: *//p'), PVH entry note present"

# 5. The guest agent, when the repository has it: a static binary (only
#    the gnu target is installed; no NSS lookups in the agent), still
#    position-independent (ASLR), with packed relative relocations: with
#    plain ones each exec of it (the agent, and each container's init)
#    first applied 16,500 relocations, 5-10 ms under TCG. cargo rebuilds
#    only what changed.
agent=
if [ -f "$repo/crates/vmjail-agent/Cargo.toml" ]; then
    step "building the static guest agent"
    command -v cargo >/dev/null || die "cargo is missing (the guest agent is built with it)"
    (cd "$repo" && RUSTFLAGS='-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs' \
        cargo build --quiet --release -p vmjail-agent --target x86_64-unknown-linux-gnu) ||
        die "building the guest agent failed"
    agent=$repo/target/x86_64-unknown-linux-gnu/release/vmjail-agent
    [ -x "$agent" ] || die "cargo built no $agent"
    if readelf -l "$agent" | grep -q 'Requesting program interpreter'; then
        die "$agent is dynamically linked; the initramfs has no C library"
    fi
fi

# 6. The initramfs: static busybox, /init, the ACPI power-button modules
#    (so QMP system_powerdown reaches a guest held by vmjail.hold), the
#    agent's and the NICs' modules and the agent. Modules are copied
#    without Debian's signature (strip --strip-debug drops the appended
#    signature): the guest kernel does not enforce signatures, so checking
#    them only cost boot time (a SHA-256 and an RSA check per module,
#    slow under TCG); the initramfs is vmjail's own build.
initrd=$outdir/initramfs.cpio.gz
staging=$outdir/initramfs
inputs="$repo/guest/init $repo/guest/modules.sh $repo/guest/net.sh $repo/guest/net.modules $repo/guest/agent.modules $repo/guest/container.modules $busybox $stamp $agent $0"
if [ -f "$initrd" ] && [ -z "$(find $inputs -newer "$initrd" 2>/dev/null)" ]; then
    step "have initramfs.cpio.gz"
else
    step "building initramfs"
    rm -rf "$staging"
    mkdir -p "$staging/bin" "$staging/sbin" "$staging/dev" "$staging/proc" \
        "$staging/sys" "$staging/etc" "$staging/lib/modules" "$staging/run"
    cp "$busybox" "$staging/bin/busybox"
    # Every applet on PATH: what a user runs with `vmjail exec ID -- ls`.
    for applet in $("$busybox" --list); do
        [ -e "$staging/bin/$applet" ] || ln -s busybox "$staging/bin/$applet"
    done
    cp "$repo/guest/init" "$staging/init"
    chmod 0755 "$staging/init"
    # Guest networking from vmjail's kernel parameters, and its modules.
    mkdir -p "$staging/etc/vmjail"
    cp "$repo/guest/modules.sh" "$repo/guest/net.sh" "$repo/guest/net.modules" \
        "$repo/guest/agent.modules" "$repo/guest/container.modules" "$staging/etc/vmjail/"
    for list in net.modules agent.modules container.modules; do
        grep -v '^#' "$repo/guest/$list" | while read -r _when mod; do
            [ -n "$mod" ] || continue
            src=$unpacked/lib/modules/$kver/kernel/$mod
            [ -f "$src" ] || die "$src is missing (guest/$list)"
            strip --strip-debug -o "$staging/lib/modules/${mod##*/}" "$src"
        done
    done
    if [ -n "$agent" ]; then
        install -m 0755 "$agent" "$staging/sbin/vmjail-agent"
        # Under this name the agent is the guest's init (vmjail boots agent
        # guests with rdinit=/sbin/vmjail-init; guest/init execs it too).
        ln -s vmjail-agent "$staging/sbin/vmjail-init"
    fi
    for mod in drivers/acpi/button.ko drivers/input/evdev.ko; do
        src=$unpacked/lib/modules/$kver/kernel/$mod
        [ -f "$src" ] && strip --strip-debug -o "$staging/lib/modules/${mod##*/}" "$src"
    done
    # The console node lets the kernel give /init its stdio; creating it
    # needs root, and /init mounts devtmpfs as a fallback.
    mknod -m 600 "$staging/dev/console" c 5 1 2>/dev/null || true
    (cd "$staging" && find . -print0 | LC_ALL=C sort -z |
        cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -9n >"$initrd.tmp"
    # Zero-padded to whole 4 KiB pages (the kernel skips zeros after the
    # archive): with some sizes the guest hung at "ACPI: Core revision" or
    # came up without ACPI, the initrd's last partial page meeting the
    # firmware's tables.
    size=$(wc -c <"$initrd.tmp")
    truncate -s $(( (size + 4095) / 4096 * 4096 )) "$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
fi
step "initramfs: $initrd ($(wc -c <"$initrd") bytes)"

if [ "$install" = 1 ]; then
    if cmp -s "$vmlinux" "$install_dir/vmlinux" &&
        cmp -s "$initrd" "$install_dir/initramfs.cpio.gz"; then
        step "already installed in $install_dir"
    else
        step "installing to $install_dir"
        mkdir -p "$install_dir"
        install -m 0644 "$vmlinux" "$install_dir/vmlinux"
        install -m 0644 "$initrd" "$install_dir/initramfs.cpio.gz"
    fi
fi
step "done: kernel $vmlinux, initrd $initrd"
