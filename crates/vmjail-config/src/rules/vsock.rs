//! Whether the guest agent is reached over vsock, and what that means for
//! the proxy.

use crate::model::{HypervisorKind, ProxyKind};

/// The effective vsock setting and the warning to show, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsockDecision {
    pub use_vsock: bool,
    pub warning: Option<&'static str>,
}

/// QEMU: `use_vsock` only when the host has `/dev/vhost-vsock`, else serial
/// with a warning (Kata's rule). Firecracker: always vsock — its hybrid
/// vsock is a host Unix socket and needs no vhost-vsock module, so vmjail
/// deliberately drops Kata 2019's "no vsock support, firecracker cannot be
/// used" check. ACRN: never (Kata's ACRN backend has no vsock; a set
/// `use_vsock` is ignored with a warning).
pub fn effective_vsock(
    kind: HypervisorKind,
    requested: bool,
    host_vhost_vsock: bool,
) -> VsockDecision {
    match kind {
        HypervisorKind::Firecracker => VsockDecision {
            use_vsock: true,
            warning: None,
        },
        HypervisorKind::Qemu if requested && !host_vhost_vsock => VsockDecision {
            use_vsock: false,
            warning: Some(
                "use_vsock = true but the host has no /dev/vhost-vsock (modprobe vhost_vsock); falling back to the legacy serial port",
            ),
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
        // (kind, requested, host has vhost-vsock, use vsock, warns)
        let cases = [
            (Firecracker, false, false, true, false),
            (Firecracker, true, false, true, false),
            (Firecracker, false, true, true, false),
            (Qemu, false, false, false, false),
            (Qemu, false, true, false, false),
            (Qemu, true, true, true, false),
            (Qemu, true, false, false, true),
            (Acrn, false, true, false, false),
            (Acrn, true, true, false, true),
        ];
        for (kind, requested, host, want, warns) in cases {
            let got = effective_vsock(kind, requested, host);
            assert_eq!(got.use_vsock, want, "{kind:?} {requested} {host}");
            assert_eq!(got.warning.is_some(), warns, "{kind:?} {requested} {host}");
        }
    }

    #[test]
    fn proxy_table() {
        assert_eq!(proxy_kind(true), ProxyKind::None);
        assert_eq!(proxy_kind(false), ProxyKind::Kata);
    }
}
