//! Loading a full Kata-style configuration: parse, defaults, path
//! resolution and every rule.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use vmjail_config::{load_file, HostFacts};

fn full_config(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path();
    for (name, size) in [
        ("qemu", 16),
        ("vmlinux", 4096),
        ("initrd.img", 4096),
        ("kata-shim", 16),
        ("kata-proxy", 16),
    ] {
        std::fs::write(base.join(name), vec![1u8; size]).expect("write asset");
    }
    let text = include_str!("../tests/fixtures/kata-configuration-qemu-2019.toml")
        .replace("@QEMU@", "qemu")
        .replace("@KERNEL@", "vmlinux")
        .replace("@INITRD@", "initrd.img")
        .replace("@SHIM@", "kata-shim")
        .replace("@PROXY@", "kata-proxy");
    let path = base.join("configuration.toml");
    std::fs::write(&path, text).expect("write config");
    let host = HostFacts {
        cpus: 2,
        has_vhost_vsock: false,
    };
    load_file(&path, &host).expect("the fixture loads");
    c.bench_function("load_file kata-configuration-qemu-2019", |b| {
        b.iter(|| load_file(black_box(&path), black_box(&host)))
    });
}

criterion_group!(benches, full_config);
criterion_main!(benches);
