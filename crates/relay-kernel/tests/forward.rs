//! The program forwarding real packets, in network namespaces this test makes (as root;
//! `scripts/test.sh` runs it so): on one host over loopback, and to another host over a
//! veth pair whose checksums are computed in full (no offload), so that a wrong checksum
//! fix-up would drop the packets.

use std::net::{SocketAddr, UdpSocket};
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

fn sa(s: &str) -> SocketAddr {
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
        path.install(5000, sa("127.0.0.1:4000"), 5002, sa("127.0.0.1:6000"))
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
        // And an RTCP sender report (rtcp-mux: on the RTP port), counted apart.
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        a.send_to(&rtcp, "127.0.0.1:5000").expect("send");
        assert_eq!(b.recv_from(&mut buf).expect("forwarded").0, 12);
        let c = path.counters(5000, sa("127.0.0.1:4000")).expect("flow");
        assert_eq!((c.packets, c.bytes), (4, 48));
        assert_eq!((c.rtcp_packets, c.rtcp_bytes), (1, 12));
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
        // Without forwarding on loopback the program cannot look routes up: to the relay,
        // until it is turned on again.
        let sysctl = "/proc/sys/net/ipv4/conf/lo/forwarding";
        std::fs::write(sysctl, "0").expect("sysctl");
        a.send_to(&rtp(5), "127.0.0.1:5000").expect("send");
        assert_eq!(
            relay.recv_from(&mut buf).expect("to the relay").1.port(),
            4000
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        path.keep_up().expect("turned on");
        assert_eq!(std::fs::read_to_string(sysctl).expect("sysctl").trim(), "1");
        a.send_to(&rtp(6), "127.0.0.1:5000").expect("send");
        assert_eq!(b.recv_from(&mut buf).expect("forwarded").0, 12);
        // Removed: to the relay again.
        path.remove(5000, sa("127.0.0.1:4000"));
        a.send_to(&rtp(4), "127.0.0.1:5000").expect("send");
        assert_eq!(
            relay.recv_from(&mut buf).expect("to the relay").1.port(),
            4000
        );
        assert!(b.recv_from(&mut buf).is_err(), "nothing more forwarded");
        assert_eq!(path.counters(5000, sa("127.0.0.1:4000")), None);
    })
    .join()
    .expect("thread");
}

#[test]
fn an_ipv6_flow_is_forwarded_on_this_host() {
    std::thread::spawn(|| {
        own_namespace();
        let (path, _) = KernelPath::start("::".parse().expect("ip")).expect("kernel path");
        let a = UdpSocket::bind("[::1]:4000").expect("bind");
        let b = receiver("[::1]:6000");
        path.install(5000, sa("[::1]:4000"), 5002, sa("[::1]:6000"))
            .expect("installed");
        a.send_to(&rtp(1), "[::1]:5000").expect("send");
        let mut buf = [0u8; 64];
        let (n, from) = b.recv_from(&mut buf).expect("forwarded");
        assert_eq!((&buf[..n], from), (&rtp(1)[..], sa("[::1]:5002")));
        // Not across families.
        let mixed = path.install(5000, sa("[::1]:4001"), 5002, sa("127.0.0.1:6000"));
        assert!(mixed.is_err());
        // ::1 goes to ::1 only: to the relay.
        let relay = receiver("[::]:5000");
        path.install(5000, sa("[::1]:4002"), 5002, sa("[2001:db8::1]:6000"))
            .expect("installed");
        let c = UdpSocket::bind("[::1]:4002").expect("bind");
        c.send_to(&rtp(2), "[::1]:5000").expect("send");
        assert_eq!(
            relay.recv_from(&mut buf).expect("to the relay").1,
            sa("[::1]:4002")
        );
        // An address the host takes after start is the relay's once looked at again.
        run(
            "ip",
            &["addr", "add", "2001:db8:77::1/128", "dev", "lo", "nodad"],
        );
        let (src, dst) = (sa("[2001:db8:77::1]:4004"), sa("[2001:db8:77::1]:6000"));
        let (c, d) = (
            UdpSocket::bind(src).expect("bind"),
            receiver(&dst.to_string()),
        );
        path.install(5000, src, 5002, dst).expect("installed");
        c.send_to(&rtp(7), "[2001:db8:77::1]:5000").expect("send");
        assert_eq!(relay.recv_from(&mut buf).expect("to the relay").1, src);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        path.keep_up().expect("kept up");
        c.send_to(&rtp(8), "[2001:db8:77::1]:5000").expect("send");
        let (n, from) = d.recv_from(&mut buf).expect("forwarded");
        assert_eq!(
            (&buf[..n], from),
            (&rtp(8)[..], sa("[2001:db8:77::1]:5002"))
        );
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
        run(
            "ip",
            &["addr", "add", "2001:db8:9::1/64", "dev", "r0", "nodad"],
        );
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
        phones(&[
            "ip",
            "addr",
            "add",
            "2001:db8:9::2/64",
            "dev",
            "p0",
            "nodad",
        ]);
        phones(&[
            "ip",
            "addr",
            "add",
            "2001:db8:9::3/64",
            "dev",
            "p0",
            "nodad",
        ]);
        phones(&["ip", "link", "set", "p0", "up"]);
        // Checksums in full, both ways.
        phones(&["ethtool", "-K", "p0", "tx", "off", "rx", "off"]);
        run("ethtool", &["-K", "r0", "tx", "off", "rx", "off"]);
        // Bound to `::`: both families.
        let bind = "::".parse().expect("ip");
        let (path, interfaces) = KernelPath::start(bind).expect("kernel path");
        assert_eq!(interfaces, ["lo", "r0"]);
        let ns = std::fs::File::open(format!("/run/netns/{name}")).expect("netns");
        for (relay, a, b) in [
            ("10.9.0.1", "10.9.0.2", "10.9.0.3"),
            ("2001:db8:9::1", "2001:db8:9::2", "2001:db8:9::3"),
        ] {
            let at = |ip: &str, port: u16| SocketAddr::new(ip.parse().expect("ip"), port);
            // The phones' sockets, made in their namespace.
            let ns = ns.try_clone().expect("fd");
            let (pa, pb) = (at(a, 4000), at(b, 6000));
            let (a, b) = std::thread::spawn(move || {
                use std::os::fd::AsRawFd;
                // SAFETY: setns moves this thread alone.
                let moved = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(moved, 0);
                (UdpSocket::bind(pa).expect("a"), receiver(&pb.to_string()))
            })
            .join()
            .expect("thread");
            // The relay reaches b once from its socket (as before a flow is installed): its
            // neighbour entry is learnt.
            let sock = UdpSocket::bind(at(relay, 5002)).expect("bind");
            let mut buf = [0u8; 64];
            let reached = (0..10).any(|_| {
                sock.send_to(&rtp(0), pb).expect("send");
                b.recv_from(&mut buf).is_ok()
            });
            assert!(reached, "{relay} reaches {pb}");
            // The first tries, queued while the neighbour was learnt, come late.
            while b.recv_from(&mut buf).is_ok_and(|(n, _)| buf[..n] == rtp(0)) {}
            path.install(5000, pa, 5002, pb).expect("installed");
            for i in 1..=3 {
                a.send_to(&rtp(i), at(relay, 5000)).expect("send");
                let (n, from) = b.recv_from(&mut buf).expect("forwarded");
                assert_eq!((&buf[..n], from), (&rtp(i)[..], at(relay, 5002)));
            }
            assert_eq!(path.counters(5000, pa).expect("flow").packets, 3);
        }
        for family in ["ipv4", "ipv6"] {
            let forwarding = format!("/proc/sys/net/{family}/conf/r0/forwarding");
            let forwarding = std::fs::read_to_string(forwarding).expect("sysctl");
            assert_eq!(forwarding.trim(), "0", "the host routes nothing else");
        }
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
