//! QEMU's vsock without `/dev/vhost-vsock`: a Firecracker-style hybrid
//! vsock (a host Unix socket; `CONNECT <port>\n` / `OK <port>\n`) served by
//! `vhost-device-vsock`, QEMU's `vhost-user-vsock` backend.
//!
//! The helper runs in a jail of its own (`<base>/vhost-device-vsock/<id>`)
//! built by the same jailer as QEMU's: the sandbox's uid/gid and netns, no
//! capabilities, no_new_privs. Its cgroup leaf is named like QEMU's from
//! `[jail]`: with `parent_cgroup` set it is QEMU's own leaf (it counts
//! against the sandbox's limits); without, a leaf of its own under
//! `vhost-device-vsock/` with a copy of `[jail] cgroups`. Its socket directory is bound read-only into QEMU's jail,
//! where QEMU reaches the vhost-user socket and the host the hybrid one.

use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vmjail_config::RuntimeConfig;
use vmjail_jail::{Jail, JailRecord, Jailer, LaunchStdio, Recorder};

use super::helper_socket::HelperSocket;
use super::{layout, Error};
use crate::hypervisor::{HelperRecord, VmmRecord, VmmRecorder, VsockRecord};

/// The helper's name: its binary's, its jail's exec name and its record's.
pub const HELPER: &str = "vhost-device-vsock";

/// Where the helper binary is looked for (vmjail runs as root: a fixed
/// list, never `$PATH`). `scripts/deps.sh` installs it in the first.
pub const HELPER_SEARCH: &[&str] = &[
    "/usr/local/bin/vhost-device-vsock",
    "/usr/bin/vhost-device-vsock",
    "/usr/libexec/vhost-device-vsock",
];

/// The helper's socket directory, in its own jail.
const SOCKET_DIR: &str = "/vsock";
/// The helper's output (its log), in its own jail, quoted in errors.
const OUTPUT: &str = "/helper.out";
/// How long the helper may take to open its vhost-user socket.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The helper's socket, as [`super::helper_socket`] waits for and binds it.
const SOCKET: HelperSocket = HelperSocket {
    helper: HELPER,
    socket_dir: SOCKET_DIR,
    output: OUTPUT,
    ready_timeout: READY_TIMEOUT,
};

/// Binds the helper's socket directory read-only into QEMU's jail at
/// [`layout::VSOCK_DIR`].
pub(super) fn bind_into(
    qemu_jail: &mut Jail,
    helper: &JailRecord,
    recorder: &mut dyn Recorder,
) -> Result<(), Error> {
    SOCKET.bind_into(
        qemu_jail,
        helper,
        recorder,
        layout::VSOCK_DIR,
        "the vsock helper's socket directory",
    )
}

/// The helper binary on this host.
pub fn find() -> Result<PathBuf, Error> {
    HELPER_SEARCH
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| Error::HelperMissing {
            helper: HELPER,
            searched: HELPER_SEARCH.join(", "),
        })
}

/// The vhost-user socket QEMU connects to, inside QEMU's jail.
pub fn vhost_socket_in_qemu_jail() -> PathBuf {
    Path::new(layout::VSOCK_DIR).join("vhost.sock")
}

/// What the VMM record says of the hybrid socket (in QEMU's jail).
pub fn vsock_record() -> VsockRecord {
    VsockRecord {
        guest_cid: crate::GUEST_CID,
        uds_path: Path::new(layout::VSOCK_DIR).join("vsock.sock"),
    }
}

/// The helper's arguments: its sockets in its own jail.
fn helper_args() -> Vec<OsString> {
    vec![
        "--guest-cid".into(),
        crate::GUEST_CID.to_string().into(),
        "--socket".into(),
        format!("{SOCKET_DIR}/vhost.sock").into(),
        "--uds-path".into(),
        format!("{SOCKET_DIR}/vsock.sock").into(),
    ]
}

/// Forwards the helper jail's record into its entry of the VMM record and
/// persists that.
pub(super) struct HelperChain<'a> {
    pub(super) record: &'a mut VmmRecord,
    pub(super) index: usize,
    pub(super) outer: &'a mut dyn VmmRecorder,
}

impl Recorder for HelperChain<'_> {
    fn record(&mut self, jail: &JailRecord) -> std::io::Result<()> {
        self.record.helpers[self.index].jail = jail.clone();
        self.outer.record(self.record)
    }
}

/// Launch the helper for sandbox `record.id` in its own jail, recorded in
/// `record.helpers` before anything is created, and wait (bounded) until
/// it serves its vhost-user socket. Returns its jail.
pub(super) fn launch(
    record: &mut VmmRecord,
    recorder: &mut dyn VmmRecorder,
    config: &RuntimeConfig,
    jailer_exe: &Path,
) -> Result<Jail, Error> {
    let exe = find()?;
    let spec = crate::jail_spec::jail_spec(
        &record.id,
        &exe,
        &record.netns,
        &config.jail,
        Vec::new(),
        helper_args(),
    );
    record.helpers.push(HelperRecord {
        name: HELPER.into(),
        jail: JailRecord::default(),
    });
    let index = record.helpers.len() - 1;
    recorder.record(record).map_err(|source| Error::Record {
        step: "preparing the vsock helper's jail",
        source,
    })?;
    let mut chain = HelperChain {
        record,
        index,
        outer: recorder,
    };
    let helper_error = |step: &'static str| {
        move |e: vmjail_jail::JailError| Error::Helper {
            helper: HELPER,
            step,
            source: Box::new(e),
        }
    };
    let jailer = Jailer::BuiltIn {
        jailer_exe: jailer_exe.to_path_buf(),
    };
    let mut jail =
        Jail::prepare(spec, jailer, &mut chain).map_err(helper_error("preparing its jail"))?;
    jail.make_dir(Path::new(SOCKET_DIR))
        .map_err(helper_error("making its socket directory"))?;
    let output_path = jail
        .make_file(Path::new(OUTPUT))
        .map_err(helper_error("making its output file"))?;
    // Made a moment ago, the helper not yet running: O_NOFOLLOW all the same.
    let output = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&output_path)
        .map_err(|source| Error::OutputFile {
            path: output_path.clone(),
            source,
        })?;
    let stderr = output.try_clone().map_err(|source| Error::OutputFile {
        path: output_path,
        source,
    })?;
    jail.place_shared_libraries(&mut chain)
        .map_err(helper_error("placing its shared libraries"))?;
    jail.launch_with(
        &mut chain,
        LaunchStdio {
            stdin: vmjail_jail::ChildIo::Null,
            stdout: output.into(),
            stderr: stderr.into(),
        },
    )
    .map_err(helper_error("launching it"))?;
    Ok(jail)
}

/// Waits until the helper [`launch`] started listens: before QEMU, which
/// connects at its start, is launched.
pub(super) fn wait_ready(helper: &Jail) -> Result<(), Error> {
    SOCKET.wait_ready(helper.record())
}

/// Tear down every helper the record names (idempotent, from the record).
/// How long the helper gets after SIGTERM at teardown.
const HELPER_TERM_GRACE: Duration = Duration::from_millis(200);

pub(super) fn teardown_all(record: &VmmRecord, timeout: Duration) -> Result<(), Error> {
    for helper in &record.helpers {
        // The helper keeps no state worth a graceful end and ignores
        // SIGTERM once its front-end is gone (it waits for the next one):
        // a short grace, then SIGKILL, instead of the whole `timeout`.
        let name = match helper.name.as_str() {
            super::virtiofsd::HELPER => super::virtiofsd::HELPER,
            _ => HELPER,
        };
        vmjail_jail::teardown(&helper.jail, HELPER_TERM_GRACE.min(timeout)).map_err(|e| {
            Error::Helper {
                helper: name,
                step: "tearing its jail down",
                source: Box::new(e),
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hybrid_socket_is_in_the_bound_directory() {
        assert!(vsock_record().uds_path.starts_with(layout::VSOCK_DIR));
        assert!(vhost_socket_in_qemu_jail().starts_with(layout::VSOCK_DIR));
        let args: Vec<String> = helper_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--guest-cid",
                "3",
                "--socket",
                "/vsock/vhost.sock",
                "--uds-path",
                "/vsock/vsock.sock"
            ]
        );
    }
}
