//! Which vmjail configuration a task uses, and where the `vmjail` binary
//! is. The configuration file is, in order: the runtime options'
//! `ConfigPath` (containerd's CRI `[...runtimes.vmjail.options]
//! ConfigPath = "..."`, or `ctr run --runtime-config-path`), then vmjail's
//! own discovery in the shim's environment (containerd's):
//! `$VMJAIL_CONFIG`, `$KATA_CONF_FILE`, /etc/vmjail/configuration.toml, …

use std::path::{Path, PathBuf};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::CodedInputStream;

/// The runtime options message containerd's CRI passes to non-runc
/// runtimes (`runtimeoptions.v1.Options`, as Kata reads it).
const RUNTIME_OPTIONS: &str = "runtimeoptions.v1.Options";
/// Its `config_path` field number.
const CONFIG_PATH_FIELD: u32 = 2;
/// Longest config path accepted from the options.
const MAX_PATH: usize = 4096;

/// The `ConfigPath` of the task's runtime options, if it names one.
pub fn config_path(options: Option<&Any>) -> Result<Option<PathBuf>, String> {
    let Some(any) = options.filter(|a| !a.type_url.is_empty()) else {
        return Ok(None);
    };
    if !any.type_url.ends_with(RUNTIME_OPTIONS) {
        return Err(format!(
            "runtime options of type {:?}: this runtime takes {RUNTIME_OPTIONS} (ConfigPath)",
            any.type_url.chars().take(200).collect::<String>()
        ));
    }
    let path = read_string_field(&any.value, CONFIG_PATH_FIELD)
        .map_err(|e| format!("runtime options: {e}"))?;
    Ok(path.filter(|p| !p.is_empty()).map(PathBuf::from))
}

/// Field `field` (a string) of the protobuf message `bytes`, skipping the
/// others.
fn read_string_field(bytes: &[u8], field: u32) -> Result<Option<String>, String> {
    let mut input = CodedInputStream::from_bytes(bytes);
    let mut found = None;
    while let Some(tag) = input.read_raw_tag_or_eof().map_err(|e| e.to_string())? {
        let (number, wire_type) = (tag >> 3, tag & 7);
        if number == field && wire_type == 2 {
            let value = input.read_string().map_err(|e| e.to_string())?;
            if value.len() > MAX_PATH {
                return Err(format!("ConfigPath is longer than {MAX_PATH} bytes"));
            }
            found = Some(value);
        } else {
            let wire_type = containerd_shim_protos::protobuf::rt::WireType::new(wire_type)
                .ok_or_else(|| format!("wire type {wire_type} of field {number}"))?;
            input.skip_field(wire_type).map_err(|e| e.to_string())?;
        }
    }
    Ok(found)
}

/// The `vmjail` binary next to this shim: its built-in jailer and console
/// pump launch the VMM, as they do for `vmjail run`.
pub fn vmjail_exe() -> Result<PathBuf, String> {
    let shim = std::env::current_exe().map_err(|e| format!("locating the shim binary: {e}"))?;
    let exe = shim.with_file_name("vmjail");
    if !exe.is_file() {
        return Err(format!(
            "{} not found: install vmjail, vmjail-jailer and {} side by side",
            exe.display(),
            shim.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
    }
    Ok(exe)
}

/// The whole configuration (from `path`, else discovery), read by the
/// child that creates the VM (see `vm_step`); its warnings go to stderr,
/// which the serving shim logs.
pub fn load(path: Option<&Path>) -> Result<vmjail_config::RuntimeConfig, String> {
    match vmjail_config::load(path, &vmjail_config::HostFacts::detect()) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!(
                    "vmjail configuration: {}{}",
                    warning
                        .location
                        .as_deref()
                        .map(|l| format!("{l}: "))
                        .unwrap_or_default(),
                    warning.message
                );
            }
            Ok(config)
        }
        Err(failure) => Err(format!("vmjail configuration: {}", failure.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(type_url: &str, value: Vec<u8>) -> Any {
        Any {
            type_url: type_url.into(),
            value,
            ..Default::default()
        }
    }

    #[test]
    fn config_path_is_read_from_runtime_options() {
        // type_url = "x" (field 1), config_path = "/etc/v.toml" (field 2).
        let mut value = vec![0x0a, 1, b'x', 0x12, 11];
        value.extend_from_slice(b"/etc/v.toml");
        let any = options("runtimeoptions.v1.Options", value);
        assert_eq!(
            config_path(Some(&any)).unwrap(),
            Some(PathBuf::from("/etc/v.toml"))
        );
        assert_eq!(config_path(None).unwrap(), None);
        let empty = options("runtimeoptions.v1.Options", vec![]);
        assert_eq!(config_path(Some(&empty)).unwrap(), None);
        let runc = options("containerd.runc.v1.Options", vec![]);
        assert!(config_path(Some(&runc)).unwrap_err().contains("ConfigPath"));
        let truncated = options("runtimeoptions.v1.Options", vec![0x12, 40, b'/']);
        assert!(config_path(Some(&truncated)).is_err());
    }
}
