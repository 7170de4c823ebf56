//! Surviving spurious debug traps. In guests run by QEMU's TCG (this
//! project's test host has no usable KVM), agent threads were seen killed
//! by SIGTRAP with `si_code` TRAP_BRKPT while exiting, inside glibc's
//! per-thread malloc clean-up, at the target of a taken branch: a debug
//! exception with no debug register bit set, which the guest kernel
//! reports as an `int1`. Nothing debugs the agent and its code has no
//! breakpoints, so such a trap only ever ended the agent: 3-4 in 12-16
//! `run --bundle` stops lost their agent as its connection threads ended.
//! A trap-class exception resumes at the next instruction when its handler
//! returns, so a handler that does nothing lets the thread go on. Should
//! traps keep coming (which these were not), the default action comes
//! back after [`MAX_IGNORED`] of them rather than a thread spinning on the
//! guest's vCPU. Processes the agent starts get the default at exec.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Traps ignored before SIGTRAP gets its default action back.
const MAX_IGNORED: u32 = 64;

static SEEN: AtomicU32 = AtomicU32::new(0);

extern "C" fn note(_: nix::libc::c_int) {
    // Only async-signal-safe calls, with the interrupted code's errno kept.
    let errno = Errno::last_raw();
    let seen = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    // SAFETY: fd 2 (the guest's console) stays open for the agent's life.
    let console = unsafe { BorrowedFd::borrow_raw(2) };
    if seen == 1 {
        let _ = nix::unistd::write(
            console,
            b"vmjail-agent: ignored a spurious debug trap (SIGTRAP)\n",
        );
    }
    if seen >= MAX_IGNORED {
        let _ = nix::unistd::write(console, b"vmjail-agent: SIGTRAP keeps coming\n");
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: restoring the default action is async-signal-safe.
        let _ = unsafe { sigaction(Signal::SIGTRAP, &default) };
    }
    Errno::set_raw(errno);
}

/// Installs the handler for SIGTRAP (the serving agent only).
pub fn survive() {
    let action = SigAction::new(
        SigHandler::Handler(note),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only does async-signal-safe work.
    if let Err(e) = unsafe { sigaction(Signal::SIGTRAP, &action) } {
        tracing::warn!("handling SIGTRAP: {e}");
    }
}
