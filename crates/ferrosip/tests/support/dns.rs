//! A DNS server of the test's own: dnsmasq on a loopback port, answering only the records
//! given (`scripts/test.sh` installs dnsmasq-base).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

/// dnsmasq serving only the records given, on 127.0.0.1; killed on drop.
pub struct Dns {
    child: Child,
    pub port: u16,
}

impl Dns {
    pub fn start(records: &[String]) -> Dns {
        let port = free_port();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--pid-file=",
                "--user=root",
            ])
            .arg(format!("--port={port}"))
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (scripts/test.sh installs dnsmasq-base)");
        let dns = Dns { child, port };
        dns.wait_ready();
        dns
    }

    /// Waits (5 s at most) until the server answers a query.
    fn wait_ready(&self) {
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x01\x00\x01";
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        for _ in 0..50 {
            let _ = sock.send_to(query, ("127.0.0.1", self.port));
            if sock.recv(&mut [0u8; 512]).is_ok() {
                return;
            }
        }
        panic!("dnsmasq does not answer on port {}", self.port);
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
