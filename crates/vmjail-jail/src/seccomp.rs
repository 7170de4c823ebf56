//! The jailer's own seccomp filter, installed last before exec and kept by
//! the VMM: no new user namespaces. Inside one, an unprivileged VMM gains a
//! full capability set over the new namespace (the review mounted tmpfs and
//! mqueue and opened NETLINK_NETFILTER and AF_PACKET sockets there); no VMM
//! vmjail runs needs one. The VMM's own filters (QEMU's `-sandbox`,
//! Firecracker's) stack on top.

use std::collections::BTreeMap;

use seccompiler::{
    apply_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::error::JailError;

const CLONE_NEWUSER: u64 = libc::CLONE_NEWUSER as u64;

fn filter(
    rules: Vec<(i64, Vec<SeccompRule>)>,
    action: SeccompAction,
) -> Result<BpfProgram, JailError> {
    let invalid = |e: seccompiler::BackendError| JailError::Seccomp {
        step: "building the filter",
        reason: e.to_string(),
    };
    let filter = SeccompFilter::new(
        rules.into_iter().collect::<BTreeMap<_, _>>(),
        SeccompAction::Allow,
        action,
        TargetArch::x86_64,
    )
    .map_err(invalid)?;
    filter.try_into().map_err(invalid)
}

/// `unshare` and `clone` with CLONE_NEWUSER fail with EPERM; `clone3`,
/// whose flags a filter cannot read, fails with ENOSYS so that the C
/// library falls back to `clone`.
pub fn refuse_user_namespaces() -> Result<(), JailError> {
    let newuser = || -> Result<Vec<SeccompRule>, JailError> {
        let condition = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(CLONE_NEWUSER),
            CLONE_NEWUSER,
        )
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| JailError::Seccomp {
            step: "building the filter",
            reason: e.to_string(),
        })?;
        Ok(vec![condition])
    };
    let eperm = filter(
        vec![
            (libc::SYS_unshare, newuser()?),
            (libc::SYS_clone, newuser()?),
        ],
        SeccompAction::Errno(libc::EPERM as u32),
    )?;
    let enosys = filter(
        vec![(libc::SYS_clone3, Vec::new())],
        SeccompAction::Errno(libc::ENOSYS as u32),
    )?;
    for program in [eperm, enosys] {
        apply_filter(&program).map_err(|e| JailError::Seccomp {
            step: "installing the filter",
            reason: e.to_string(),
        })?;
    }
    Ok(())
}
