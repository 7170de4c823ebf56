//! The `--listen` address: `vsock:PORT` in the guest, `unix:PATH` for tests.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use vmjail_agent_protocol::ttrpc;
use vmjail_agent_protocol::DEFAULT_VSOCK_PORT;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Vsock(u32),
    Unix(PathBuf),
}

impl Default for ListenAddr {
    fn default() -> Self {
        ListenAddr::Vsock(DEFAULT_VSOCK_PORT)
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Vsock(port) => write!(f, "vsock:{port}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(port) = s.strip_prefix("vsock:") {
            let port = port
                .parse()
                .map_err(|_| format!("{port:?} is not a vsock port (0..=4294967295)"))?;
            Ok(ListenAddr::Vsock(port))
        } else if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            Ok(ListenAddr::Unix(PathBuf::from(path)))
        } else {
            Err(format!("{s:?}: expected vsock:PORT or unix:PATH"))
        }
    }
}

/// A ttrpc server bound to `addr`. A stale Unix socket file is replaced.
pub fn bind(addr: &ListenAddr) -> ttrpc::Result<ttrpc::Server> {
    let address = match addr {
        // CID -1 is VMADDR_CID_ANY: whatever CID the VMM gave the guest.
        ListenAddr::Vsock(port) => format!("vsock://-1:{port}"),
        ListenAddr::Unix(path) => {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(ttrpc::Error::Others(format!(
                        "removing stale socket {}: {e}",
                        path.display()
                    )));
                }
            }
            format!("unix://{}", path.display())
        }
    };
    ttrpc::Server::new().bind(&address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_rejects_others() {
        assert_eq!("vsock:1024".parse(), Ok(ListenAddr::Vsock(1024)));
        assert_eq!(
            "unix:/tmp/a.sock".parse(),
            Ok(ListenAddr::Unix("/tmp/a.sock".into()))
        );
        assert!("vsock:x".parse::<ListenAddr>().is_err());
        assert!("unix:".parse::<ListenAddr>().is_err());
        assert!("tcp:1".parse::<ListenAddr>().is_err());
        assert_eq!(ListenAddr::default().to_string(), "vsock:1024");
    }
}
