//! Any datagrams at a WebRTC leg's port, from the browser's address or a stranger's: the
//! leg never panics, and nothing it has not keyed comes out as media.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sdp::{Fingerprint, IceCredentials, Setup};
use webrtc::{Identity, Leg, Received, Remote};

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| Identity::generate().expect("identity"))
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let local: SocketAddr = "192.0.2.1:40000".parse().expect("addr");
    let mut leg = Leg::new(identity(), local, now);
    leg.set_remote(
        now,
        Remote {
            ice: IceCredentials {
                ufrag: "brws".into(),
                pwd: "browserpasswordbrowserpassword".into(),
            },
            fingerprint: Fingerprint {
                hash: "sha-256".into(),
                digest: vec![0; 32],
            },
            setup: Some(Setup::Active),
            mid: None,
        },
        true,
    );
    let sources: [SocketAddr; 2] = [
        "198.51.100.7:51000".parse().expect("addr"),
        "[2001:db8::7]:51000".parse().expect("addr"),
    ];
    // Datagrams: a length byte, then that many bytes.
    let mut rest = data;
    let mut i = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (packet, tail) = tail.split_at(n);
        rest = tail;
        now += Duration::from_millis(20);
        let got = leg.receive(now, sources[i % 2], packet);
        assert!(!matches!(got, Received::Rtp(_) | Received::Rtcp(_)), "media from no handshake");
        leg.handle_timeout(now);
        while leg.poll_transmit().is_some() {}
        let _ = leg.protect(now, packet);
        i += 1;
    }
});
