//! What both benches of this crate need: the binaries they run.

use std::path::PathBuf;

/// The workspace binary `name`: `$env_var` when set, else the release or
/// debug build beside this bench's target dir.
pub fn built_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(env_var) {
        return bin.into();
    }
    // <target>/release/deps/<bench>-<hash> → <target>
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("bench binary under <target>/<profile>/deps");
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join(name);
        if bin.exists() {
            return bin;
        }
    }
    panic!(
        "no {name} under {}: run `cargo build --release -p {name}` (or set {env_var})",
        target.display()
    );
}
