# vmjail guest networking, sourced by guest/init and, in a guest whose init
# is the agent, run by it before it serves (installed as
# /etc/vmjail/net.sh). It applies what vmjail put on the kernel command
# line (the Debian cloud kernel has no CONFIG_IP_PNP, so the kernel's own
# ip= is not available):
#   vmjail.nic=<id>,<mac>,<mtu>      the NIC with that MAC gets that MTU
#   vmjail.addr=<id>,<ip>/<len>      an address on it
#   vmjail.route=<id>,<dest>|default,<gateway>|-
#   vmjail.neigh=<id>,<ip>,<mac>     a static neighbour
# With vmjail.test=net-echo it also starts the network test services (for
# vmjail's own tests and benchmark): a TCP echo server on port 7 and, with
# vmjail.test.peer=<ip>:<port>, a client that sends 65536 bytes to that
# peer and reports on the console how many came back.
bb=/bin/busybox

# Every value of kernel parameter $1, one per line.
vmjail_params() {
    for word in $($bb cat /proc/cmdline); do
        case "$word" in "$1"=*) echo "${word#*=}" ;; esac
    done
}

# The interface whose MAC is $1, waited for (probing is asynchronous).
vmjail_dev_of() {
    tries=0
    while [ "$tries" -lt 100 ]; do
        for dev in /sys/class/net/*; do
            if [ "$($bb cat "$dev/address" 2>/dev/null)" = "$1" ]; then
                echo "${dev##*/}"
                return 0
            fi
        done
        tries=$((tries + 1))
        $bb usleep 50000
    done
    return 1
}

# The device of NIC id $1 (set by vmjail_nics); ids are net<digits>.
vmjail_dev() {
    case "$1" in net[0-9]*) eval "echo \${vmjail_if_$1:-}" ;; esac
}

# Split "a,b,c" into $f1 $f2 $f3.
vmjail_split() {
    f1=${1%%,*}
    rest=${1#*,}
    f2=${rest%%,*}
    f3=${rest#*,}
}

vmjail_nics() {
    nics=$(vmjail_params vmjail.nic)
    [ -n "$nics" ] || return 0
    # The modules guest/net.modules lists, of the devices the VM has.
    vmjail_modules /etc/vmjail/net.modules
    $bb ip link set lo up
    for nic in $nics; do
        vmjail_split "$nic"
        case "$f1" in net[0-9]*) ;; *) echo "vmjail.net: bad NIC id $f1"; continue ;; esac
        if ! dev=$(vmjail_dev_of "$f2"); then
            echo "vmjail.net: no interface with MAC $f2"
            continue
        fi
        eval "vmjail_if_$f1=$dev"
        $bb ip link set dev "$dev" mtu "$f3"
        $bb ip link set dev "$dev" up
    done
    for a in $(vmjail_params vmjail.addr); do
        dev=$(vmjail_dev "${a%%,*}")
        [ -n "$dev" ] && $bb ip addr add "${a#*,}" dev "$dev"
    done
    for r in $(vmjail_params vmjail.route); do
        vmjail_split "$r"
        dev=$(vmjail_dev "$f1")
        [ -n "$dev" ] || continue
        if [ "$f3" = - ]; then
            $bb ip route add "$f2" dev "$dev"
        else
            $bb ip route add "$f2" via "$f3" dev "$dev"
        fi
    done
    for n in $(vmjail_params vmjail.neigh); do
        vmjail_split "$n"
        dev=$(vmjail_dev "$f1")
        [ -n "$dev" ] && $bb ip neigh replace "$f2" lladdr "$f3" dev "$dev" nud permanent
    done
    for nic in $nics; do
        id=${nic%%,*}
        dev=$(vmjail_dev "$id")
        [ -n "$dev" ] || continue
        echo "VMJAIL-NET-IF $id $dev $($bb cat "/sys/class/net/$dev/address")" \
            "$($bb ip -o addr show dev "$dev" | $bb awk '{print $4}' | $bb grep -v '^fe80' | $bb tr '\n' ' ')"
    done
}

vmjail_net_test() {
    $bb grep -qw vmjail.test=net-echo /proc/cmdline || return 0
    $bb nc -ll -p 7 -e /bin/cat &
    peer=$(vmjail_params vmjail.test.peer)
    [ -n "$peer" ] || return 0
    (
        tries=0
        got=0
        while [ "$tries" -lt 100 ]; do
            got=$($bb head -c 65536 /dev/zero | $bb nc "${peer%:*}" "${peer##*:}" 2>/dev/null | $bb wc -c)
            [ "$got" -gt 0 ] && break
            tries=$((tries + 1))
            $bb usleep 100000
        done
        echo "VMJAIL-NET-PEER sent=65536 received=$got"
    ) &
}

vmjail_nics
vmjail_net_test
