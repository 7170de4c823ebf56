//! A container's guest cgroup figures as containerd's cgroup v2 metrics
//! (`io.containerd.cgroups.v2.Metrics`, what `ctr task metrics` prints).

use containerd_shim_protos::cgroups_v2::metrics::{
    CPUStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use vmjail_sandbox::agent::ContainerStats;

const TYPE_URL: &str = "io.containerd.cgroups.v2.Metrics";

pub fn to_any(stats: &ContainerStats) -> Result<Any, String> {
    let metrics = Metrics {
        pids: MessageField::some(PidsStat {
            current: stats.pids_current,
            limit: unlimited_as_max(stats.pids_limit),
            ..Default::default()
        }),
        cpu: MessageField::some(CPUStat {
            usage_usec: stats.cpu_usage_usec,
            user_usec: stats.cpu_user_usec,
            system_usec: stats.cpu_system_usec,
            ..Default::default()
        }),
        memory: MessageField::some(MemoryStat {
            usage: stats.memory_usage_bytes,
            usage_limit: unlimited_as_max(stats.memory_limit_bytes),
            ..Default::default()
        }),
        memory_events: MessageField::some(MemoryEvents {
            oom_kill: stats.oom_kills,
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(Any {
        type_url: TYPE_URL.into(),
        value: metrics
            .write_to_bytes()
            .map_err(|e| format!("encoding the metrics: {e}"))?,
        ..Default::default()
    })
}

/// The agent's "no limit" (0) as containerd's cgroup library reports a
/// `max` file: the largest number.
fn unlimited_as_max(limit: u64) -> u64 {
    match limit {
        0 => u64::MAX,
        n => n,
    }
}
