//! Surviving spurious debug traps. In guests run by QEMU's TCG (this
//! project's test host has no usable KVM), agent threads were seen killed
//! by SIGTRAP with `si_code` TRAP_BRKPT while exiting, inside glibc's
//! per-thread malloc clean-up, at the target of a taken branch: a debug
//! exception with no debug register bit set, which the guest kernel
//! reports as an `int1`. Nothing debugs the agent and its code has no
//! breakpoints, so such a trap only ever ended the agent: 4 in 12
//! `run --bundle` stops lost their agent as its connection threads ended
//! (the VM then had to be powered off from outside). A trap-class
//! exception resumes at the next instruction when its handler returns, so
//! a handler that does nothing lets the thread go on. Processes the agent
//! starts get the default action back at exec.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static NOTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note(_: nix::libc::c_int) {
    // write(2) is async-signal-safe; said once.
    const TEXT: &[u8] = b"vmjail-agent: ignored a spurious debug trap (SIGTRAP)\n";
    if !NOTED.swap(true, Ordering::Relaxed) {
        // SAFETY: writes a static buffer to stderr.
        unsafe { nix::libc::write(2, TEXT.as_ptr().cast(), TEXT.len()) };
    }
}

/// Installs the handler for SIGTRAP.
pub fn survive() {
    let action = SigAction::new(
        SigHandler::Handler(note),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only does async-signal-safe work.
    if let Err(e) = unsafe { sigaction(Signal::SIGTRAP, &action) } {
        eprintln!("vmjail-agent: handling SIGTRAP: {e}");
    }
}
