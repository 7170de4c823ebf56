//! The shim's three lives (see main.rs): `start` forks the serving shim,
//! one per task, except that a CRI pod's containers join the shim of its
//! sandbox container (containerd's grouping is the pod's sandbox id, as
//! Kata's); the serving shim runs [`Service`] until containerd shuts it
//! down; `delete` tears down what a dead shim's task left, from the
//! bundle's record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_address;
use containerd_shim::{spawn, Config, DeleteResponse, Error, ExitSignal, Flags, StartOpts};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageField;
use vmjail_sandbox::{reaper, ErrorKind, SandboxId, Sandboxes, SelectFactory};

use crate::events::Events;
use crate::service::Service;
use crate::task::CLEANUP_TIMEOUT;
use crate::{config, cri, record, rootfs};

pub struct VmjailShim {
    namespace: String,
    bundle: String,
    /// The serving shim's own socket (`-socket`; empty in `start` and
    /// `delete`).
    socket: String,
    exit: Arc<ExitSignal>,
}

impl containerd_shim::Shim for VmjailShim {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        VmjailShim {
            namespace: args.namespace.clone(),
            bundle: args.bundle.clone(),
            socket: args.socket.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        let grouping = cri::grouping(&self.bundle_dir()?, &opts.id);
        let (_pid, address) = spawn(opts, &grouping, Vec::new())?;
        // Read back by the serving shim to remove its socket at the end.
        write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> Result<DeleteResponse, Error> {
        cleanup(&self.bundle_dir()?).map_err(Error::Other)?;
        Ok(DeleteResponse {
            // As runc's shim: the task's process was killed.
            exit_status: 128 + nix::libc::SIGKILL as u32,
            exited_at: MessageField::some(Timestamp::from(SystemTime::now())),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // The crate removes the socket after this from the bundle's
        // `address` file, which containerd may have removed with the
        // bundle by then (a socket left for ever, seen under load): the
        // socket is known from the flags, so it goes here.
        if let Some(path) = self.socket.strip_prefix("unix://") {
            remove_socket_at(Path::new(path));
        }
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        let events = Events::start(publisher, self.namespace.clone());
        Service::new(self.namespace.clone(), events, self.exit.clone())
    }
}

impl VmjailShim {
    /// The task's bundle: `-bundle`, else the directory containerd runs
    /// `start` and `delete` in.
    fn bundle_dir(&self) -> Result<PathBuf, Error> {
        match self.bundle.is_empty() {
            true => std::env::current_dir().map_err(|e| Error::Other(e.to_string())),
            false => Ok(PathBuf::from(&self.bundle)),
        }
    }
}

/// Force-deletes the sandbox the bundle's record names (gone already is
/// fine; for a pod's container that is the pod's VM) and unmounts the
/// bundle's rootfs. containerd also runs `delete` whenever its connection
/// to a shim closes, which for a pod happens with each container's
/// delete while the shim still serves the pod: a shim that answers on
/// its socket is alive and has cleaned up itself, its VM is left alone.
fn cleanup(bundle: &std::path::Path) -> Result<(), String> {
    if shim_alive(bundle) {
        return rootfs::unmount(&bundle.join("rootfs"));
    }
    if let Some(rec) = record::read(bundle)? {
        let id = SandboxId::parse(&rec.sandbox).map_err(|e| e.to_string())?;
        let jail = vmjail_config::load_jail(rec.config.as_deref())
            .map_err(|e| format!("vmjail configuration: {e}"))?;
        let sandboxes = Sandboxes::new(
            &jail,
            SelectFactory {
                vmjail_exe: config::vmjail_exe()?,
            },
        );
        match sandboxes.delete(&id, true, CLEANUP_TIMEOUT) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("deleting sandbox {id}: {e}")),
        }
        reaper::reap_exited();
    }
    remove_socket(bundle);
    rootfs::unmount(&bundle.join("rootfs"))
}

/// The shim's socket, named in the bundle's `address` file (written by
/// `start`).
fn socket_of(bundle: &std::path::Path) -> Option<PathBuf> {
    let address = std::fs::read_to_string(bundle.join("address")).ok()?;
    let path = address.trim().strip_prefix("unix://")?;
    Some(PathBuf::from(path))
}

/// How long a connection to the bundle's socket must stay up, unanswered
/// and not reset, for a shim to count as serving there.
const ALIVE_WAIT: u16 = 500; // ms

/// Whether a shim serves on the bundle's socket. A killed one leaves the
/// file, refusing connections, but not at once: containerd may run
/// `delete` as soon as its own connection to a killed shim closes, while
/// the shim's listener still queues ours (seen in the killed-shim test,
/// about one run in ten). Closing that listener resets the queued
/// connection, whereas a live shim's server accepts it and waits, silent,
/// for a request: only a connection still up and quiet after
/// [`ALIVE_WAIT`] counts.
fn shim_alive(bundle: &std::path::Path) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let Some(Ok(stream)) = socket_of(bundle).map(std::os::unix::net::UnixStream::connect) else {
        return false;
    };
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::from(ALIVE_WAIT)) {
            Err(nix::errno::Errno::EINTR) => continue,
            // Connected but not to be watched: as before, it counts.
            Err(_) => return true,
            Ok(_) => {
                let reset = PollFlags::POLLHUP | PollFlags::POLLERR;
                return !fds[0].revents().is_some_and(|r| r.intersects(reset));
            }
        }
    }
}

/// Removes the dead shim's socket; a shim that ends normally removes its
/// own.
fn remove_socket(bundle: &std::path::Path) {
    if let Some(path) = socket_of(bundle) {
        remove_socket_at(&path);
    }
}

/// Removes the shim socket at `path` (only a socket under containerd's
/// shim socket directory).
fn remove_socket_at(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if path.starts_with(containerd_shim::SOCKET_ROOT) && is_socket {
        if let Err(e) = std::fs::remove_file(path) {
            log::warn!("removing the shim's socket {}: {e}", path.display());
        }
    }
}
