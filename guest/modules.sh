# vmjail's guest module loader, sourced by guest/init (installed as
# /etc/vmjail/modules.sh). vmjail_modules LIST loads, in order, the
# modules of LIST (/etc/vmjail/*.modules, lines "WHEN PATH") the VM needs:
#   always   every time (the virtio core and virtio-mmio, microvm's transport)
#   pci      when the VM has a virtio PCI device (vendor 0x1af4; q35)
#   0xNNNN   when the VM has a virtio device with that id (its sysfs
#            `device`), which the transports above have registered by then
# A module already loaded is skipped. Everything here is a shell builtin
# but insmod: under TCG each fork+exec costs ~10 ms.

vmjail_has_virtio_pci() {
    for vendor in /sys/bus/pci/devices/*/vendor; do
        [ -r "$vendor" ] || continue
        read -r id <"$vendor"
        [ "$id" = 0x1af4 ] && return 0
    done
    return 1
}

vmjail_has_virtio_device() {
    for device in /sys/bus/virtio/devices/*/device; do
        [ -r "$device" ] || continue
        read -r id <"$device"
        [ "$id" = "$1" ] && return 0
    done
    return 1
}

vmjail_modules() {
    while read -r when path; do
        case "$when" in
            '#'* | '') continue ;;
            always) ;;
            pci) vmjail_has_virtio_pci || continue ;;
            0x*) vmjail_has_virtio_device "$when" || continue ;;
            *) echo "vmjail: $1: unknown condition $when"; continue ;;
        esac
        name=${path##*/}
        [ -d "/sys/module/${name%.ko}" ] && continue
        /bin/busybox insmod "/lib/modules/$name" || echo "vmjail: insmod $name failed"
    done <"$1"
}
