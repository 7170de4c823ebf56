//! The jailer command line: Firecracker's `jailer` flags plus vmjail's
//! additions, parsed (built-in jailer) and built (from a [`JailSpec`]), so
//! one argv serves either jailer.

use std::ffi::{OsStr, OsString};
use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::error::JailError;
use crate::spec::{CgroupVersion, JailSpec};

/// Firecracker's jailer default for `--resource-limit no-file`.
pub const DEFAULT_NO_FILE: u64 = 2048;

/// Device nodes made when neither `--device` nor `--no-devices` is given,
/// each only where the host has it. Unlike Firecracker's jailer, never
/// `/dev/userfaultfd`: it would let the VMM bypass
/// `vm.unprivileged_userfaultfd=0`, and only snapshot restore needs it.
pub const DEFAULT_DEVICES: &[&str] = &[
    "/dev/kvm",
    "/dev/net/tun",
    "/dev/vhost-vsock",
    "/dev/urandom",
];

/// `vmjail jailer --help`: Firecracker's jailer flags, then vmjail's additions.
pub const USAGE: &str = "\
Usage: vmjail-jailer --id <ID> --exec-file <PATH> --uid <UID> --gid <GID>
                     --chroot-base-dir <DIR> [OPTIONS] [-- <VMM ARGS>...]
       (or `vmjail jailer ...`: the same jailer)

Confines one VMM and execs it (CLI-compatible with Firecracker's jailer):
the VMM runs in <DIR>/<exec name>/<ID>/root as <UID>:<GID>, with no
capabilities and no_new_privs.

Firecracker jailer options:
  --id <ID>                    sandbox id: [A-Za-z0-9][A-Za-z0-9-]{0,63}
  --exec-file <PATH>           the VMM binary (a regular file)
  --uid <UID>, --gid <GID>     the identity the VMM runs as (0 needs --allow-root)
  --chroot-base-dir <DIR>      root-owned, not writable by others
  --netns <PATH>               join this network namespace
  --daemonize                  new session, stdio to /dev/null
  --new-pid-ns                 run the VMM in a new pid namespace
  --cgroup <FILE=VALUE>        cgroup setting, e.g. cpu.shares=512 (repeatable)
  --cgroup-version <1|2>       cgroup hierarchy (default 1)
  --parent-cgroup <PATH>       relative cgroup parent (default: the exec name)
  --resource-limit <fsize=N|no-file=N>  rlimits (no-file defaults to 2048)

vmjail additions:
  --device <PATH>              device node to make in the jail (repeatable)
  --no-devices                 no device node at all (default without --device:
                               /dev/kvm, /dev/net/tun, /dev/vhost-vsock, /dev/urandom)
  --api-sock <PATH>            the VMM's socket in the jail (checked against sun_path)
  --status-fd <FD>             report progress and errors on this fd (3 or above)
  --copy-exec-file             copy the VMM instead of bind-mounting it read-only
  --allow-root                 accept --uid 0 / --gid 0
  -h, --help                   print this help

Everything after `--` is handed to the VMM.
";

/// Whether the arguments before `--` ask for [`USAGE`].
pub fn wants_help(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--help" || a == "-h")
}

/// A parsed jailer command line.
#[derive(Debug, Clone, PartialEq)]
pub struct JailerArgs {
    pub id: String,
    pub exec_file: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub chroot_base_dir: PathBuf,
    pub netns: Option<PathBuf>,
    pub daemonize: bool,
    pub new_pid_ns: bool,
    pub cgroups: Vec<(String, String)>,
    pub cgroup_version: CgroupVersion,
    pub parent_cgroup: Option<String>,
    pub rlimit_fsize: Option<u64>,
    pub rlimit_no_file: u64,
    /// vmjail: `--device <path>` (repeatable) and `--no-devices`: exactly
    /// these; `None` (neither given) = [`DEFAULT_DEVICES`].
    pub devices: Option<Vec<PathBuf>>,
    /// vmjail: `--api-sock <path in jail>`, checked against `sun_path`.
    pub api_sock: Option<PathBuf>,
    /// vmjail: `--status-fd <n>`: kept open across the fd purge; the error
    /// is written there on failure, it closes on exec (success).
    pub status_fd: Option<RawFd>,
    /// vmjail: `--copy-exec-file`: copy instead of a read-only bind mount.
    pub copy_exec_file: bool,
    /// vmjail: `--allow-root`: accept `--uid 0` / `--gid 0` (the caller's
    /// configuration said so explicitly); refused otherwise.
    pub allow_root: bool,
    pub vmm_args: Vec<OsString>,
}

fn arg_error(arg: &str, reason: impl Into<String>) -> JailError {
    JailError::Argument {
        arg: arg.to_owned(),
        reason: reason.into(),
    }
}

impl JailerArgs {
    /// Parse `--flag value` / `--flag=value` arguments up to `--`; the rest are the VMM's.
    pub fn parse(args: &[OsString]) -> Result<JailerArgs, JailError> {
        let mut id = None;
        let mut exec_file = None;
        let mut uid = None;
        let mut gid = None;
        let mut base = None;
        let mut parsed = JailerArgs {
            id: String::new(),
            exec_file: PathBuf::new(),
            uid: 0,
            gid: 0,
            chroot_base_dir: PathBuf::new(),
            netns: None,
            daemonize: false,
            new_pid_ns: false,
            cgroups: Vec::new(),
            cgroup_version: CgroupVersion::V1,
            parent_cgroup: None,
            rlimit_fsize: None,
            rlimit_no_file: DEFAULT_NO_FILE,
            devices: None,
            api_sock: None,
            status_fd: None,
            copy_exec_file: false,
            allow_root: false,
            vmm_args: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let text = arg
                .to_str()
                .ok_or_else(|| arg_error(&arg.to_string_lossy(), "not valid UTF-8"))?;
            if text == "--" {
                parsed.vmm_args = iter.cloned().collect();
                break;
            }
            let (flag, inline) = match text.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(OsString::from(v))),
                _ => (text, None),
            };
            let value = |iter: &mut std::slice::Iter<OsString>| -> Result<OsString, JailError> {
                inline
                    .clone()
                    .or_else(|| iter.next().cloned())
                    .ok_or_else(|| arg_error(flag, "needs a value"))
            };
            match flag {
                "--id" => id = Some(utf8(flag, value(&mut iter)?)?),
                "--exec-file" => exec_file = Some(PathBuf::from(value(&mut iter)?)),
                "--uid" => uid = Some(number::<u32>(flag, &value(&mut iter)?)?),
                "--gid" => gid = Some(number::<u32>(flag, &value(&mut iter)?)?),
                "--chroot-base-dir" => base = Some(PathBuf::from(value(&mut iter)?)),
                "--netns" => parsed.netns = Some(PathBuf::from(value(&mut iter)?)),
                "--daemonize" => parsed.daemonize = true,
                "--new-pid-ns" => parsed.new_pid_ns = true,
                "--cgroup" => {
                    let setting = utf8(flag, value(&mut iter)?)?;
                    let (file, val) =
                        setting
                            .split_once('=')
                            .ok_or_else(|| JailError::InvalidCgroupSetting {
                                value: setting.clone(),
                            })?;
                    crate::validate::validate_cgroup_setting(file, val)?;
                    parsed.cgroups.push((file.to_owned(), val.to_owned()));
                }
                "--cgroup-version" => {
                    parsed.cgroup_version = match utf8(flag, value(&mut iter)?)?.as_str() {
                        "1" => CgroupVersion::V1,
                        "2" => CgroupVersion::V2,
                        other => {
                            return Err(arg_error(flag, format!("{other:?}: expected 1 or 2")))
                        }
                    }
                }
                "--parent-cgroup" => {
                    let parent = utf8(flag, value(&mut iter)?)?;
                    crate::validate::validate_parent_cgroup(&parent)?;
                    parsed.parent_cgroup = Some(parent);
                }
                "--resource-limit" => {
                    let limit = utf8(flag, value(&mut iter)?)?;
                    let invalid = || JailError::InvalidResourceLimit {
                        value: limit.clone(),
                    };
                    let (name, n) = limit.split_once('=').ok_or_else(invalid)?;
                    let n: u64 = n.parse().map_err(|_| invalid())?;
                    match name {
                        "fsize" => parsed.rlimit_fsize = Some(n),
                        "no-file" => parsed.rlimit_no_file = n,
                        _ => return Err(invalid()),
                    }
                }
                "--device" => {
                    let device = PathBuf::from(value(&mut iter)?);
                    crate::devices::check_allowed(&device)?;
                    parsed.devices.get_or_insert_with(Vec::new).push(device);
                }
                "--no-devices" => {
                    parsed.devices.get_or_insert_with(Vec::new);
                }
                "--api-sock" => parsed.api_sock = Some(PathBuf::from(value(&mut iter)?)),
                "--status-fd" => {
                    let fd = number::<RawFd>(flag, &value(&mut iter)?)?;
                    if fd < 3 {
                        return Err(arg_error(flag, "must be 3 or above (0-2 are stdio)"));
                    }
                    parsed.status_fd = Some(fd);
                }
                "--copy-exec-file" => parsed.copy_exec_file = true,
                "--allow-root" => parsed.allow_root = true,
                other => {
                    return Err(arg_error(
                        other,
                        "unknown; valid: --id --exec-file --uid --gid --chroot-base-dir --netns \
                         --daemonize --new-pid-ns --cgroup --cgroup-version --parent-cgroup \
                         --resource-limit --device --no-devices --api-sock --status-fd --copy-exec-file \
                         --allow-root -- (see --help)",
                    ))
                }
            }
        }
        parsed.id = id.ok_or_else(|| arg_error("--id", "is required"))?;
        parsed.exec_file = exec_file.ok_or_else(|| arg_error("--exec-file", "is required"))?;
        parsed.uid = uid.ok_or_else(|| arg_error("--uid", "is required"))?;
        parsed.gid = gid.ok_or_else(|| arg_error("--gid", "is required"))?;
        parsed.chroot_base_dir =
            base.ok_or_else(|| arg_error("--chroot-base-dir", "is required"))?;
        if !parsed.allow_root {
            if parsed.uid == 0 {
                return Err(JailError::RootIdentity { flag: "uid" });
            }
            if parsed.gid == 0 {
                return Err(JailError::RootIdentity { flag: "gid" });
            }
        }
        Ok(parsed)
    }

    /// The arguments for `spec`; vmjail additions only when `builtin`.
    pub fn from_spec(spec: &JailSpec) -> JailerArgs {
        JailerArgs {
            id: spec.id.clone(),
            exec_file: spec.exec_file.clone(),
            uid: spec.uid,
            gid: spec.gid,
            chroot_base_dir: spec.chroot_base_dir.clone(),
            netns: spec.netns.clone(),
            daemonize: spec.daemonize,
            new_pid_ns: spec.new_pid_ns,
            cgroups: spec.cgroups.clone(),
            cgroup_version: spec.cgroup_version,
            parent_cgroup: spec.parent_cgroup.clone(),
            rlimit_fsize: spec.rlimit_fsize,
            rlimit_no_file: spec.rlimit_no_file,
            // Exactly the spec's devices: an empty list is none, not defaults.
            devices: Some(spec.devices.clone()),
            api_sock: spec.api_socket_in_jail.clone(),
            status_fd: None,
            copy_exec_file: false,
            // The configuration gates root (`jail.allow_root`); a spec that
            // reached here with uid or gid 0 was allowed it.
            allow_root: spec.uid == 0 || spec.gid == 0,
            vmm_args: spec.vmm_args.clone(),
        }
    }

    /// Render as arguments (without the program). vmjail additions only when `builtin`.
    pub fn to_args(&self, builtin: bool) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        let mut push = |flag: &str, value: &OsStr| {
            out.push(flag.into());
            out.push(value.to_owned());
        };
        push("--id", OsStr::new(&self.id));
        push("--exec-file", self.exec_file.as_os_str());
        push("--uid", OsStr::new(&self.uid.to_string()));
        push("--gid", OsStr::new(&self.gid.to_string()));
        push("--chroot-base-dir", self.chroot_base_dir.as_os_str());
        if let Some(netns) = &self.netns {
            push("--netns", netns.as_os_str());
        }
        let version = match self.cgroup_version {
            CgroupVersion::V1 => "1",
            CgroupVersion::V2 => "2",
        };
        push("--cgroup-version", OsStr::new(version));
        for (file, value) in &self.cgroups {
            push("--cgroup", OsStr::new(&format!("{file}={value}")));
        }
        if let Some(parent) = &self.parent_cgroup {
            push("--parent-cgroup", OsStr::new(parent));
        }
        if let Some(fsize) = self.rlimit_fsize {
            push("--resource-limit", OsStr::new(&format!("fsize={fsize}")));
        }
        push(
            "--resource-limit",
            OsStr::new(&format!("no-file={}", self.rlimit_no_file)),
        );
        if builtin {
            for device in self.devices.iter().flatten() {
                push("--device", device.as_os_str());
            }
            if let Some(sock) = &self.api_sock {
                push("--api-sock", sock.as_os_str());
            }
            if let Some(fd) = self.status_fd {
                push("--status-fd", OsStr::new(&fd.to_string()));
            }
        }
        if self.daemonize {
            out.push("--daemonize".into());
        }
        if self.new_pid_ns {
            out.push("--new-pid-ns".into());
        }
        if builtin && self.devices.as_ref().is_some_and(Vec::is_empty) {
            out.push("--no-devices".into());
        }
        if builtin && self.copy_exec_file {
            out.push("--copy-exec-file".into());
        }
        if builtin && self.allow_root {
            out.push("--allow-root".into());
        }
        out.push("--".into());
        out.extend(self.vmm_args.iter().cloned());
        out
    }
}

fn utf8(flag: &str, value: OsString) -> Result<String, JailError> {
    value
        .into_string()
        .map_err(|v| arg_error(flag, format!("{:?} is not valid UTF-8", v)))
}

fn number<T: std::str::FromStr>(flag: &str, value: &OsStr) -> Result<T, JailError> {
    value
        .to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| arg_error(flag, format!("{value:?} is not a valid number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JailSpec {
        JailSpec {
            id: "sb-1".into(),
            exec_file: "/usr/bin/firecracker".into(),
            uid: 123,
            gid: 456,
            chroot_base_dir: "/srv/jailer".into(),
            netns: Some("/var/run/netns/sb-1".into()),
            cgroup_version: CgroupVersion::V2,
            cgroups: vec![("cpu.max".into(), "10000 100000".into())],
            parent_cgroup: Some("vmjail".into()),
            rlimit_fsize: Some(1 << 20),
            rlimit_no_file: 1024,
            new_pid_ns: true,
            daemonize: true,
            devices: vec!["/dev/kvm".into()],
            vmm_args: vec!["--api-sock".into(), "/run/api.sock".into()],
            api_socket_in_jail: Some("/run/api.sock".into()),
        }
    }

    #[test]
    fn round_trips_through_the_parser() {
        let mut args = JailerArgs::from_spec(&spec());
        args.status_fd = Some(3);
        args.copy_exec_file = true;
        assert_eq!(JailerArgs::parse(&args.to_args(true)).unwrap(), args);
    }

    /// Review finding 5: a spec asking for no devices gets none, not the
    /// defaults; the defaults never include /dev/userfaultfd.
    #[test]
    fn no_devices_means_none_and_defaults_lack_userfaultfd() {
        let mut none = spec();
        none.devices.clear();
        let args = JailerArgs::from_spec(&none);
        let argv = args.to_args(true);
        assert!(argv.iter().any(|a| a == "--no-devices"), "{argv:?}");
        assert_eq!(JailerArgs::parse(&argv).unwrap().devices, Some(Vec::new()));
        let by_hand: Vec<OsString> = ["--id", "a", "--exec-file", "/x", "--uid", "1", "--gid", "1"]
            .into_iter()
            .chain(["--chroot-base-dir", "/srv"])
            .map(OsString::from)
            .collect();
        assert_eq!(JailerArgs::parse(&by_hand).unwrap().devices, None);
        assert!(!DEFAULT_DEVICES.contains(&"/dev/userfaultfd"));
    }

    #[test]
    fn firecracker_argv_has_no_vmjail_additions() {
        let argv = JailerArgs::from_spec(&spec()).to_args(false);
        let text: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let before_dashdash = &text[..text.iter().position(|a| a == "--").unwrap()];
        for addition in [
            "--device",
            "--no-devices",
            "--status-fd",
            "--copy-exec-file",
        ] {
            assert!(!before_dashdash.iter().any(|a| a == addition), "{text:?}");
        }
        assert!(
            !before_dashdash.iter().any(|a| a == "--api-sock"),
            "{text:?}"
        );
        assert!(text.ends_with(&["--".into(), "--api-sock".into(), "/run/api.sock".into()]));
    }

    #[test]
    fn root_identity_needs_allow_root() {
        let args = |extra: &[&str]| -> Vec<OsString> {
            let mut v: Vec<OsString> = [
                "--id",
                "a",
                "--exec-file",
                "/x",
                "--chroot-base-dir",
                "/srv",
            ]
            .iter()
            .map(OsString::from)
            .collect();
            v.extend(extra.iter().map(OsString::from));
            v
        };
        for ids in [["--uid", "0", "--gid", "1"], ["--uid", "1", "--gid", "0"]] {
            let err = JailerArgs::parse(&args(&ids)).unwrap_err();
            assert!(matches!(err, JailError::RootIdentity { .. }), "{err}");
            let mut allowed = ids.to_vec();
            allowed.push("--allow-root");
            assert!(JailerArgs::parse(&args(&allowed)).unwrap().allow_root);
        }
        let mut root = spec();
        root.uid = 0;
        let argv = JailerArgs::from_spec(&root).to_args(true);
        assert!(JailerArgs::parse(&argv).is_ok());
    }

    #[test]
    fn help_is_asked_for_only_before_the_vmm_arguments() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_help(&args(&["--help"])));
        assert!(wants_help(&args(&["--id", "a", "-h"])));
        assert!(!wants_help(&args(&["--id", "a", "--", "--help"])));
        assert!(!wants_help(&args(&[])));
        for flag in [
            "--id",
            "--exec-file",
            "--chroot-base-dir",
            "--netns",
            "--cgroup-version",
            "--resource-limit",
            "--device",
            "--status-fd",
            "--allow-root",
        ] {
            assert!(USAGE.contains(flag), "{flag} missing from the usage");
        }
    }

    #[test]
    fn rejects_bad_arguments_with_their_name() {
        let base: Vec<OsString> = [
            "--id",
            "a",
            "--exec-file",
            "/x",
            "--uid",
            "1",
            "--gid",
            "1",
            "--chroot-base-dir",
            "/srv",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let with = |extra: &[&str]| {
            let mut v = base.clone();
            v.extend(extra.iter().map(OsString::from));
            JailerArgs::parse(&v)
        };
        assert!(with(&[]).is_ok());
        assert_eq!(with(&[]).unwrap().rlimit_no_file, DEFAULT_NO_FILE);
        for (extra, needle) in [
            (&["--uid", "x"][..], "--uid"),
            (&["--bogus"][..], "--bogus"),
            (&["--cgroup", "cpu.shares"][..], "cpu.shares"),
            (&["--cgroup-version", "3"][..], "--cgroup-version"),
            (&["--parent-cgroup", "../up"][..], "../up"),
            (&["--resource-limit", "stack=1"][..], "stack=1"),
            (&["--resource-limit", "fsize=-1"][..], "fsize=-1"),
        ] {
            let err = with(extra).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra:?}: {err}");
        }
        let missing = JailerArgs::parse(&base[2..]).unwrap_err().to_string();
        assert!(missing.contains("--id"), "{missing}");
    }
}
