//! Links the shim with packed relative relocations (DT_RELR, glibc 2.36
//! and binutils 2.38 and later; Debian 12 has both): the loader reads a
//! few KiB of bitmap at start instead of ~0.7 MiB of `.rela.dyn`, pages
//! that otherwise stay resident in every shim for its whole life. The
//! binary stays position-independent.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
