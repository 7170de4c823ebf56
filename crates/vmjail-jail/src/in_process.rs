//! Entering a jail without a second program: the steps of `entry/` run
//! in a child that shares the launcher's memory until it execs the VMM.
//!
//! Why: exec'ing the `vmjail-jailer` program first was about half of the
//! jail's cost — its C library's start-up (whose CPU probe traps to the
//! hypervisor dozens of times), and its address space built and torn down
//! again at the VMM's exec (see README, "Where the built-in jail's time
//! goes").
//!
//! How it keeps DESIGN's rule that code between fork and exec in a
//! multi-threaded process is async-signal-safe: the child is made the way
//! the C library's `posix_spawn` makes one, `clone(CLONE_VM | CLONE_VFORK)`
//! on a stack of its own, with every signal blocked so that no handler of
//! the launcher runs in it; the launching thread sleeps until the child
//! execs or exits. The child runs only the entry's steps, which allocate
//! nothing and make system calls only (never the C library's `set*id`,
//! which would signal the launcher's threads: `sys::drop_privileges`), and
//! it resets every signal before exec. A failed step is written to memory
//! both share, and read once the launching thread wakes.

use std::cell::Cell;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use nix::sys::mman::{mmap_anonymous, mprotect, munmap, MapFlags, ProtFlags};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::unistd::Pid;

use crate::entry::{Entry, Failed, Step};
use crate::error::JailError;
use crate::spawn::ChildIo;
use crate::sys;

/// The child's stack; its lowest page is a guard.
const STACK_SIZE: usize = 256 * 1024;
const PAGE: usize = 4096;

/// What the child got to, as the launcher reads it afterwards.
#[derive(Clone, Copy)]
enum Outcome {
    Started,
    Failed(Failed),
    Exec,
}

/// Run `entry`'s steps in a child with `stdio` on fds 0–2, ending in the
/// VMM's exec; returns its pid (the VMM's) once it has exec'd.
pub(crate) fn launch(entry: &Entry, stdio: [ChildIo; 3]) -> Result<Pid, JailError> {
    let (sources, lifted) = stdio_sources(&stdio)?;
    let mut stack = Stack::new()?;
    let outcome = Cell::new(Outcome::Started);
    let child = {
        let outcome = &outcome;
        let sources = &sources;
        let run = move || -> isize {
            match enter(entry, sources) {
                Ok(()) => {
                    outcome.set(Outcome::Exec);
                    outcome.set(Outcome::Failed(entry.exec()));
                }
                Err(failed) => outcome.set(Outcome::Failed(failed)),
            }
            127
        };
        // Blocked here, so blocked in the child from its first instruction.
        let mut unblocked = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut unblocked),
        )
        .map_err(|e| JailError::sys("blocking signals", e))?;
        // SAFETY: the child shares our memory but runs only `enter` and
        // `Entry::exec` (system calls on data made beforehand, no
        // allocation) on its own stack, with every signal blocked, while
        // this thread sleeps (CLONE_VFORK) until it execs or exits; `entry`,
        // `sources` and `outcome` outlive it.
        let cloned = unsafe {
            nix::sched::clone(
                Box::new(run),
                stack.usable(),
                nix::sched::CloneFlags::CLONE_VM | nix::sched::CloneFlags::CLONE_VFORK,
                Some(libc::SIGCHLD),
            )
        };
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&unblocked), None);
        cloned.map_err(|e| JailError::sys("clone (entering the jail)", e))?
    };
    drop(lifted);
    match outcome.get() {
        Outcome::Exec => Ok(child),
        Outcome::Failed(failed) => {
            let _ = nix::sys::wait::waitpid(child, None);
            Err(entry.error(failed))
        }
        Outcome::Started => {
            let status = nix::sys::wait::waitpid(child, None);
            Err(JailError::JailerFailed {
                message: format!("the process entering the jail ended before its exec: {status:?}"),
            })
        }
    }
}

/// The child's steps before the exec.
fn enter(entry: &Entry, sources: &[Source; 3]) -> Result<(), Failed> {
    let stdio = |errno| Failed {
        step: Step::Stdio,
        errno,
    };
    for (target, source) in (0..).zip(sources) {
        let source = match source {
            // One the launcher has closed gets /dev/null: a file the VMM
            // opens must not land there.
            Source::Inherit => match nix::fcntl::fcntl(target, nix::fcntl::FcntlArg::F_GETFD) {
                Err(nix::Error::EBADF) => entry.dev_null(),
                _ => continue,
            },
            Source::Null => entry.dev_null(),
            Source::Fd(fd) => *fd,
        };
        nix::unistd::dup2(source, target).map_err(stdio)?;
    }
    entry.enter()?;
    entry.detach_stdio()?;
    Entry::own_session()?;
    entry.write_pid_file(nix::unistd::getpid().as_raw())?;
    entry.confine()?;
    // Nothing but stdio goes to the VMM (the launcher's descriptors are
    // close-on-exec, a parent's may not be).
    sys::close_range(3, u32::MAX).map_err(|errno| Failed {
        step: Step::CloseFds,
        errno,
    })
}

/// Where one of the child's stdio descriptors comes from.
#[derive(Clone, Copy)]
enum Source {
    /// The launcher's own.
    Inherit,
    /// The entry's /dev/null.
    Null,
    Fd(RawFd),
}

/// Each stdio descriptor's source. One below 3 is copied above them first
/// (an earlier `dup2` in the child could overwrite it); the copies are
/// returned to be kept open until the child has exec'd.
fn stdio_sources(stdio: &[ChildIo; 3]) -> Result<([Source; 3], Vec<OwnedFd>), JailError> {
    let mut sources = [Source::Inherit; 3];
    let mut lifted = Vec::new();
    for (source, io) in sources.iter_mut().zip(stdio) {
        *source = match io {
            ChildIo::Inherit => Source::Inherit,
            ChildIo::Null => Source::Null,
            ChildIo::Fd(fd) if fd.as_raw_fd() > 2 => Source::Fd(fd.as_raw_fd()),
            ChildIo::Fd(fd) => {
                let copy =
                    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
                        .map(crate::fsat::own)
                        .map_err(|e| JailError::sys("duplicating a stdio descriptor", e))?;
                let raw = copy.as_raw_fd();
                lifted.push(copy);
                Source::Fd(raw)
            }
        };
    }
    Ok((sources, lifted))
}

/// An anonymous mapping with a guard page at its low end (stacks grow down).
struct Stack(NonNull<libc::c_void>);

impl Stack {
    fn new() -> Result<Stack, JailError> {
        let map_err = |e| JailError::sys("mapping the entry's stack", e);
        let len =
            std::num::NonZeroUsize::new(STACK_SIZE).ok_or_else(|| map_err(nix::Error::EINVAL))?;
        // SAFETY: a fresh private anonymous mapping, aliasing nothing.
        let base = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK | MapFlags::MAP_NORESERVE,
            )
        }
        .map_err(map_err)?;
        let stack = Stack(base);
        // SAFETY: the first page of the mapping made above.
        unsafe { mprotect(base, PAGE, ProtFlags::PROT_NONE) }.map_err(map_err)?;
        Ok(stack)
    }

    /// Everything above the guard page.
    fn usable(&mut self) -> &mut [u8] {
        // SAFETY: within the mapping, which lives as long as `self`; only the
        // child (one at a time) writes it.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.0.as_ptr().cast::<u8>().add(PAGE),
                STACK_SIZE - PAGE,
            )
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; the child is gone
        // from it (exec'd or exited) before the launcher's thread runs on.
        let _ = unsafe { munmap(self.0, STACK_SIZE) };
    }
}
