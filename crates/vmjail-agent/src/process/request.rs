//! Checks a `CreateProcessRequest` from the host and turns it into a
//! [`Launch`]: every string as a C string, the program's path resolved,
//! nothing left that needs allocating after `fork`.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vmjail_agent_protocol::agent::CreateProcessRequest;
use vmjail_agent_protocol::{MAX_LIST_ENTRIES, MAX_STRING_BYTES};

/// Where argv[0] is looked up when the request's env has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A process ready to be started.
#[derive(Debug)]
pub struct Launch {
    pub program: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: CString,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// `(rows, cols)` of a new pty, or pipes.
    pub tty: Option<(u16, u16)>,
    pub stdin: bool,
    /// The argv as given, for `ListProcesses`.
    pub argv_text: Vec<String>,
    /// More descriptors for the process, as 3, 4, … (a container init's
    /// pipes to the agent).
    pub extra_fds: Vec<OwnedFd>,
}

pub fn launch(req: &CreateProcessRequest) -> Result<Launch, String> {
    let mut launch = checked(req)?;
    let path_var = req
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    launch.program = c_string("argv[0]", &resolve(&req.argv[0], path_var)?)?;
    Ok(launch)
}

/// `req` run through the agent's own binary as `vmjail-agent <helper>…
/// -- <argv>…` (see container/exec.rs): as root in "/", the helper taking
/// the user, cwd and argv[0]'s lookup into the container; the env is the
/// request's.
pub fn launch_through(req: &CreateProcessRequest, helper: &[String]) -> Result<Launch, String> {
    let mut launch = checked(req)?;
    let mut argv: Vec<String> = vec!["vmjail-agent".into()];
    argv.extend(helper.iter().cloned());
    argv.push("--".into());
    argv.extend(req.argv.iter().cloned());
    launch.program = c_string("program", "/proc/self/exe")?;
    launch.argv = c_strings("argv", &argv)?;
    launch.cwd = c_string("cwd", "/")?;
    (launch.uid, launch.gid, launch.groups) = (0, 0, Vec::new());
    Ok(launch)
}

/// The request checked and converted; `program` left to the caller.
fn checked(req: &CreateProcessRequest) -> Result<Launch, String> {
    if req.argv.is_empty() {
        return Err("argv is empty".into());
    }
    for (what, list) in [("argv", req.argv.len()), ("env", req.env.len())] {
        if list > MAX_LIST_ENTRIES {
            return Err(format!(
                "{what} has {list} entries, more than {MAX_LIST_ENTRIES}"
            ));
        }
    }
    if req.additional_gids.len() > MAX_LIST_ENTRIES {
        return Err(format!(
            "{} additional groups, more than {MAX_LIST_ENTRIES}",
            req.additional_gids.len()
        ));
    }
    let argv = c_strings("argv", &req.argv)?;
    let env = c_strings("env", &req.env)?;
    if let Some(bad) = req.env.iter().find(|e| !e.contains('=')) {
        return Err(format!("env entry {bad:?} is not KEY=VALUE"));
    }
    let cwd = if req.cwd.is_empty() { "/" } else { &req.cwd };
    if !cwd.starts_with('/') {
        return Err(format!("cwd {cwd:?} is not an absolute path"));
    }
    let tty = match req.tty.as_ref() {
        None => None,
        Some(size) => Some((dimension("rows", size.rows)?, dimension("cols", size.cols)?)),
    };
    Ok(Launch {
        program: CString::default(),
        argv,
        env,
        cwd: c_string("cwd", cwd)?,
        uid: req.uid,
        gid: req.gid,
        groups: req.additional_gids.clone(),
        tty,
        stdin: req.stdin,
        argv_text: req.argv.clone(),
        extra_fds: Vec::new(),
    })
}

fn c_strings(what: &str, list: &[String]) -> Result<Vec<CString>, String> {
    list.iter().map(|s| c_string(what, s)).collect()
}

fn c_string(what: &str, s: &str) -> Result<CString, String> {
    if s.len() > MAX_STRING_BYTES {
        return Err(format!(
            "{what}: an entry of {} bytes, more than {MAX_STRING_BYTES}",
            s.len()
        ));
    }
    CString::new(s).map_err(|_| format!("{what}: {s:?} contains a NUL byte"))
}

fn dimension(what: &str, n: u32) -> Result<u16, String> {
    u16::try_from(n).map_err(|_| format!("tty {what} {n} is more than {}", u16::MAX))
}

/// argv[0] itself when it names a path, else the first executable file of
/// that name in `path_var` (as execvp would find it).
fn resolve(arg0: &str, path_var: &str) -> Result<String, String> {
    if arg0.contains('/') {
        return Ok(arg0.to_string());
    }
    if arg0.is_empty() {
        return Err("argv[0] is empty".into());
    }
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(arg0))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|found| found.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{arg0:?} not found in PATH={path_var}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmjail_agent_protocol::agent::WindowSize;

    fn request(argv: &[&str]) -> CreateProcessRequest {
        CreateProcessRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_through_path_and_defaults_cwd() {
        let launch = launch(&request(&["sh", "-c", "true"])).unwrap();
        assert!(launch.program.to_str().unwrap().ends_with("/sh"));
        assert_eq!(launch.cwd.to_str().unwrap(), "/");
        assert_eq!(launch.tty, None);
    }

    #[test]
    fn rejects_what_cannot_be_run() {
        assert!(launch(&request(&[])).is_err());
        assert!(launch(&request(&["no-such-program-anywhere"]))
            .unwrap_err()
            .contains("not found in PATH"));
        assert!(launch(&request(&["a\0b"])).is_err());
        let mut r = request(&["/bin/true"]);
        r.env = vec!["NOEQUALS".into()];
        assert!(launch(&r).unwrap_err().contains("KEY=VALUE"));
        let mut r = request(&["/bin/true"]);
        r.cwd = "relative".into();
        assert!(launch(&r).is_err());
        let mut r = request(&["/bin/true"]);
        r.tty = Some(WindowSize {
            rows: 70_000,
            cols: 80,
            ..Default::default()
        })
        .into();
        assert!(launch(&r).unwrap_err().contains("rows"));
        let mut r = request(&["/bin/true"]);
        r.argv.push("x".repeat(MAX_STRING_BYTES + 1));
        assert!(launch(&r).is_err());
    }
}
