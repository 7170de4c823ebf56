//! The jailer's own seccomp filter, installed last before exec and kept by
//! the VMM: no new user namespaces. Inside one, an unprivileged VMM gains a
//! full capability set over the new namespace (the review mounted tmpfs and
//! mqueue and opened NETLINK_NETFILTER and AF_PACKET sockets there); no VMM
//! vmjail runs needs one. The VMM's own filters (QEMU's `-sandbox`,
//! Firecracker's) stack on top.
//!
//! One BPF program with two answers (EPERM, ENOSYS), written out here:
//! `seccompiler` builds one action per filter, and two stacked filters cost
//! the VMM two programs run on every syscall it makes and the jailer two
//! JIT compilations on every launch. Built before the jail is entered and
//! installed by `sys::install_seccomp`.

use libc::sock_filter;

/// `AUDIT_ARCH_X86_64`: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// Syscall numbers with this bit are the x32 ABI's.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`: nr, arch, then the low 32 bits of the
/// first argument (x86_64 is little-endian; CLONE_NEWUSER is a low bit).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;

const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The program: `unshare` and `clone` with CLONE_NEWUSER fail with EPERM;
/// `clone3` (and any x32 syscall) fails with ENOSYS. Jump offsets count the
/// instructions skipped.
pub(crate) fn program() -> Vec<sock_filter> {
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA);
    vec![
        // 0-2: another architecture (i386 or x32 entry points) is killed,
        // as seccompiler's filters do.
        stmt(LD_ABS, ARCH),
        jump(JEQ, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET, libc::SECCOMP_RET_KILL_PROCESS),
        // 3-4: x32 syscall numbers, whose unshare/clone would slip past
        // the checks below: ENOSYS.
        stmt(LD_ABS, NR),
        jump(JGE, X32_SYSCALL_BIT, 8, 0),
        // 5: clone3's flags live in memory a filter cannot read: ENOSYS,
        // so that the C library falls back to clone.
        jump(JEQ, libc::SYS_clone3 as u32, 7, 0),
        // 6-7: unshare and clone: look at the flags.
        jump(JEQ, libc::SYS_unshare as u32, 2, 0),
        jump(JEQ, libc::SYS_clone as u32, 1, 0),
        // 8: everything else.
        stmt(RET, libc::SECCOMP_RET_ALLOW),
        // 9-10: CLONE_NEWUSER set: EPERM.
        stmt(LD_ABS, ARG0_LOW),
        jump(JSET, libc::CLONE_NEWUSER as u32, 1, 0),
        // 11: without it.
        stmt(RET, libc::SECCOMP_RET_ALLOW),
        // 12: EPERM.
        stmt(RET, errno(libc::EPERM)),
        // 13: ENOSYS.
        stmt(RET, errno(libc::ENOSYS)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small interpreter for the instructions used above, to check each
    /// path's answer without installing the filter.
    fn run(nr: u32, arch: u32, arg0: u32) -> u32 {
        let prog = program();
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = &prog[pc];
            match i.code {
                LD_ABS => {
                    acc = match i.k {
                        NR => nr,
                        ARCH => arch,
                        ARG0_LOW => arg0,
                        other => panic!("load of offset {other}"),
                    };
                    pc += 1;
                }
                JEQ | JSET | JGE => {
                    let taken = match i.code {
                        JEQ => acc == i.k,
                        JSET => acc & i.k != 0,
                        _ => acc >= i.k,
                    };
                    pc += 1 + usize::from(if taken { i.jt } else { i.jf });
                }
                RET => return i.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    const X86_64: u32 = AUDIT_ARCH_X86_64;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    #[test]
    fn each_syscall_gets_its_answer() {
        let newuser = libc::CLONE_NEWUSER as u32;
        let unshare = libc::SYS_unshare as u32;
        let clone = libc::SYS_clone as u32;
        assert_eq!(run(unshare, X86_64, newuser), EPERM);
        assert_eq!(
            run(unshare, X86_64, newuser | libc::CLONE_NEWNS as u32),
            EPERM
        );
        assert_eq!(run(unshare, X86_64, libc::CLONE_NEWNS as u32), ALLOW);
        assert_eq!(run(clone, X86_64, newuser | libc::SIGCHLD as u32), EPERM);
        assert_eq!(run(clone, X86_64, libc::CLONE_VM as u32), ALLOW);
        assert_eq!(run(libc::SYS_clone3 as u32, X86_64, 0), ENOSYS);
        assert_eq!(run(X32_SYSCALL_BIT | unshare, X86_64, newuser), ENOSYS);
        assert_eq!(run(libc::SYS_read as u32, X86_64, newuser), ALLOW);
        assert_eq!(
            run(unshare, 3 | 0x4000_0000, 0),
            libc::SECCOMP_RET_KILL_PROCESS,
            "i386"
        );
    }

    #[test]
    fn installed_in_a_child_it_answers_as_planned() {
        let program = program();
        // SAFETY: the child only installs the ready program and makes raw
        // syscalls, then _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = nix::sys::prctl::set_no_new_privs().is_ok()
                    && crate::sys::install_seccomp(&program).is_ok()
                    && nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                        == Err(nix::Error::EPERM)
                    // SAFETY: clone3 with a NULL argument: refused before use.
                    && unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) }
                        == -1
                    && nix::Error::last() == nix::Error::ENOSYS
                    && nix::unistd::getpid().as_raw() > 0;
                // SAFETY: ends the forked child without unwinding.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
