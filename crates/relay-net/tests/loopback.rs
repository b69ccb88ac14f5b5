//! Real packets through the relay on loopback: two "phones" (UDP sockets) talk through it
//! both ways; a third address is not heard once the phones are latched; a deleted session
//! relays nothing.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use relay::SessionId;
use relay_net::{MediaRelay, RelayConfig};

fn phone() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

/// Packets `from` sends to `to`, and those `at` receives, with where they came from.
fn exchange(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, n: u16) -> Vec<SocketAddr> {
    for seq in 0..n {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 168]);
        from.send_to(&p, to).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok((_, src)) = at.recv_from(&mut buf) {
        got.push(src);
        if got.len() == usize::from(n) {
            break;
        }
    }
    got
}

#[test]
fn two_phones_hear_each_other_and_no_one_else() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let base = 41000 + (std::process::id() % 400) as u16 * 20;
    let relay = MediaRelay::start(&RelayConfig {
        bind: "127.0.0.1".parse().expect("ip"),
        ports: base..=base + 19,
        timeout: Duration::from_secs(60),
        threads: 2,
    })
    .expect("relay");
    let (a, b, intruder) = (phone(), phone(), phone());
    let id = SessionId {
        call_id: "loopback".into(),
        from_tag: "a".into(),
    };
    let media = |s: &UdpSocket| vec![Some(s.local_addr().expect("addr"))];
    let ports = rt
        .block_on(relay.offer(&id, media(&a), None))
        .expect("offered")[0]
        .expect("stream");
    rt.block_on(relay.answer(&id, media(&b), None))
        .expect("answered");
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    // a → relay (the port in the answer a got) → b, from the port b sends to.
    let heard = exchange(&a, at(ports.for_offerer), &b, 50);
    assert!(heard.len() >= 45, "b heard {} of 50", heard.len());
    assert!(heard.iter().all(|&s| s == at(ports.for_answerer)));
    let heard = exchange(&b, at(ports.for_answerer), &a, 50);
    assert!(heard.len() >= 45, "a heard {} of 50", heard.len());
    assert!(heard.iter().all(|&s| s == at(ports.for_offerer)));
    // Latched: another address is dropped.
    assert!(exchange(&intruder, at(ports.for_offerer), &b, 5).is_empty());
    let (offerer, answerer) = rt.block_on(relay.stats(&id)).expect("stats")[0].expect("stream");
    assert!(
        offerer.packets >= 45 && answerer.packets >= 45,
        "{offerer:?} {answerer:?}"
    );
    assert_eq!(offerer.dropped, 5, "the intruder's");
    assert!(rt.block_on(relay.delete(&id)));
    assert!(
        exchange(&a, at(ports.for_offerer), &b, 5).is_empty(),
        "deleted"
    );
}

#[test]
fn a_port_another_program_holds_is_skipped() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let base = 45000 + (std::process::id() % 400) as u16 * 20;
    // The first pair the relay would hand out is taken (its RTCP port).
    let _squatter = UdpSocket::bind(("127.0.0.1", base + 1)).expect("squat");
    let relay = MediaRelay::start(&RelayConfig {
        bind: "127.0.0.1".parse().expect("ip"),
        ports: base..=base + 7,
        timeout: Duration::from_secs(60),
        threads: 1,
    })
    .expect("relay");
    let id = SessionId {
        call_id: "squat".into(),
        from_tag: "a".into(),
    };
    let media = vec![Some("127.0.0.1:4000".parse().expect("addr"))];
    let ports = rt.block_on(relay.offer(&id, media, None)).expect("offered")[0].expect("stream");
    for p in [ports.for_offerer, ports.for_answerer] {
        assert!(p > base + 1, "{p} is not the squatted pair");
    }
}
