//! Whether a jail record read from disk stays inside what the
//! *configuration* says this sandbox's jail is: its directory
//! `<configured chroot base>/<exec>/<id>` (under a base no other user can
//! change), its cgroups `<hierarchy>/<configured parent>/<id>` and their
//! ancestors below the parent, host assets handed to its own uid/gid only.
//! Teardown's own check (`teardown::check_record`) makes sure the record is
//! self-consistent; this one that it is the one the configuration allows.
//! (The security review's finding 3: a forged record's jail dir, cgroup and
//! `chowned` entries made root delete a host tree, kill every process in a
//! cgroup hierarchy's root and chown a host file.)

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use crate::cgroup::CgroupMounts;
use crate::error::JailError;
use crate::spec::JailRecord;

/// What the configuration says a sandbox's jail is.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// The sandbox id.
    pub id: &'a str,
    /// `[jail] chroot_base_dir` as configured (resolved here).
    pub chroot_base_dir: &'a Path,
    /// `[jail] parent_cgroup`; `None`: the jail's default (its exec name).
    pub parent_cgroup: Option<&'a str>,
    /// The uid/gid the sandbox's VMM runs as.
    pub uid: u32,
    pub gid: u32,
}

fn refuse(path: &Path, reason: &'static str) -> JailError {
    JailError::UnsafeRecord {
        path: path.to_path_buf(),
        reason,
    }
}

/// Refuse `record` when anything it names lies outside `scope`.
pub fn check_scope(record: &JailRecord, scope: &Scope) -> Result<(), JailError> {
    if !record.names_anything() {
        return Ok(());
    }
    if record.id != scope.id {
        return Err(refuse(
            &record.jail_dir,
            "the jail record is another sandbox's",
        ));
    }
    let exec = check_jail_dir(record, scope)?;
    check_cgroups(record, scope, &exec)?;
    for asset in &record.chowned {
        if !asset.placed_at.starts_with(record.root()) || asset.placed_at == record.root() {
            return Err(refuse(
                &asset.placed_at,
                "a chowned asset must be placed inside the jail",
            ));
        }
        if (asset.jail_uid, asset.jail_gid) != (scope.uid, scope.gid) || asset.jail_uid == 0 {
            return Err(refuse(
                &asset.path,
                "a chowned asset must have been handed to the sandbox's own uid/gid",
            ));
        }
    }
    Ok(())
}

/// `<canonical trusted base>/<exec>/<id>`; returns `<exec>`.
fn check_jail_dir(record: &JailRecord, scope: &Scope) -> Result<String, JailError> {
    let dir = &record.jail_dir;
    let base = crate::trust::check_trusted_dir(scope.chroot_base_dir, "chroot base dir")?;
    let parts: Vec<Component> = match dir.strip_prefix(&base) {
        Ok(rest) => rest.components().collect(),
        Err(_) => {
            return Err(refuse(
                dir,
                "the jail dir is not under the configured chroot base",
            ))
        }
    };
    match parts.as_slice() {
        [Component::Normal(exec), Component::Normal(id)] if *id == OsStr::new(scope.id) => exec
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| refuse(dir, "the jail's exec name is not UTF-8")),
        _ => Err(refuse(
            dir,
            "the jail dir must be <configured chroot base>/<exec>/<sandbox id>",
        )),
    }
}

/// Leaves are `<hierarchy>/<parent>/<id>`; every other recorded cgroup is
/// an ancestor of a leaf strictly below its hierarchy's root.
fn check_cgroups(record: &JailRecord, scope: &Scope, exec: &str) -> Result<(), JailError> {
    let parent = Path::new(scope.parent_cgroup.unwrap_or(exec));
    let mounts = CgroupMounts::discover();
    let roots: Vec<PathBuf> = mounts.v1.values().cloned().chain(mounts.v2).collect();
    let leaves: Vec<(PathBuf, &PathBuf)> = roots
        .iter()
        .map(|root| (root.join(parent).join(scope.id), root))
        .collect();
    let is_leaf = |c: &Path| leaves.iter().any(|(leaf, _)| leaf == c);
    let is_ancestor = |c: &Path| {
        leaves.iter().any(|(leaf, root)| {
            leaf != c && leaf.starts_with(c) && c.starts_with(root) && c != *root
        })
    };
    for cgroup in &record.cgroups {
        if !is_leaf(cgroup) && !is_ancestor(cgroup) {
            return Err(refuse(
                cgroup,
                "a recorded cgroup must be <hierarchy>/<configured parent_cgroup>/<sandbox id> or its ancestor below the hierarchy root",
            ));
        }
    }
    for cgroup in &record.cgroup_parents {
        if !is_ancestor(cgroup) {
            return Err(refuse(
                cgroup,
                "a recorded cgroup parent must lie between the hierarchy root and the sandbox's cgroup",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ChownedAsset;

    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap().join("base");
        std::fs::create_dir(&base).unwrap();
        (tmp, base)
    }

    fn scope(base: &Path) -> Scope<'_> {
        Scope {
            id: "sb",
            chroot_base_dir: base,
            parent_cgroup: Some("vmjail"),
            uid: 30001,
            gid: 30001,
        }
    }

    fn record(base: &Path) -> JailRecord {
        let jail_dir = base.join("qemu-system-x86_64/sb");
        let root = jail_dir.join("root");
        JailRecord {
            id: "sb".into(),
            mounts: vec![root.join("vmjail/vmlinux")],
            jail_dir,
            ..JailRecord::default()
        }
    }

    #[test]
    fn an_honest_record_passes() {
        let (_tmp, base) = fixture();
        let mut r = record(&base);
        let mounts = CgroupMounts::discover();
        if let Some(root) = mounts.v1.values().next() {
            r.cgroups = vec![root.join("vmjail"), root.join("vmjail/sb")];
        }
        check_scope(&r, &scope(&base)).unwrap();
    }

    #[test]
    fn forged_dirs_cgroups_and_owners_are_refused() {
        let (_tmp, base) = fixture();
        let elsewhere = base.parent().unwrap().join("elsewhere/qemu/sb");
        let mounts = CgroupMounts::discover();
        let some_root = mounts.v1.values().next().cloned().or(mounts.v2.clone());
        let mut forgeries: Vec<(&str, JailRecord)> = Vec::new();
        let mut r = record(&base);
        r.jail_dir = elsewhere;
        forgeries.push(("jail dir elsewhere", r));
        let mut r = record(&base);
        r.jail_dir = base.join("sb");
        forgeries.push(("jail dir without exec", r));
        let mut r = record(&base);
        r.id = "other".into();
        forgeries.push(("another sandbox", r));
        if let Some(root) = some_root {
            // A hierarchy's root named like the sandbox (review: jail.id =
            // "pids" and /sys/fs/cgroup/pids).
            let mut r = record(&base);
            r.cgroups = vec![root.clone()];
            forgeries.push(("hierarchy root", r));
            let mut r = record(&base);
            r.cgroups = vec![root.join("elsewhere/sb")];
            forgeries.push(("other parent", r));
            let mut r = record(&base);
            r.cgroup_parents = vec![root.clone()];
            forgeries.push(("root as parent", r));
        }
        let mut r = record(&base);
        r.chowned = vec![ChownedAsset {
            path: "/etc/shadow".into(),
            placed_at: r.root().join("drive"),
            jail_uid: 0,
            jail_gid: 0,
            ..ChownedAsset::default()
        }];
        forgeries.push(("chowned to root", r));
        let mut r = record(&base);
        r.chowned = vec![ChownedAsset {
            path: "/etc/shadow".into(),
            placed_at: "/etc/shadow".into(),
            jail_uid: 30001,
            jail_gid: 30001,
            ..ChownedAsset::default()
        }];
        forgeries.push(("chowned outside the jail", r));
        for (what, r) in forgeries {
            assert!(check_scope(&r, &scope(&base)).is_err(), "{what} passed");
        }
    }
}
