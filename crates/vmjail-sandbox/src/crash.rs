//! Crash points for the crash-safety tests.
//!
//! When the environment variable `VMJAIL_TEST_CRASH_AT` names a step, vmjail
//! sends itself SIGKILL at that step, exactly as if an operator had killed it
//! there. Tests use it to prove that `gc` and `delete --force` clean up after
//! a crash at every step of `create` and `start`. It grants nothing a caller
//! could not do with `kill -9`, so it is compiled in unconditionally.
//!
//! Steps: `create-claimed`, `create-recorded`, `create-netns`,
//! `create-net-record-<n>` (after the network layer's n-th record, n ≥ 1),
//! `create-net-connected` (the netns is connected, no VMM yet),
//! `create-console-pump` (the console pump runs, no VMM yet),
//! `create-container-recorded-<n>` (container n recorded, its image not
//! begun), `create-container-staged` (a bundle's staging copy made, its
//! image not yet), `create-container-image-<n>` (container n's image
//! file made at its size and `mke2fs` filling it, no VMM yet),
//! `create-vmm-record-<n>` (after the backend's n-th record, n ≥ 1; with
//! QEMU's vsock these include each step of its jailed helper),
//! `create-vmm-pid-recorded` (the first record naming the VMM's pid: the
//! VMM runs, `create` has not finished), `create-vmm-created`,
//! `create-container-images-made` (the images complete, the VMM created),
//! `start-locked`, `start-vmm-started`; the runc CLI's `create --bundle`:
//! `create-monitor-recorded` (its host process recorded, not spawned),
//! `create-monitor-spawned` (spawned and its pid recorded, the pid file
//! not yet written).

/// The environment variable naming the step to crash at.
pub const CRASH_ENV: &str = "VMJAIL_TEST_CRASH_AT";

/// SIGKILL this process if `VMJAIL_TEST_CRASH_AT` names `step`.
pub fn point(step: &str) {
    if std::env::var_os(CRASH_ENV).is_some_and(|v| v == step) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
