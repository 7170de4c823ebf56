//! `/run/netns` on a fresh host, where it starts as a plain directory: vmjail
//! must keep iproute2's convention (a shared mount point of itself) so that
//! a later `ip netns add` never shadows a sandbox's pin, and must still
//! clean a pin that was shadowed before (by an older vmjail). Each case runs
//! the real binary in a private mount namespace whose `/run/netns` the test
//! turns back into a plain directory, so the host's is never touched.

mod lifecycle_support;

use std::process::Command;

use lifecycle_support::{require_root, unique_id, World};

/// Run `script` with `sh -eu` in a new mount namespace (private
/// propagation) after unmounting every mount on `/run/netns` there. `$VMJAIL`
/// is the binary with this world's config; `$ID` the sandbox id.
fn in_fresh_run_netns(w: &World, id: &str, script: &str) -> String {
    let vmjail = format!(
        "{} --config {}",
        env!("CARGO_BIN_EXE_vmjail"),
        w.config.display()
    );
    let prelude = r#"
while grep -q ' /run/netns ' /proc/self/mountinfo; do umount -l /run/netns; done
mkdir -p /run/netns
mounted() { grep -q " $1 " /proc/self/mountinfo; }
"#;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc"])
        .arg(format!("{prelude}\n{script}"))
        .env("VMJAIL", vmjail)
        .env("ID", id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "script failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_plain_run_netns_becomes_shared_and_ip_netns_add_cannot_shadow_a_sandbox() {
    if !require_root() {
        return;
    }
    let w = World::new("plainns");
    let id = unique_id("plainns");
    let other = format!("vmjail-lt-other-{}", std::process::id());
    let out = in_fresh_run_netns(
        &w,
        &id,
        &format!(
            r#"
mounted /run/netns && echo "not plain" && exit 1
$VMJAIL create --id "$ID"
# iproute2's convention: a shared mount of itself.
grep ' /run/netns /run/netns ' /proc/self/mountinfo | grep -q shared: || {{ echo "not shared"; exit 1; }}
ip netns add {other}
$VMJAIL delete --force "$ID"
mounted /run/netns/vmjail-$ID && echo "pin left" && exit 1
test ! -e /run/netns/vmjail-$ID
ip netns exec {other} true
ip netns delete {other}
echo CLEAN
"#
        ),
    );
    assert!(out.contains("CLEAN"), "{out}");
    w.assert_no_leaks(&id, None);
}

/// A pin under `/run/netns` that a later recursive bind of `/run/netns`
/// shadows (what `ip netns add` did to an older vmjail's pins): `delete
/// --force` reaches it, removes it, and the other tool's namespace stays.
#[test]
fn delete_cleans_a_pin_shadowed_by_a_later_mount_of_run_netns() {
    if !require_root() {
        return;
    }
    let w = World::new("shadowns");
    let id = unique_id("shadowns");
    let other = format!("vmjail-lt-shadow-{}", std::process::id());
    let out = in_fresh_run_netns(
        &w,
        &id,
        &format!(
            r#"
$VMJAIL create --id "$ID"
# Shadow the pin the way it happened on hosts with a private /run: cover
# /run/netns with a private recursive bind of itself, then let ip share it.
mount --make-private /run/netns
mount --rbind /run/netns /run/netns
ip netns add {other}
test "$(grep -c " /run/netns/vmjail-$ID " /proc/self/mountinfo)" = 2
$VMJAIL delete --force "$ID"
mounted /run/netns/vmjail-$ID && echo "shadowed pin left" && exit 1
test ! -e /run/netns/vmjail-$ID
ip netns exec {other} true
ip netns delete {other}
echo CLEAN
"#
        ),
    );
    assert!(out.contains("CLEAN"), "{out}");
    w.assert_no_leaks(&id, None);
}
