//! The guest's ready marker, printed by the agent itself once it accepts
//! connections: the host dials on seeing it. Printed here rather than by
//! the guest's init after the agent signalled it, which cost a wake-up of
//! init and a fork and exec of busybox (`uname`) on the path to the first
//! container.

use std::io::Write;

use vmjail_agent_protocol::GUEST_READY_MARKER;

/// The marker line: `VMJAIL-GUEST-READY uptime=<s>s kernel=<release>`,
/// as the guest's init prints it for a guest without an agent.
fn line(uptime: &str, release: &str) -> String {
    format!("{GUEST_READY_MARKER} uptime={uptime}s kernel={release}\n")
}

/// Prints the marker on stderr (the guest's console) in one write. The
/// uptime and kernel are for people reading the log: `?` when unknown.
pub fn announce() -> std::io::Result<()> {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let uptime = uptime.split_whitespace().next().unwrap_or("?");
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into());
    std::io::stderr()
        .lock()
        .write_all(line(uptime, &release).as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_is_what_init_prints() {
        assert_eq!(
            super::line("1.52", "6.1.0-57-cloud-amd64"),
            "VMJAIL-GUEST-READY uptime=1.52s kernel=6.1.0-57-cloud-amd64\n"
        );
    }
}
