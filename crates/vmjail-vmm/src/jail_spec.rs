//! The resolved `[jail]` configuration → a [`JailSpec`] for one VMM.
//!
//! Shared by every backend: the backend names its VMM binary, the devices it
//! needs and its arguments; everything else comes from `[jail]`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use vmjail_config::{CgroupVersionSetting, JailConfig};
use vmjail_jail::{CgroupVersion, JailSpec};

/// Map the resolved `[jail]` config to a [`JailSpec`] for one VMM, resolving
/// `cgroup_version = "auto"` with [`vmjail_jail::detect_cgroup_version`].
pub fn jail_spec(
    id: &str,
    exec_file: &Path,
    netns: &Path,
    jail: &JailConfig,
    devices: Vec<PathBuf>,
    vmm_args: Vec<OsString>,
) -> JailSpec {
    let cgroup_version = match jail.cgroup_version {
        CgroupVersionSetting::V1 => CgroupVersion::V1,
        CgroupVersionSetting::V2 => CgroupVersion::V2,
        CgroupVersionSetting::Auto => vmjail_jail::detect_cgroup_version(&jail.cgroups),
    };
    JailSpec {
        id: id.to_owned(),
        exec_file: exec_file.to_path_buf(),
        uid: jail.uid,
        gid: jail.gid,
        chroot_base_dir: jail.chroot_base_dir.clone(),
        netns: Some(netns.to_path_buf()),
        cgroup_version,
        cgroups: jail.cgroups.clone(),
        // An empty `parent_cgroup` means the jail's default (the exec name).
        parent_cgroup: (!jail.parent_cgroup.is_empty()).then(|| jail.parent_cgroup.clone()),
        rlimit_fsize: jail.rlimit_fsize,
        rlimit_no_file: jail.rlimit_no_file,
        new_pid_ns: jail.new_pid_ns,
        daemonize: jail.daemonize,
        devices,
        vmm_args,
        api_socket_in_jail: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail_config() -> JailConfig {
        JailConfig {
            uid: 1234,
            gid: 4321,
            id_range_size: 1,
            chroot_base_dir: PathBuf::from("/srv/vmjail"),
            state_dir: PathBuf::from("/run/vmjail"),
            cgroup_version: CgroupVersionSetting::V1,
            cgroups: vec![("cpu.shares".into(), "1024".into())],
            parent_cgroup: String::new(),
            rlimit_fsize: Some(1 << 30),
            rlimit_no_file: 2048,
            new_pid_ns: true,
            daemonize: false,
        }
    }

    #[test]
    fn maps_every_jail_field() {
        let mut config = jail_config();
        config.parent_cgroup = "vmjail/sandboxes".into();
        let spec = jail_spec(
            "sb-1",
            Path::new("/usr/bin/firecracker"),
            Path::new("/var/run/netns/sb-1"),
            &config,
            vec![PathBuf::from("/dev/kvm")],
            vec![OsString::from("--api-sock")],
        );
        assert_eq!(spec.id, "sb-1");
        assert_eq!(spec.exec_file, Path::new("/usr/bin/firecracker"));
        assert_eq!((spec.uid, spec.gid), (1234, 4321));
        assert_eq!(spec.chroot_base_dir, Path::new("/srv/vmjail"));
        assert_eq!(
            spec.netns.as_deref(),
            Some(Path::new("/var/run/netns/sb-1"))
        );
        assert_eq!(spec.cgroup_version, CgroupVersion::V1);
        assert_eq!(spec.cgroups, config.cgroups);
        assert_eq!(spec.parent_cgroup.as_deref(), Some("vmjail/sandboxes"));
        assert_eq!(spec.rlimit_fsize, Some(1 << 30));
        assert_eq!(spec.rlimit_no_file, 2048);
        assert!(spec.new_pid_ns);
        assert!(!spec.daemonize);
        assert_eq!(spec.devices, vec![PathBuf::from("/dev/kvm")]);
        assert_eq!(spec.vmm_args, vec![OsString::from("--api-sock")]);
    }

    #[test]
    fn empty_parent_cgroup_means_default_and_v2_is_kept() {
        let mut config = jail_config();
        config.cgroup_version = CgroupVersionSetting::V2;
        let spec = jail_spec(
            "sb-2",
            Path::new("/bin/qemu"),
            Path::new("/proc/1/ns/net"),
            &config,
            vec![],
            vec![],
        );
        assert_eq!(spec.parent_cgroup, None);
        assert_eq!(spec.cgroup_version, CgroupVersion::V2);
    }

    #[test]
    fn auto_resolves_to_what_the_host_supports() {
        let mut config = jail_config();
        config.cgroup_version = CgroupVersionSetting::Auto;
        let spec = jail_spec(
            "sb-3",
            Path::new("/bin/qemu"),
            Path::new("/proc/1/ns/net"),
            &config,
            vec![],
            vec![],
        );
        assert_eq!(
            spec.cgroup_version,
            vmjail_jail::detect_cgroup_version(&config.cgroups)
        );
    }
}
