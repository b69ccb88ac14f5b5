//! The program forwarding real packets, in network namespaces this test makes (as root;
//! `scripts/test.sh` runs it so): on one host over loopback, and to another host over a
//! veth pair whose checksums are computed in full (no offload), so that a wrong checksum
//! fix-up would drop the packets.

use std::net::{SocketAddrV4, UdpSocket};
use std::process::Command;
use std::time::Duration;

use relay_kernel::KernelPath;

/// Runs `ip` (or `ethtool`) in this thread's network namespace.
fn run(cmd: &str, args: &[&str]) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let ns = format!("--net=/proc/{}/task/{tid}/ns/net", std::process::id());
    let ok = Command::new("nsenter")
        .arg(ns)
        .arg(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("nsenter");
    assert!(ok.success(), "{cmd} {args:?}");
}

/// Moves this thread into a new network namespace with loopback up.
fn own_namespace() {
    // SAFETY: unshare changes this thread's network namespace alone.
    assert_eq!(
        unsafe { libc::unshare(libc::CLONE_NEWNET) },
        0,
        "unshare (root?)"
    );
    run("ip", &["link", "set", "lo", "up"]);
}

fn rtp(i: u8) -> [u8; 12] {
    [0x80, 0, 0, i, 0, 0, 0, 0, 0, 0, 0, 1]
}

fn receiver(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s
}

fn any() -> std::net::IpAddr {
    std::net::Ipv4Addr::UNSPECIFIED.into()
}

fn v4(s: &str) -> SocketAddrV4 {
    s.parse().expect("address")
}

#[test]
fn a_flow_is_forwarded_on_this_host_and_nothing_else() {
    std::thread::spawn(|| {
        own_namespace();
        let bind = "127.0.0.1".parse().expect("ip");
        let (path, interfaces) = KernelPath::start(bind).expect("kernel path");
        assert_eq!(interfaces, ["lo"]);
        let a = UdpSocket::bind("127.0.0.1:4000").expect("bind");
        let b = receiver("127.0.0.1:6000");
        let mut buf = [0u8; 64];
        path.install(5000, v4("127.0.0.1:4000"), 5002, v4("127.0.0.1:6000"))
            .expect("installed");
        for i in 0..3 {
            a.send_to(&rtp(i), "127.0.0.1:5000").expect("send");
        }
        for i in 0..3 {
            let (n, from) = b.recv_from(&mut buf).expect("forwarded");
            assert_eq!(
                (&buf[..n], from.to_string().as_str()),
                (&rtp(i)[..], "127.0.0.1:5002")
            );
        }
        let c = path.counters(5000, v4("127.0.0.1:4000")).expect("flow");
        assert_eq!((c.packets, c.bytes), (3, 36));
        assert!(c.last_ns > 0 && c.last_ns <= relay_kernel::monotonic_ns());
        // Not media (STUN's first byte), another source, another port: to the relay.
        let relay = receiver("127.0.0.1:5000");
        a.send_to(&[0, 1, 0, 0], "127.0.0.1:5000").expect("send");
        assert_eq!(relay.recv_from(&mut buf).expect("to the relay").0, 4);
        let other = UdpSocket::bind("127.0.0.1:4001").expect("bind");
        other.send_to(&rtp(9), "127.0.0.1:5000").expect("send");
        assert_eq!(
            relay.recv_from(&mut buf).expect("to the relay").1.port(),
            4001
        );
        // To an address the relay does not take packets at: left alone.
        let elsewhere = receiver("127.0.0.2:5000");
        a.send_to(&rtp(8), "127.0.0.2:5000").expect("send");
        assert_eq!(elsewhere.recv_from(&mut buf).expect("not taken").0, 12);
        // Removed: to the relay again.
        path.remove(5000, v4("127.0.0.1:4000"));
        a.send_to(&rtp(4), "127.0.0.1:5000").expect("send");
        assert_eq!(
            relay.recv_from(&mut buf).expect("to the relay").1.port(),
            4000
        );
        assert!(b.recv_from(&mut buf).is_err(), "nothing more forwarded");
        assert_eq!(path.counters(5000, v4("127.0.0.1:4000")), None);
    })
    .join()
    .expect("thread");
}

#[test]
fn a_flow_to_another_host_leaves_by_its_route_with_checksums_right() {
    std::thread::spawn(|| {
        own_namespace();
        // The phones' namespace, reached over a veth pair.
        let name = format!("ferrosip-kernel-{}", std::process::id());
        let _gone = Gone(name.clone());
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip")
            .success());
        run(
            "ip",
            &[
                "link", "add", "r0", "type", "veth", "peer", "name", "p0", "netns", &name,
            ],
        );
        run("ip", &["addr", "add", "10.9.0.1/24", "dev", "r0"]);
        // A tunnel (no Ethernet header): left alone.
        run("ip", &["tuntap", "add", "t0", "mode", "tun"]);
        run("ip", &["link", "set", "r0", "up"]);
        let phones = |args: &[&str]| {
            let mut cmd = vec!["netns", "exec", &name];
            cmd.extend_from_slice(args);
            assert!(
                Command::new("ip")
                    .args(&cmd)
                    .status()
                    .expect("ip")
                    .success(),
                "{args:?}"
            );
        };
        phones(&["ip", "addr", "add", "10.9.0.2/24", "dev", "p0"]);
        phones(&["ip", "addr", "add", "10.9.0.3/24", "dev", "p0"]);
        phones(&["ip", "link", "set", "p0", "up"]);
        // Checksums in full, both ways.
        phones(&["ethtool", "-K", "p0", "tx", "off", "rx", "off"]);
        run("ethtool", &["-K", "r0", "tx", "off", "rx", "off"]);
        let (path, interfaces) = KernelPath::start(any()).expect("kernel path");
        assert_eq!(interfaces, ["lo", "r0"]);
        // The phones' sockets, made in their namespace.
        let ns = std::fs::File::open(format!("/run/netns/{name}")).expect("netns");
        let (a, b) = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns moves this thread alone.
            assert_eq!(
                unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            (
                UdpSocket::bind("10.9.0.2:4000").expect("a"),
                receiver("10.9.0.3:6000"),
            )
        })
        .join()
        .expect("thread");
        // The relay reaches b once from its socket (as before a flow is installed): its
        // neighbour entry is learnt.
        let relay = UdpSocket::bind("10.9.0.1:5002").expect("bind");
        relay.send_to(&rtp(0), "10.9.0.3:6000").expect("send");
        let mut buf = [0u8; 64];
        b.recv_from(&mut buf).expect("from the relay");
        path.install(5000, v4("10.9.0.2:4000"), 5002, v4("10.9.0.3:6000"))
            .expect("installed");
        for i in 1..=3 {
            a.send_to(&rtp(i), "10.9.0.1:5000").expect("send");
            let (n, from) = b.recv_from(&mut buf).expect("forwarded");
            assert_eq!(
                (&buf[..n], from.to_string().as_str()),
                (&rtp(i)[..], "10.9.0.1:5002")
            );
        }
        assert_eq!(
            path.counters(5000, v4("10.9.0.2:4000"))
                .expect("flow")
                .packets,
            3
        );
        let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/conf/r0/forwarding");
        assert_eq!(
            forwarding.expect("sysctl").trim(),
            "0",
            "the host routes nothing else"
        );
    })
    .join()
    .expect("thread");
}

/// Deletes the named network namespace when dropped.
struct Gone(String);

impl Drop for Gone {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
