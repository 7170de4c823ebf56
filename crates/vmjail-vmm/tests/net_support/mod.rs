//! Test networks: an "outside" netns and a sandbox netns joined by a veth
//! pair, with addresses the test chooses (10.77.<n>.0/24, fd77:<n>::/64),
//! as Docker, Podman or a CNI plugin would leave them. Traffic stays
//! between these namespaces. Also snapshots of a namespace's links,
//! addresses, routes, qdiscs and filters, to prove teardown restores them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Run `ip`/`tc` (test oracle, independent of vmjail's netlink code).
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named netns, deleted on drop.
pub struct Ns(pub String);

impl Ns {
    pub fn new(name: String) -> Ns {
        // A namespace of this name left by an earlier, killed run.
        let _ = Command::new("ip")
            .args(["netns", "delete", &name])
            .stderr(std::process::Stdio::null())
            .status();
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Ns(name)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    pub fn tc(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        run("tc", &all)
    }

    /// Everything teardown must leave as it found: links (without
    /// counters), addresses, routes, neighbours, qdiscs and filters.
    pub fn snapshot(&self) -> String {
        let links = self.ip(&["-d", "-o", "link", "show"]);
        let links: String = links
            .lines()
            .map(|l| {
                // Drop what changes by itself (carrier, state) and the
                // peer's netns name (iproute2 shows whichever name of it
                // it finds first: a sandbox's pin is one more).
                let words: Vec<&str> = l.split_whitespace().collect();
                words
                    .iter()
                    .enumerate()
                    .filter(|(i, w)| {
                        let peer_ns = *i > 0 && words[i - 1] == "link-netns";
                        !(w.contains("DOWN") || w.contains("UP") || peer_ns)
                    })
                    .map(|(_, w)| *w)
                    .collect::<Vec<_>>()
                    .join(" ")
                    + "\n"
            })
            .collect();
        let mut snap = links;
        for args in [
            &["-o", "addr", "show"][..],
            &["route", "show", "table", "all"][..],
        ] {
            snap += &self
                .ip(args)
                .lines()
                // IPv6 link-local addresses and their routes come and go
                // with links by themselves (a new tap gets one a moment
                // after it is up): not something teardown restores.
                .filter(|l| !l.contains("fe80"))
                .map(|l| {
                    l.split_whitespace()
                        .filter(|w| !w.ends_with("sec"))
                        .collect::<Vec<_>>()
                        .join(" ")
                        + "\n"
                })
                .collect::<String>();
        }
        snap += &self.tc(&["qdisc", "show"]);
        for link in self.link_names() {
            snap += &self.tc(&["filter", "show", "dev", &link, "ingress"]);
        }
        snap
    }

    pub fn link_names(&self) -> Vec<String> {
        self.ip(&["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
            .collect()
    }

    pub fn mac_of(&self, link: &str) -> String {
        let text = self.ip(&["-o", "link", "show", link]);
        let at = text.find("link/ether ").unwrap() + "link/ether ".len();
        text[at..at + 17].to_owned()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// The outside netns and the sandbox netns, joined by a veth pair:
/// `out0` outside (10.77.<n>.1), `eth0` in the sandbox (10.77.<n>.2,
/// default route via .1, a static neighbour).
pub struct Pair {
    pub outside: Ns,
    pub sandbox: Ns,
    pub n: u8,
}

impl Pair {
    pub fn new(tag: &str, n: u8) -> Pair {
        let pid = std::process::id();
        let outside = Ns::new(format!("vmjt-out-{tag}-{pid}"));
        let sandbox = Ns::new(format!("vmjt-sbx-{tag}-{pid}"));
        run(
            "ip",
            &[
                "-n", &outside.0, "link", "add", "out0", "type", "veth", "peer", "name", "eth0",
                "netns", &sandbox.0,
            ],
        );
        outside.ip(&["addr", "add", &format!("10.77.{n}.1/24"), "dev", "out0"]);
        outside.ip(&[
            "addr",
            "add",
            &format!("fd77:{n}::1/64"),
            "dev",
            "out0",
            "nodad",
        ]);
        outside.ip(&["link", "set", "out0", "up"]);
        sandbox.ip(&["addr", "add", &format!("10.77.{n}.2/24"), "dev", "eth0"]);
        sandbox.ip(&[
            "addr",
            "add",
            &format!("fd77:{n}::2/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        sandbox.ip(&["link", "set", "eth0", "up"]);
        sandbox.ip(&["route", "add", "default", "via", &format!("10.77.{n}.1")]);
        sandbox.ip(&[
            "route",
            "add",
            "10.78.0.0/16",
            "via",
            &format!("10.77.{n}.1"),
        ]);
        sandbox.ip(&[
            "neigh",
            "add",
            &format!("10.77.{n}.9"),
            "lladdr",
            "02:77:00:00:00:09",
            "dev",
            "eth0",
            "nud",
            "permanent",
        ]);
        // Let IPv6 finish configuring the veths (link-local addresses and
        // their routes come a moment after carrier), so a snapshot taken
        // now stays true until the test changes something.
        for ns in [&outside, &sandbox] {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let settled = ns
                    .ip(&["-6", "route", "show", "table", "all"])
                    .contains("fe80::/64")
                    && !ns.ip(&["-6", "addr"]).contains("tentative");
                if settled {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "IPv6 never settled in {}",
                    ns.0
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        Pair {
            outside,
            sandbox,
            n,
        }
    }

    pub fn guest_ip(&self) -> String {
        format!("10.77.{}.2", self.n)
    }

    pub fn outside_ip(&self) -> String {
        format!("10.77.{}.1", self.n)
    }
}
