//! `vmjail-jailer`: the built-in jailer, CLI-compatible with Firecracker's
//! `jailer` (plus vmjail's additions; `--help` lists them). The same code
//! as `vmjail jailer`, in a binary that links nothing but the jail: vmjail
//! execs it for a VMM in a new pid namespace (the other jails it enters
//! without a second program, see `vmjail-jail`'s `in_process.rs`), and
//! loading the whole `vmjail` binary (its HTTP, async and configuration
//! stacks) cost a millisecond there. Never returns on success: the process
//! becomes the VMM.
//!
//! `no_main`: the C library calls `main` directly, without the Rust
//! runtime's start-up, whose work this process never needs (a SIGSEGV
//! handler on an alternate stack, found by parsing /proc/self/maps, and the
//! main thread's bookkeeping: ~10 syscalls per launch). What of it matters
//! is done here: stdio is checked open, SIGPIPE ignored, stdout flushed.
// (The test harness brings its own `main`.)
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
mod entry {
    use std::ffi::{c_char, c_int};
    use std::io::Write;

    #[no_mangle]
    extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
        // std reads the arguments itself (glibc hands them to its initialiser).
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        if let Err(e) = vmjail_jail::prepare_jailer_process() {
            let _ = writeln!(std::io::stderr(), "vmjail jailer: {e}");
            return 1;
        }
        let code = vmjail_jail::builtin_jailer_main(args);
        let _ = std::io::stdout().flush();
        code
    }
}
