//! Property: no packet, port or source makes the relay panic, and a packet is relayed only
//! from the address its side latched to.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use relay::{PortPool, Relay, SessionId};

proptest! {
    #[test]
    fn any_packet_from_anywhere(
        packets in proptest::collection::vec(
            (0u16..8, any::<[u8; 4]>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)),
            1..60,
        ),
    ) {
        let now = Instant::now();
        let mut r = Relay::new(PortPool::new(30000..=30007), Duration::from_secs(60));
        let id = SessionId { call_id: "c".into(), from_tag: "a".into() };
        let offerer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let answerer: SocketAddr = "198.51.100.2:5000".parse().unwrap();
        r.offer(now, &id, &[Some(offerer)], None).expect("ports");
        r.answer(now, &id, &[Some(answerer)], None, "b", false).expect("session");
        let mut latched = std::collections::HashMap::new();
        for (port, ip, sport, data) in packets {
            let port = 30000 + port;
            let src = SocketAddr::from((ip, sport));
            if let Ok(_f) = r.on_packet(now, port, src, &data) {
                let first = *latched.entry(port).or_insert(src);
                prop_assert_eq!(first, src, "strict source");
            }
        }
    }
}
