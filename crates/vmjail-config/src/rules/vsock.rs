//! Whether the guest agent is reached over vsock, and what that means for
//! the proxy.

use crate::model::{HypervisorKind, ProxyKind};

/// The effective vsock setting and the warning to show, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsockDecision {
    pub use_vsock: bool,
    pub warning: Option<&'static str>,
}

/// QEMU: `use_vsock` as set, with or without `/dev/vhost-vsock` — unlike
/// Kata, which fell back to serial without it, vmjail serves QEMU the same
/// hybrid vsock as Firecracker through a jailed `vhost-device-vsock`
/// (a vhost-user back-end: no host module needed). Firecracker: always vsock — its hybrid
/// vsock is a host Unix socket and needs no vhost-vsock module, so vmjail
/// deliberately drops Kata 2019's "no vsock support, firecracker cannot be
/// used" check. ACRN: never (Kata's ACRN backend has no vsock; a set
/// `use_vsock` is ignored with a warning).
pub fn effective_vsock(kind: HypervisorKind, requested: bool) -> VsockDecision {
    match kind {
        HypervisorKind::Firecracker => VsockDecision {
            use_vsock: true,
            warning: None,
        },
        HypervisorKind::Qemu => VsockDecision {
            use_vsock: requested,
            warning: None,
        },
        HypervisorKind::Acrn => VsockDecision {
            use_vsock: false,
            warning: requested.then_some("use_vsock is not supported with ACRN and is ignored"),
        },
    }
}

/// With vsock no proxy is used; otherwise Kata's proxy.
pub fn proxy_kind(use_vsock: bool) -> ProxyKind {
    if use_vsock {
        ProxyKind::None
    } else {
        ProxyKind::Kata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HypervisorKind::*;

    #[test]
    fn vsock_table() {
        // (kind, requested, use vsock, warns)
        let cases = [
            (Firecracker, false, true, false),
            (Firecracker, true, true, false),
            (Qemu, false, false, false),
            (Qemu, true, true, false),
            (Acrn, false, false, false),
            (Acrn, true, false, true),
        ];
        for (kind, requested, want, warns) in cases {
            let got = effective_vsock(kind, requested);
            assert_eq!(got.use_vsock, want, "{kind:?} {requested}");
            assert_eq!(got.warning.is_some(), warns, "{kind:?} {requested}");
        }
    }

    #[test]
    fn proxy_table() {
        assert_eq!(proxy_kind(true), ProxyKind::None);
        assert_eq!(proxy_kind(false), ProxyKind::Kata);
    }
}
