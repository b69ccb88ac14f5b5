//! Property tests: no datagram makes the server panic, and every request it answers gets a
//! response that parses back with a valid FINGERPRINT and the same transaction.

use proptest::prelude::*;
use std::net::SocketAddr;

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = stun::answer(&bytes, "192.0.2.1:5060".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn answers_carry_the_transaction_and_a_valid_fingerprint(
        id in any::<[u8; 12]>(),
        ip in any::<[u8; 16]>(),
        port in any::<u16>(),
        attrs in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..12)), 0..4),
    ) {
        let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        req.extend_from_slice(&id);
        for (kind, value) in &attrs {
            if *kind == 0x8028 { continue; }
            req.extend_from_slice(&kind.to_be_bytes());
            req.extend_from_slice(&(value.len() as u16).to_be_bytes());
            req.extend_from_slice(value);
            req.resize(req.len().next_multiple_of(4), 0);
        }
        let len = (req.len() - 20) as u16;
        req[2..4].copy_from_slice(&len.to_be_bytes());
        let src = SocketAddr::new(std::net::Ipv6Addr::from(ip).into(), port);
        if let Some(resp) = stun::answer(&req, src) {
            prop_assert_eq!(&resp[4..20], &req[4..20]);
            prop_assert_eq!(stun::parse(&resp), Err(stun::ParseError::NotBinding));
        }
    }
}
