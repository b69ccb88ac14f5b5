//! Phones behind real NAT (network namespaces, nftables masquerade; see `support::netns`)
//! with the default configuration: baresip phones playing a WAV file register through their
//! NAT, call each other in both directions, behind two different NATs and with one outside,
//! and hear each other through the media relay (each receives at least 90% of what the
//! other sent); hold and resume keep audio; the server's keepalives keep a binding past
//! the NAT's UDP timeout, and a dead phone's binding goes; a STUN client behind the NAT
//! learns the NAT's public address from the server. With `[relay] kernel_forwarding`, the
//! kernel forwards their streams, out of the server's bridge to the other NAT.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::baresip::Baresip;
use support::netns::{Mapping, Net, SERVER_IP};
use support::phone::{tone_wav, Account, Rtp};
use support::Server;

/// Seconds an idle UDP flow lives in the routers' NAT tables: shorter than the server's
/// keepalive interval would need, so only keepalives keep a phone reachable.
const NAT_UDP_TIMEOUT: u32 = 5;

/// The default configuration, on the internet address, with keepalives every 2 s and a
/// silent phone dropped after 6 s.
fn config() -> String {
    format!(
        "[server]\nlisten = [\"udp:{SERVER_IP}:5060\", \"tcp:{SERVER_IP}:5060\"]\n\
         [api]\nlisten = \"\"\n\
         [nat]\nkeepalive_interval = 2\nkeepalive_timeout = 6\n"
    )
}

fn account(user: &str) -> Account<'_> {
    Account {
        user,
        domain: SERVER_IP,
        password: "unused",
        proxy: SocketAddr::new(SERVER_IP.parse().expect("ip"), 5060),
        transport: "udp",
    }
}

fn uri(user: &str) -> String {
    format!("sip:{user}@{SERVER_IP}")
}

/// A phone in namespace `ns` at `ip`, playing `wav`.
fn phone(ns: &str, ip: &str, user: &str, peer: &str, wav: &std::path::Path) -> Baresip {
    let local = SocketAddr::new(ip.parse().expect("ip"), 5070);
    Baresip::start_in(ns, local, &account(user), &uri(peer), wav)
}

/// `caller` calls `callee`, who answers.
fn call(caller: &mut Baresip, callee: &mut Baresip, callee_user: &str) {
    caller.dial(&uri(callee_user));
    callee.accept();
    caller.expect("Call established");
    callee.expect("Call established");
}

/// After `secs` of talk, each phone received at least 90% of the packets the other had
/// sent a moment before.
fn both_hear(a: &mut Baresip, b: &mut Baresip, secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
    let b_before = b.rtp();
    let a_now = a.rtp();
    let b_after = b.rtp();
    let heard = |received: u64, sent: u64| sent >= 40 * secs && received * 10 >= sent * 9;
    let report = |x: Rtp, y: Rtp| format!("a {x:?}, b {y:?}");
    assert!(
        heard(a_now.received, b_before.sent),
        "a heard b: {}",
        report(a_now, b_before)
    );
    assert!(
        heard(b_after.received, a_now.sent),
        "b heard a: {}",
        report(a_now, b_after)
    );
}

fn hang_up(a: &mut Baresip, b: &mut Baresip) {
    a.send("/hangup");
    b.expect("session closed");
}

/// The whole story behind NATs with this mapping.
fn phones_behind_nat(mapping: Mapping) {
    let mut net = Net::new();
    let lan1 = net.natted_lan(1, mapping, NAT_UDP_TIMEOUT);
    let lan2 = net.natted_lan(2, mapping, NAT_UDP_TIMEOUT);
    let outside = net.public_host(50);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_in(&net.internet(), dir.path(), &config());
    let wav = dir.path().join("tone.wav");
    std::fs::write(&wav, tone_wav(120)).expect("write the tone");
    let mut alice = phone(&lan1, "10.0.1.2", "alice", "bob", &wav);
    let mut bob = phone(&lan2, "10.0.2.2", "bob", "alice", &wav);
    let mut carol = phone(&outside, "203.0.113.50", "carol", "alice", &wav);

    // Behind two different NATs (their LANs cannot reach each other: only the relay).
    // The phones stayed idle past the NAT's UDP timeout: keepalives kept bob reachable.
    std::thread::sleep(Duration::from_secs(u64::from(NAT_UDP_TIMEOUT) + 2));
    call(&mut alice, &mut bob, "bob");
    both_hear(&mut alice, &mut bob, 3);
    // What each got names the relay, and no ICE candidate leads around it.
    for phone in [&alice, &bob] {
        let seen = phone.output();
        assert!(
            seen.contains("c=IN IP4 203.0.113.1\r\n") || seen.contains("c=IN IP4 203.0.113.1\n"),
            "{seen}"
        );
    }
    // Hold and resume keep audio.
    alice.send("/hold");
    std::thread::sleep(Duration::from_secs(1));
    alice.send("/resume");
    bob.expect("re-INVITE");
    both_hear(&mut alice, &mut bob, 2);
    hang_up(&mut alice, &mut bob);
    // And the other way round, bob behind his NAT calling alice behind hers.
    call(&mut bob, &mut alice, "alice");
    both_hear(&mut bob, &mut alice, 2);
    hang_up(&mut bob, &mut alice);

    // One outside, in both directions.
    call(&mut carol, &mut alice, "alice");
    both_hear(&mut carol, &mut alice, 2);
    hang_up(&mut carol, &mut alice);
    call(&mut bob, &mut carol, "carol");
    both_hear(&mut bob, &mut carol, 2);
    hang_up(&mut bob, &mut carol);

    // A dead phone's binding goes once it stops answering keepalives.
    drop(bob);
    std::thread::sleep(Duration::from_secs(9));
    alice.dial(&uri("bob"));
    alice.expect("404 Not Found");
    drop(server);
}

#[test]
fn phones_behind_port_preserving_nats_hear_each_other() {
    phones_behind_nat(Mapping::PortPreserving);
}

#[test]
fn phones_behind_random_port_nats_hear_each_other() {
    phones_behind_nat(Mapping::Random);
}

#[test]
fn phones_behind_nats_hear_each_other_through_the_kernel() {
    let mut net = Net::new();
    let lan1 = net.natted_lan(1, Mapping::Random, 30);
    let lan2 = net.natted_lan(2, Mapping::Random, 30);
    let dir = tempfile::tempdir().expect("tempdir");
    let api = format!("{SERVER_IP}:8080");
    let toml = format!(
        "[server]\nlisten = [\"udp:{SERVER_IP}:5060\"]\n[api]\nlisten = \"{api}\"\n\
         [relay]\nkernel_forwarding = true\n"
    );
    let server = Server::start_in(&net.internet(), dir.path(), &toml);
    assert!(
        server.log().contains("forwarded in the kernel"),
        "{}",
        server.log()
    );
    let wav = dir.path().join("tone.wav");
    std::fs::write(&wav, tone_wav(60)).expect("write the tone");
    let mut alice = phone(&lan1, "10.0.1.2", "alice", "bob", &wav);
    let mut bob = phone(&lan2, "10.0.2.2", "bob", "alice", &wav);
    call(&mut alice, &mut bob, "bob");
    both_hear(&mut alice, &mut bob, 3);
    // The relay's counters, read from a thread in the server's namespace.
    let token = std::fs::read_to_string(dir.path().join("ferrosip.token")).expect("token");
    let ns = std::fs::File::open(format!("/run/netns/{}", net.internet())).expect("netns");
    let body = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns moves this thread alone.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        ureq::get(&format!("http://{api}/api/relay"))
            .set("Authorization", &format!("Bearer {}", token.trim()))
            .call()
            .expect("API")
            .into_string()
            .expect("text")
    })
    .join()
    .expect("thread");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let (kernel, all) = (json["kernel_packets"].as_u64(), json["packets"].as_u64());
    assert!(
        kernel
            .zip(all)
            .is_some_and(|(k, a)| a >= 200 && k * 10 >= a * 8),
        "most packets through the kernel: {json}"
    );
    hang_up(&mut alice, &mut bob);
    drop(server);
}

#[test]
fn a_stun_client_behind_nat_learns_the_public_address() {
    let mut net = Net::new();
    let lan = net.natted_lan(1, Mapping::Random, 30);
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = Server::start_in(&net.internet(), dir.path(), &config());
    // Debian's `stun` client, on the SIP port and on the STUN port.
    for port in ["5060", "3478"] {
        let out = Command::new("ip")
            .args(["netns", "exec", &lan, "timeout", "10", "stun"])
            .arg(format!("{SERVER_IP}:{port}"))
            .args(["-v", "-p", "40000"])
            .output()
            .expect("stun runs (scripts/test.sh installs stun-client)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let mapped = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("MappedAddress = "))
            .unwrap_or_else(|| panic!("no MappedAddress from port {port}:\n{text}"));
        assert!(
            mapped.starts_with("203.0.113.11:"),
            "the NAT's public address: {mapped}"
        );
    }
}
