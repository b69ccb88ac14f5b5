//! Networks of namespaces for NAT tests (`ip netns`, veth, a bridge, nftables): an
//! "internet" (a bridge on 203.0.113.0/24 in the server's namespace, the server at .1) and
//! LANs (10.0.N.0/24) behind routers that masquerade onto it, as home routers do. Every
//! namespace is made by the test and deleted when its `Net` is dropped, also when the test
//! fails. Needs root (CI runs as root); `scripts/test.sh` installs iproute2 and nftables.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server's address on the internet bridge.
pub const SERVER_IP: &str = "203.0.113.1";

/// How a router maps its LAN's flows onto its public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// The source port is kept where it can be (most home routers).
    PortPreserving,
    /// Every flow gets a random port (`masquerade fully-random`: symmetric-NAT-like).
    Random,
}

/// The namespaces of one test.
pub struct Net {
    prefix: String,
    made: Vec<String>,
}

/// Runs `ip` with `args`, failing the test with its output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// A network with the internet namespace made (the server's: `self.internet()`).
    pub fn new() -> Net {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let mut net = Net {
            prefix: format!("fs{}-{n}", std::process::id()),
            made: Vec::new(),
        };
        let srv = net.add("srv");
        for cmd in [
            "ip link add br0 type bridge",
            &format!("ip addr add {SERVER_IP}/24 dev br0"),
            "ip link set br0 up",
        ] {
            net.sh(&srv, cmd);
        }
        net
    }

    /// The server's namespace.
    pub fn internet(&self) -> String {
        format!("{}-srv", self.prefix)
    }

    /// Makes namespace `name` (its loopback up); gives its full name.
    fn add(&mut self, name: &str) -> String {
        let ns = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &ns]);
        self.made.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a shell command in namespace `ns`; fails the test with its output if it fails.
    pub fn sh(&self, ns: &str, script: &str) {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-ec", script])
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "in {ns}: {script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Puts namespace `ns` on the internet at `addr` (interface `wan`, bridge port `port`).
    fn plug(&self, ns: &str, addr: &str, port: &str) {
        let srv = self.internet();
        ip(&[
            "-n", ns, "link", "add", "wan", "type", "veth", "peer", "name", port, "netns", &srv,
        ]);
        self.sh(&srv, &format!("ip link set {port} master br0 up"));
        self.sh(
            ns,
            &format!("ip addr add {addr}/24 dev wan; ip link set wan up"),
        );
    }

    /// A host on the internet (no NAT) at 203.0.113.`host`; gives its namespace.
    pub fn public_host(&mut self, host: u8) -> String {
        let ns = self.add(&format!("pub{host}"));
        self.plug(&ns, &format!("203.0.113.{host}"), &format!("p{host}"));
        ns
    }

    /// LAN `n` (10.0.`n`.0/24, the phone's host at .2) behind a router at 203.0.113.1`n`
    /// that masquerades with `mapping`, forgetting an idle UDP flow after `udp_timeout`
    /// seconds, and letting nothing in that its LAN did not start. Gives the LAN's
    /// namespace.
    pub fn natted_lan(&mut self, n: u8, mapping: Mapping, udp_timeout: u32) -> String {
        let router = self.add(&format!("nat{n}"));
        let lan = self.add(&format!("lan{n}"));
        self.plug(&router, &format!("203.0.113.{}", 10 + n), &format!("n{n}"));
        ip(&[
            "-n", &lan, "link", "add", "eth0", "type", "veth", "peer", "name", "lan", "netns",
            &router,
        ]);
        self.sh(
            &router,
            &format!("ip addr add 10.0.{n}.1/24 dev lan; ip link set lan up"),
        );
        self.sh(
            &lan,
            &format!(
                "ip addr add 10.0.{n}.2/24 dev eth0; ip link set eth0 up; \
                 ip route add default via 10.0.{n}.1"
            ),
        );
        let random = match mapping {
            Mapping::PortPreserving => "",
            Mapping::Random => " fully-random",
        };
        let rules = format!(
            "table ip nat {{\n chain post {{\n  type nat hook postrouting priority srcnat;\n  \
             oifname \"wan\" masquerade{random}\n }}\n}}\n\
             table ip filter {{\n chain forward_lan {{\n  type filter hook forward priority filter; policy drop;\n  \
             ct state established,related accept\n  iifname \"lan\" accept\n }}\n}}\n"
        );
        self.sh(
            &router,
            &format!(
                "sysctl -qw net.ipv4.ip_forward=1\nnft -f - <<'RULES'\n{rules}RULES\n\
                 sysctl -qw net.netfilter.nf_conntrack_udp_timeout={udp_timeout}\n\
                 sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream={udp_timeout}"
            ),
        );
        lan
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
