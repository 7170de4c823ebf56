//! `update [--resources FILE|-] [--memory B] [--pids-limit N]
//! [--cpu-quota U] [--cpu-period U] ID`: a running container's limits,
//! changed in its guest cgroup. What maps onto cgroup v2 there applies
//! (memory.limit → memory.max, pids.limit → pids.max, cpu.quota/period →
//! cpu.max); the rest of runc's resources (block I/O, cpu shares and sets,
//! hugepages, devices, the VM's own size) is not changed.

use std::io::Read;

use vmjail_agent_protocol::MAX_RESOURCES_JSON;
use vmjail_sandbox::{SandboxId, Sandboxes, SelectFactory};

use super::{status_of, OciStatus, AGENT_TIMEOUT};
use crate::cli::UpdateArgs;
use crate::cmd::lifecycle::{exit, Failure};

pub fn update(sandboxes: &Sandboxes<SelectFactory>, args: &UpdateArgs) -> Result<u8, Failure> {
    let id = SandboxId::parse(&args.id)?;
    let mut resources = match args.resources.as_deref() {
        None => serde_json::json!({}),
        Some(source) => read_resources(source)?,
    };
    let set = |resources: &mut serde_json::Value, pointer: [&str; 2], value: serde_json::Value| {
        if !resources[pointer[0]].is_object() {
            resources[pointer[0]] = serde_json::json!({});
        }
        resources[pointer[0]][pointer[1]] = value;
    };
    if let Some(m) = args.memory {
        set(&mut resources, ["memory", "limit"], m.into());
    }
    if let Some(p) = args.pids_limit {
        set(&mut resources, ["pids", "limit"], p.into());
    }
    if let Some(q) = args.cpu_quota {
        set(&mut resources, ["cpu", "quota"], q.into());
    }
    if let Some(p) = args.cpu_period {
        set(&mut resources, ["cpu", "period"], p.into());
    }
    // As runc: a zero means "unchanged" (Docker sends every field).
    for [section, key] in [
        ["memory", "limit"],
        ["pids", "limit"],
        ["cpu", "quota"],
        ["cpu", "period"],
    ] {
        if let Some(fields) = resources.get_mut(section).and_then(|s| s.as_object_mut()) {
            if fields.get(key).and_then(|v| v.as_i64()) == Some(0) {
                fields.remove(key);
            }
        }
    }
    match status_of(sandboxes, &id)? {
        OciStatus::Created | OciStatus::Running | OciStatus::Paused => {}
        status => {
            return Err(Failure::WrongState(format!(
                "container \"{id}\" is {status}: update needs a created or running one"
            )))
        }
    }
    let client = sandboxes.agent_client(&id, AGENT_TIMEOUT)?;
    sandboxes.update_container(&id, &client, id.as_str(), &resources.to_string())?;
    Ok(exit::OK)
}

/// The LinuxResources JSON of `--resources` (a file, or `-`: stdin).
fn read_resources(source: &str) -> Result<serde_json::Value, Failure> {
    let bad = |why: String| Failure::Usage(format!("--resources {source}: {why}"));
    let mut text = Vec::new();
    let limit = MAX_RESOURCES_JSON as u64 + 1;
    let read = match source {
        "-" => std::io::stdin().take(limit).read_to_end(&mut text),
        path => std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut text)),
    };
    read.map_err(|e| bad(e.to_string()))?;
    if text.len() > MAX_RESOURCES_JSON {
        return Err(bad(format!("more than {MAX_RESOURCES_JSON} bytes")));
    }
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    Ok(value)
}
