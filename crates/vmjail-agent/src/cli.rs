//! The agent's command line. Parsed with `lexopt` rather than clap (which
//! the host's binaries use): in a guest under TCG every code path runs
//! cold, and clap's parse of these four flags took ~15 ms of the agent's
//! start, on the path to the first container.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::listen::ListenAddr;

pub const HELP: &str = "vmjail guest agent

Usage: vmjail-agent [OPTIONS]

Options:
      --listen <ADDR>    Where to serve: `vsock:PORT` (any CID) or `unix:PATH` [default: vsock:1024]
      --modules <FILE>   Before anything else, load the kernel modules of this list that the
                         VM needs (`WHEN PATH` lines, as guest/modules.sh reads them)
      --later-modules <FILE>
                         Once accepting connections (and announced), load the modules of this
                         list the VM needs on a thread of their own: a container's disk or
                         shared filesystem waits for them
      --announce-ready   Once accepting connections, print the guest's ready marker
                         (`VMJAIL-GUEST-READY uptime=…s kernel=…`) on stderr, the guest's
                         console: the host dials only after it has seen it
      --setup-guest      Set up the guest before serving: mount a devpts instance at
                         /dev/pts and cgroup2 at /sys/fs/cgroup, and prepare the containers'
                         parent cgroup. Only the guest's init passes it: on a host it would
                         mount over the host's own
  -h, --help             Print help
  -V, --version          Print version
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve(Cli),
    Help,
    Version,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Cli {
    pub listen: ListenAddr,
    pub modules: Option<PathBuf>,
    pub later_modules: Option<PathBuf>,
    pub announce_ready: bool,
    pub setup_guest: bool,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut cli = Cli {
        listen: ListenAddr::default(),
        modules: None,
        later_modules: None,
        announce_ready: false,
        setup_guest: false,
    };
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("listen") => {
                let value = parser.value().map_err(|e| e.to_string())?;
                let text = value
                    .to_str()
                    .ok_or_else(|| format!("--listen: {value:?} is not UTF-8"))?;
                cli.listen = text
                    .parse()
                    .map_err(|e| format!("--listen {text:?}: {e}"))?;
            }
            Long("modules") => {
                cli.modules = Some(parser.value().map_err(|e| e.to_string())?.into());
            }
            Long("later-modules") => {
                cli.later_modules = Some(parser.value().map_err(|e| e.to_string())?.into());
            }
            Long("announce-ready") => cli.announce_ready = true,
            Long("setup-guest") => cli.setup_guest = true,
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Command::Serve(cli))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Command, String> {
        parse(words.iter().map(OsString::from))
    }

    #[test]
    fn the_guests_command_line_is_understood() {
        let Command::Serve(cli) = parse_words(&[
            "--listen",
            "vsock:1024",
            "--modules",
            "/etc/vmjail/agent.modules",
            "--later-modules",
            "/etc/vmjail/container.modules",
            "--setup-guest",
            "--announce-ready",
        ])
        .unwrap() else {
            panic!("not serve");
        };
        assert_eq!(cli.listen, ListenAddr::Vsock(1024));
        assert_eq!(cli.modules, Some("/etc/vmjail/agent.modules".into()));
        assert_eq!(
            cli.later_modules,
            Some("/etc/vmjail/container.modules".into())
        );
        assert!(cli.setup_guest && cli.announce_ready);
    }

    #[test]
    fn defaults_help_version_and_errors() {
        let Command::Serve(cli) = parse_words(&[]).unwrap() else {
            panic!("not serve");
        };
        assert_eq!(cli.listen, ListenAddr::default());
        assert!(!cli.setup_guest && !cli.announce_ready && cli.modules.is_none());
        assert_eq!(parse_words(&["--help"]).unwrap(), Command::Help);
        assert_eq!(parse_words(&["-V"]).unwrap(), Command::Version);
        assert!(parse_words(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(parse_words(&["--listen", "tcp:1"])
            .unwrap_err()
            .contains("tcp:1"));
        assert!(parse_words(&["--listen"]).unwrap_err().contains("listen"));
    }
}
