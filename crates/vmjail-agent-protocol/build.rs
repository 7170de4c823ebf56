//! Generates the protobuf messages and the ttrpc service from `protos/` with
//! the pure-Rust parser, so no `protoc` binary is needed.

use std::fs;
use std::path::{Path, PathBuf};

use ttrpc_codegen::{Codegen, Customize, ProtobufCustomize};

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=protos/agent.proto");
    Codegen::new()
        .out_dir(&out)
        .inputs(["protos/agent.proto"])
        .include("protos")
        .rust_protobuf()
        .customize(Customize {
            ..Default::default()
        })
        .rust_protobuf_customize(ProtobufCustomize::default().gen_mod_rs(false))
        .run()
        .expect("generating the agent protocol from protos/agent.proto");
    // `include!` cannot take a file's inner attributes and doc comments:
    // drop them; src/lib.rs puts the needed `allow`s on the modules.
    for name in ["agent.rs", "agent_ttrpc.rs"] {
        strip_inner_attributes(&out.join(name));
    }
}

fn strip_inner_attributes(path: &Path) {
    let text = fs::read_to_string(path).expect("reading generated code");
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("#![") && !line.starts_with("//!"))
        .collect();
    fs::write(path, kept.join("\n")).expect("writing generated code");
}
