//! Turning Ctrl-C, SIGTERM and SIGHUP into a flag, so `vmjail run` can stop
//! and delete its sandbox instead of dying with it half-made.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP from now on (for this process).
pub fn catch_termination() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores into an atomic.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// The last termination signal caught, if any.
pub fn received() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        raw => Signal::try_from(raw).ok(),
    }
}
