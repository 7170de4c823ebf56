//! The names of per-binary copies in the making (the exec-only copy, the
//! library tree): made under `<name>.tmp.<tid>` beside their final name,
//! then renamed into place, so that nobody sees half of one. The thread's
//! id, not the process's: threads of one launcher may make the same copy
//! at once, and so may several launchers.

/// The name this thread makes `name` under.
pub fn of(name: &str) -> String {
    format!("{name}.tmp.{}", nix::unistd::gettid())
}

/// Whether `file_name` is a copy in the making whose maker is alive
/// (`/proc/<tid>` answers for any live thread): left to it by whoever
/// clears out old copies.
pub fn maker_alive(file_name: &str) -> bool {
    file_name
        .rsplit_once(".tmp.")
        .and_then(|(_, tid)| tid.parse::<u32>().ok())
        .is_some_and(|tid| std::path::Path::new(&format!("/proc/{tid}")).exists())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_in_the_making_names_its_live_maker() {
        let ours = super::of("vmm");
        assert!(ours.starts_with("vmm.tmp."), "{ours}");
        assert!(super::maker_alive(&ours));
        assert!(!super::maker_alive("vmm.tmp.4194305"), "no such thread");
        assert!(!super::maker_alive("vmm"));
    }
}
