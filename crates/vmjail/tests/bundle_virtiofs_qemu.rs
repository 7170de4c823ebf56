//! QEMU's `shared_fs = "virtio-fs"` with the real binary, a real guest,
//! its real agent and the real virtiofsd: the container's rootfs and its
//! bind mounts are the host's own files (a file written in a bound
//! directory or in the rootfs is on the host, a read-only bind refuses
//! writes), on microvm (virtio-mmio) and q35 (PCI). After each run nothing
//! is left: no mounts, no virtiofsd, no directories, no cgroups. And
//! `run --bundle` SIGKILLed at every record of the new steps (the
//! containers recorded, virtiofsd's directory, each bind mount, its
//! cgroup, its pid) is cleaned by `gc` and by `delete --force`.

mod bundle_support;
mod lifecycle_support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use bundle_support::bundle;
use lifecycle_support::*;

const DAEMON: &str = "/usr/local/bin/virtiofsd";

/// A world whose QEMU shares bundles over virtio-fs.
fn world(tag: &str, machine: &str) -> World {
    let w = World::new(tag);
    w.use_vsock();
    let text = std::fs::read_to_string(&w.config).unwrap();
    let shared = text.replacen(
        "machine_type = \"microvm\"\n",
        &format!(
            "machine_type = \"{machine}\"\nshared_fs = \"virtio-fs\"\n\
             virtio_fs_daemon = \"{DAEMON}\"\n"
        ),
        1,
    );
    assert_ne!(shared, text);
    std::fs::write(&w.config, shared).unwrap();
    w
}

/// Host directories for the binds: `data` (read-write), `ro`, and a
/// `hosts` file; the bundle gets them as /data, /ro and /etc/hosts.
fn bundle_with_binds(w: &World, script: &str) -> (PathBuf, PathBuf) {
    let host = w.dir.path().join(unique_id("host"));
    for d in ["data", "ro"] {
        std::fs::create_dir_all(host.join(d)).unwrap();
    }
    std::fs::write(host.join("hosts"), "10.9.8.7 shared\n").unwrap();
    std::fs::write(host.join("ro/in"), "read-only\n").unwrap();
    let b = bundle(w.dir.path(), script, false);
    let path = b.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["mounts"].as_array_mut().unwrap().extend([
        serde_json::json!({"destination": "/etc/hosts", "type": "bind",
            "source": host.join("hosts"), "options": ["rbind", "rprivate"]}),
        serde_json::json!({"destination": "/data", "type": "bind",
            "source": host.join("data"), "options": ["rbind", "rw"]}),
        serde_json::json!({"destination": "/ro", "type": "bind",
            "source": host.join("ro"), "options": ["rbind", "ro"]}),
    ]);
    std::fs::write(&path, config.to_string()).unwrap();
    (b, host)
}

fn writes_reach_the_host(machine: &str) {
    let w = world(&format!("vfs{machine}"), machine);
    let script = "cat /etc/hosts /ro/in; echo from-guest > /data/out; \
                  echo in-root > /rootfile; \
                  if touch /ro/x 2>/dev/null; then echo ro=writable; else echo ro=denied; fi; \
                  grep -c ' /data ' /proc/mounts";
    let (b, host) = bundle_with_binds(&w, script);
    let id = unique_id("vfs");
    let out = w.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{machine}: {out:?}");
    assert_eq!(
        stdout, "10.9.8.7 shared\nread-only\nro=denied\n1\n",
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("data/out")).unwrap(),
        "from-guest\n",
        "a volume's write is on the host"
    );
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/rootfile")).unwrap(),
        "in-root\n",
        "the rootfs is the host's own"
    );
    assert!(!host.join("ro/x").exists());
    // virtiofsd's arguments name this world's directory: no process
    // mentioning it is left.
    w.assert_no_leaks(&id, None);
}

/// One after the other (two TCG guests at once on a loaded host boot
/// slowly enough to hit the agent's timeout).
#[test]
fn a_volume_written_in_the_guest_is_on_the_host() {
    if require_root() {
        writes_reach_the_host("microvm");
        writes_reach_the_host("q35");
    }
}

/// The virtiofsd helper's entry of a stored state, if recorded.
fn virtiofsd_of(state: &serde_json::Value) -> Option<serde_json::Value> {
    state["vmm"]["helpers"]
        .as_array()?
        .iter()
        .find(|h| h["name"] == "virtiofsd")
        .map(|h| h["jail"].clone())
}

#[test]
fn a_run_killed_at_each_new_record_is_cleaned() {
    if !require_root() {
        return;
    }
    let w = world("vfskill", "microvm");
    let (b, _) = bundle_with_binds(&w, "true");
    let (mut with_mounts, mut with_pid) = (0, 0);
    let steps = std::iter::once("create-container-shared".to_string())
        .chain((1..=40).map(|n| format!("create-vmm-record-{n}")));
    for (n, step) in steps.enumerate() {
        let id = unique_id(&format!("vk{n}"));
        let out = w
            .command(&["run", "--bundle", b.to_str().unwrap(), "--id", &id])
            .env("VMJAIL_TEST_CRASH_AT", &step)
            .output()
            .unwrap();
        if out.status.signal() != Some(9) {
            // Past the last record: the run went through.
            assert!(out.status.success(), "{step}: {out:?}");
            assert!(n > 5, "too few records: {step}");
            w.assert_no_leaks(&id, None);
            break;
        }
        let recorded = w.stored(&id).expect("recorded");
        assert_eq!(recorded["containers"][0]["share"], "0", "{step}");
        if let Some(helper) = virtiofsd_of(&recorded) {
            let mounts = helper["mounts"].as_array().map_or(0, Vec::len);
            // The jail's root and more: a bind of the share.
            with_mounts += usize::from(mounts > 1);
            with_pid += usize::from(helper["vmm_pid"].is_i64());
        }
        match n % 2 {
            0 => {
                let removed = w.ok(&["gc"]);
                assert!(removed.contains(&id), "{step}: {removed}");
            }
            _ => {
                w.ok(&["delete", "--force", &id]);
            }
        }
        w.assert_no_leaks(&id, Some(&recorded));
        let share = Path::new(&w.chroot_base).join("virtiofsd").join(&id);
        assert!(!share.exists(), "{step}: {} left", share.display());
    }
    assert!(with_mounts > 0, "no record with the share's binds");
    assert!(with_pid > 0, "no record with virtiofsd's pid");
}
