//! `containerd-shim-vmjail-v2`: containerd's runtime v2 shim for vmjail
//! (runtime `io.containerd.vmjail.v2`). containerd runs it as
//! `start` (fork the long-lived shim, print its socket), as the shim
//! itself (serve the task API over ttrpc) and as `delete` (clean up after
//! a shim that died). Each task is one container in its own sandbox (one
//! jailed microVM), driven through `vmjail-sandbox`'s API.

mod config;
mod cri;
mod events;
mod exec_spec;
mod metrics;
mod process;
mod record;
mod rootfs;
mod service;
mod shim;
mod stdio;
mod task;
mod vm;
mod vm_step;
mod worker;

/// The runtime name containerd knows this shim by.
pub const RUNTIME_ID: &str = "io.containerd.vmjail.v2";

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == vm_step::ARG)
    {
        vm_step::main();
    }
    // One malloc arena: glibc's default gives the serving shim's threads
    // (ttrpc handlers, stdio copies, waiters: ~30 for a pod) up to 16
    // arenas, ~15 of them with pages touched (~0.6 MiB measured, of a
    // 10 MiB budget); the shim's allocations are few and small.
    // SAFETY: mallopt only sets an allocator parameter; no thread runs yet.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
    let config = containerd_shim::Config {
        // vmjail waits for the children it spawns (jailer, helpers): a
        // reaper taking every child's status would steal theirs. Orphans
        // (the VMM once its jailer exits) are reaped after a task's delete.
        no_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<shim::VmjailShim>(RUNTIME_ID, Some(config));
}
