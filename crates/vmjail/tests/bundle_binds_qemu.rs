//! Bind mounts of a bundle's config.json on the image path, with the real
//! binary, a real QEMU guest and its real agent: Docker's /etc/hosts,
//! /etc/hostname and /etc/resolv.conf binds (files, onto a rootfs without
//! /etc, under a read-only root), a directory bound read-write and one
//! read-only. The sources are copied into the container's disk: writes
//! stay in the VM and the host's files are untouched. Bad sources are
//! refused before anything is made.

mod bundle_support;
mod lifecycle_support;

use std::path::Path;

use bundle_support::bundle;
use lifecycle_support::*;

fn world(tag: &str) -> World {
    let w = World::new(tag);
    w.use_vsock();
    w
}

/// Adds `mounts` to the bundle's config.json.
fn add_mounts(bundle: &Path, mounts: serde_json::Value) {
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let list = config["mounts"].as_array_mut().unwrap();
    list.extend(mounts.as_array().unwrap().iter().cloned());
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn dockers_file_binds_and_volumes_reach_the_container() {
    if !require_root() {
        return;
    }
    let w = world("binds");
    let host = w.dir.path().join("host");
    let (data, ro) = (host.join("data"), host.join("ro"));
    for d in [&data, &ro] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(host.join("hosts"), "10.1.2.3 boxy\n").unwrap();
    std::fs::write(host.join("hostname"), "boxy\n").unwrap();
    std::fs::write(host.join("resolv.conf"), "nameserver 10.1.2.53\n").unwrap();
    std::fs::write(data.join("in"), "from-host\n").unwrap();
    std::fs::write(ro.join("in"), "read-only\n").unwrap();
    let script = "cat /etc/hosts /etc/hostname /etc/resolv.conf /data/in /ro/in; \
                  echo written > /data/out && cat /data/out; \
                  if touch /ro/x 2>/dev/null; then echo ro=writable; else echo ro=denied; fi; \
                  if touch /etc/hosts 2>/dev/null; then echo hosts=rw; else echo hosts=ro; fi";
    // A read-only root, and no /etc in the rootfs: the mount points are
    // made inside it before the root turns read-only (as runc does).
    let b = bundle(w.dir.path(), script, true);
    let file = |name: &str, dest: &str| {
        serde_json::json!({"destination": dest, "type": "bind",
            "source": host.join(name), "options": ["rbind", "rprivate"]})
    };
    add_mounts(
        &b,
        serde_json::json!([
            file("hosts", "/etc/hosts"),
            file("hostname", "/etc/hostname"),
            file("resolv.conf", "/etc/resolv.conf"),
            {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]},
            {"destination": "/ro", "type": "bind", "source": ro, "options": ["bind", "ro", "nosuid"]},
        ]),
    );
    let id = unique_id("binds");
    let out = w.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout,
        "10.1.2.3 boxy\nboxy\nnameserver 10.1.2.53\nfrom-host\nread-only\n\
         written\nro=denied\nhosts=rw\n",
        "{out:?}"
    );
    // Copies: the container's writes stay in its disk.
    assert!(!data.join("out").exists());
    assert!(!ro.join("x").exists());
    assert!(
        !b.join("rootfs/etc").exists(),
        "the host's bundle untouched"
    );
    w.assert_no_leaks(&id, None);
}

#[test]
fn bad_bind_sources_are_refused_before_anything_is_made() {
    if !require_root() {
        return;
    }
    let w = world("bindbad");
    for (source, says) in [
        ("/dev/null", "is a device, socket or fifo"),
        ("relative", "must be an absolute host path"),
        ("/nonexistent/volume", "/nonexistent/volume"),
    ] {
        let b = bundle(w.dir.path(), "true", false);
        add_mounts(
            &b,
            serde_json::json!([{"destination": "/x", "type": "bind", "source": source}]),
        );
        let id = unique_id("bindbad");
        let out = w.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{source}: {out:?}");
        assert!(
            stderr.contains("mount /x") && stderr.contains(says),
            "{stderr}"
        );
        assert!(w.stored(&id).is_none(), "{source}: nothing recorded");
        w.assert_no_leaks(&id, None);
    }
}
