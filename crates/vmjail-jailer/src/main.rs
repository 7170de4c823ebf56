//! `vmjail-jailer`: the built-in jailer, CLI-compatible with Firecracker's
//! `jailer` (plus vmjail's additions; `--help` lists them). The same code
//! as `vmjail jailer`, in a binary that links nothing but the jail: it is
//! exec'd on every VMM's start-up path, and loading the whole `vmjail`
//! binary (its HTTP, async and configuration stacks) cost a millisecond
//! there. Never returns on success: the process becomes the VMM.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(vmjail_jail::builtin_jailer_main(args));
}
