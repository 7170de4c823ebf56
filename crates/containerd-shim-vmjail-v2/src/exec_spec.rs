//! An exec's process from containerd's `ExecProcessRequest.spec`: an OCI
//! runtime-spec `Process`, as JSON in an `Any`.

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use vmjail_sandbox::agent::{ProcessSpec, DEFAULT_TTY_SIZE};

/// Largest spec accepted (containerd's own messages are far smaller).
const MAX_SPEC: usize = 1024 * 1024;

pub fn from_any(spec: &Any, stdin: bool) -> Result<ProcessSpec, String> {
    if spec.value.len() > MAX_SPEC {
        return Err(format!("exec spec of {} bytes", spec.value.len()));
    }
    let process: oci_spec::runtime::Process =
        serde_json::from_slice(&spec.value).map_err(|e| format!("exec spec: {e}"))?;
    let argv = process.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err("exec spec: no args".into());
    }
    let user = process.user();
    Ok(ProcessSpec {
        argv,
        env: process.env().clone().unwrap_or_default(),
        cwd: Some(process.cwd().to_string_lossy().into_owned()),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        tty: process
            .terminal()
            .unwrap_or(false)
            .then_some(DEFAULT_TTY_SIZE),
        stdin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oci_process_becomes_the_agents() {
        let json = r#"{"args":["sh","-c","id"],"env":["PATH=/bin"],"cwd":"/tmp",
                       "user":{"uid":5,"gid":6,"additionalGids":[7]},"terminal":true}"#;
        let any = Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: json.as_bytes().to_vec(),
            ..Default::default()
        };
        let spec = from_any(&any, true).unwrap();
        assert_eq!(spec.argv, ["sh", "-c", "id"]);
        assert_eq!(spec.cwd.as_deref(), Some("/tmp"));
        assert_eq!((spec.uid, spec.gid, spec.additional_gids), (5, 6, vec![7]));
        assert_eq!(spec.tty, Some(DEFAULT_TTY_SIZE));
        assert!(spec.stdin);
        let empty = Any {
            value: br#"{"cwd":"/","user":{"uid":0,"gid":0}}"#.to_vec(),
            ..Default::default()
        };
        assert!(from_any(&empty, false).unwrap_err().contains("no args"));
    }
}
