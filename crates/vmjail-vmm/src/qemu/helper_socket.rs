//! The vhost-user socket of a helper jailed beside QEMU (vhost-device-vsock,
//! virtiofsd): waiting for it, and binding its directory into QEMU's jail.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use vmjail_jail::{Jail, JailRecord, Placement, Recorder};

use super::output_tail::output_tail;
use super::Error;

/// Where one helper keeps its socket and output, in its own jail.
pub(super) struct HelperSocket {
    /// The helper's name, for messages.
    pub helper: &'static str,
    /// Its socket directory (holding `vhost.sock`).
    pub socket_dir: &'static str,
    /// Its output file, quoted when it fails.
    pub output: &'static str,
    /// How long it may take to open its socket.
    pub ready_timeout: Duration,
}

impl HelperSocket {
    /// Polls until the helper's `vhost.sock` exists (without connecting:
    /// the helper serves one front-end, which must be QEMU), while it runs.
    pub fn wait_ready(&self, helper: &JailRecord) -> Result<(), Error> {
        let socket = Path::new(self.socket_dir).join("vhost.sock");
        let started = Instant::now();
        loop {
            let found = vmjail_jail::open_in_jail(&helper.root(), &socket, OFlag::O_PATH)
                .ok()
                .and_then(|fd| nix::sys::stat::fstat(fd.as_raw_fd()).ok())
                .is_some_and(|st| {
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK
                });
            if found {
                return Ok(());
            }
            let alive = crate::process::is_alive(helper);
            if !alive || started.elapsed() >= self.ready_timeout {
                return Err(Error::HelperNotReady {
                    helper: self.helper,
                    state: if alive { "still runs" } else { "exited" },
                    waited: started.elapsed(),
                    output: output_tail(&helper.root(), self.output)
                        .unwrap_or_else(|| "(none)".into()),
                });
            }
            // Short: the socket appears within milliseconds, each
            // overslept one delays QEMU's launch.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Binds the helper's socket directory read-only into QEMU's jail at
    /// `in_qemu`. The directory is opened from the helper's jail root
    /// without following a symlink and bound from that very handle.
    pub fn bind_into(
        &self,
        qemu_jail: &mut Jail,
        helper: &JailRecord,
        recorder: &mut dyn Recorder,
        in_qemu: &str,
        what: &'static str,
    ) -> Result<(), Error> {
        let dir: OwnedFd = vmjail_jail::open_in_jail(
            &helper.root(),
            Path::new(self.socket_dir),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        )
        .map_err(|e| Error::Helper {
            helper: self.helper,
            step: "opening its socket directory",
            source: Box::new(e),
        })?;
        let source = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        qemu_jail
            .place(
                recorder,
                &source,
                Path::new(in_qemu),
                Placement::ReadOnlyBind,
            )
            .map_err(|e| Error::Place {
                what,
                path: helper.root().join(self.socket_dir.trim_start_matches('/')),
                source: Box::new(e),
            })?;
        Ok(())
    }
}
