//! The in-process relay with real phones on loopback, bridging the address families: a
//! baresip phone on IPv4 calls one on IPv6 through ferrosip and is called back, the default
//! script sending such calls' media through the relay (bound to `::` by default), which
//! tells each phone its address in the phone's own family; audio flows both ways.

mod support;

use std::net::SocketAddr;

use support::baresip::{call_and_talk, hang_up_having_heard, Baresip};
use support::phone::Account;
use support::{free_port, Server};

#[test]
fn an_ipv4_phone_and_an_ipv6_phone_call_each_other_and_hear_each_other_through_the_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = 52000 + (std::process::id() % 400) as u16 * 20;
    let config = dir.path().join("ferrosip.toml");
    // Loopback addresses are never chosen to announce on their own.
    std::fs::write(
        &config,
        format!(
            "[relay]\nannounce = \"127.0.0.1\"\nannounce6 = \"::1\"\nports = \"{base}-{}\"\n",
            base + 19
        ),
    )
    .expect("write");
    let port = free_port();
    let listens = [format!("udp:127.0.0.1:{port}"), format!("udp:[::1]:{port}")];
    let config = config.to_str().expect("utf-8 path");
    let server = Server::start_listens(dir.path(), port, &listens, &["--config", config]);
    let account = |user, proxy: SocketAddr| Account {
        user,
        domain: "127.0.0.1",
        password: "unused",
        proxy,
        transport: "udp",
    };
    let v6: SocketAddr = format!("[::1]:{}", server.port).parse().expect("address");
    let mut alice = Baresip::start(&account("alice", server.addr()), "sip:bob@127.0.0.1");
    let mut bob = Baresip::start(&account("bob", v6), "sip:alice@127.0.0.1");
    let counts = call_and_talk(&mut alice, &mut bob, "sip:bob@127.0.0.1", 3);
    // Each was told the relay (one of its ports) in its own family.
    let relay_sdp = |seen: &str, family: &str| {
        seen.split("v=0").any(|sdp| {
            (base..base + 20).any(|p| sdp.contains(&format!("m=audio {p} ")))
                && sdp.contains(family)
        })
    };
    assert!(
        relay_sdp(&bob.output(), "c=IN IP6 ::1"),
        "bob (IPv6) got the relay's IPv6 address"
    );
    assert!(
        relay_sdp(&alice.output(), "c=IN IP4 127.0.0.1"),
        "alice got the relay's IPv4 address"
    );
    hang_up_having_heard(&mut alice, &mut bob, counts);
    // And back: bob on IPv6 calls alice on IPv4.
    let counts = call_and_talk(&mut bob, &mut alice, "sip:alice@127.0.0.1", 3);
    hang_up_having_heard(&mut bob, &mut alice, counts);
}
