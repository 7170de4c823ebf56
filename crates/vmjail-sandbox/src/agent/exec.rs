//! [`ProcessSpec::for_exec`]: the spec `vmjail exec ID [-t] [-i] [-e K=V]…
//! [--cwd DIR] [--user UID[:GID]] -- CMD…` means, so a front-end only
//! parses its flags and hands them over.

use super::types::ProcessSpec;

/// The environment every exec starts from; `-e` entries override by key.
const BASE_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
];

/// The window size a tty starts with when there is no local terminal to
/// take it from.
pub const DEFAULT_TTY_SIZE: (u16, u16) = (24, 80);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecArgError {
    #[error("no command: give one after `--`")]
    NoCommand,
    #[error("-e {0:?}: expected KEY=VALUE with a non-empty KEY")]
    Env(String),
    #[error("--user {0:?}: expected UID or UID:GID, numbers (the guest has no user database)")]
    User(String),
    #[error("--cwd {0:?}: expected an absolute path")]
    Cwd(String),
}

impl ProcessSpec {
    /// `argv` run with `env` (`KEY=VALUE`, each replacing the base entry of
    /// that key; with `tty`, `TERM=xterm` unless given), `cwd` (default
    /// `/`), `user` (`UID[:GID]`; GID 0 when left out, as Docker does for a
    /// uid without a passwd entry), a pty with `tty`, stdin with `stdin`.
    pub fn for_exec(
        argv: Vec<String>,
        env: &[String],
        cwd: Option<String>,
        user: Option<&str>,
        tty: bool,
        stdin: bool,
    ) -> Result<ProcessSpec, ExecArgError> {
        if argv.is_empty() {
            return Err(ExecArgError::NoCommand);
        }
        let mut merged: Vec<String> = BASE_ENV.iter().map(|e| e.to_string()).collect();
        if tty {
            merged.push("TERM=xterm".into());
        }
        for entry in env {
            let key = match entry.split_once('=') {
                Some((key, _)) if !key.is_empty() => key,
                _ => return Err(ExecArgError::Env(entry.clone())),
            };
            merged.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
            merged.push(entry.clone());
        }
        if let Some(dir) = &cwd {
            if !dir.starts_with('/') {
                return Err(ExecArgError::Cwd(dir.clone()));
            }
        }
        let (uid, gid) = match user {
            None => (0, 0),
            Some(text) => parse_user(text).ok_or_else(|| ExecArgError::User(text.into()))?,
        };
        Ok(ProcessSpec {
            argv,
            env: merged,
            cwd,
            uid,
            gid,
            additional_gids: Vec::new(),
            tty: tty.then_some(DEFAULT_TTY_SIZE),
            stdin,
        })
    }
}

fn parse_user(text: &str) -> Option<(u32, u32)> {
    match text.split_once(':') {
        None => Some((text.parse().ok()?, 0)),
        Some((uid, gid)) => Some((uid.parse().ok()?, gid.parse().ok()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_overrides_by_key_and_tty_adds_term() {
        let spec = ProcessSpec::for_exec(
            args(&["sh"]),
            &args(&["HOME=/home/x", "A=b=c"]),
            None,
            None,
            true,
            true,
        )
        .unwrap();
        assert_eq!(
            spec.env,
            args(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
                "HOME=/home/x",
                "A=b=c"
            ])
        );
        assert_eq!(spec.tty, Some(DEFAULT_TTY_SIZE));
        assert!(spec.stdin);
        assert_eq!((spec.uid, spec.gid), (0, 0));
    }

    #[test]
    fn users_are_numeric() {
        let spec = |user| ProcessSpec::for_exec(args(&["id"]), &[], None, Some(user), false, false);
        assert_eq!(spec("1000").map(|s| (s.uid, s.gid)), Ok((1000, 0)));
        assert_eq!(spec("1000:50").map(|s| (s.uid, s.gid)), Ok((1000, 50)));
        for bad in ["root", "1000:", ":5", "-1", "1:2:3", ""] {
            assert_eq!(spec(bad), Err(ExecArgError::User(bad.into())), "{bad}");
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let spec = |argv: &[&str], env: &[&str], cwd: Option<&str>| {
            ProcessSpec::for_exec(
                args(argv),
                &args(env),
                cwd.map(String::from),
                None,
                false,
                false,
            )
        };
        assert_eq!(spec(&[], &[], None), Err(ExecArgError::NoCommand));
        assert_eq!(
            spec(&["x"], &["=v"], None),
            Err(ExecArgError::Env("=v".into()))
        );
        assert_eq!(
            spec(&["x"], &["K"], None),
            Err(ExecArgError::Env("K".into()))
        );
        assert_eq!(
            spec(&["x"], &[], Some("tmp")),
            Err(ExecArgError::Cwd("tmp".into()))
        );
        assert!(spec(&["x"], &[], Some("/tmp")).is_ok());
    }
}
