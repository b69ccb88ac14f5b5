//! The server against RFC 5769's test vectors and hand-made requests.

use std::net::SocketAddr;

use super::*;

/// RFC 5769 §2.1: a Binding request of an ICE agent (SOFTWARE, PRIORITY, ICE-CONTROLLED,
/// USERNAME, MESSAGE-INTEGRITY, FINGERPRINT).
const SAMPLE_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];

/// RFC 5769 §2.2 and §2.3: the XOR-MAPPED-ADDRESS attributes of the sample responses.
const XOR_V4: [u8; 12] = [
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
];
const XOR_V6: [u8; 24] = [
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79,
    0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
];

/// The transaction of the RFC 5769 samples: cookie and id.
fn sample_id() -> [u8; 16] {
    SAMPLE_REQUEST[4..20].try_into().expect("16 bytes")
}

/// A plain RFC 5389 Binding request with transaction id bytes `n`.
fn request(n: u8) -> Vec<u8> {
    let mut r = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    r.extend_from_slice(&[n; 12]);
    r
}

/// The attributes of a message, as (type, value).
fn attributes(m: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 20;
    while at < m.len() {
        let kind = u16::from_be_bytes([m[at], m[at + 1]]);
        let len = usize::from(u16::from_be_bytes([m[at + 2], m[at + 3]]));
        out.push((kind, m[at + 4..at + 4 + len].to_vec()));
        at += 4 + len.next_multiple_of(4);
    }
    out
}

#[test]
fn the_rfc_sample_request_parses_and_its_fingerprint_checks() {
    let parsed = parse(&SAMPLE_REQUEST).expect("sample");
    assert_eq!(
        parsed,
        Binding::Request {
            id: sample_id(),
            classic: false,
            unknown: vec![0x0024],
            change: false,
        },
        "PRIORITY (ICE) is comprehension-required and not ours"
    );
    let mut bad = SAMPLE_REQUEST;
    bad[30] ^= 1;
    assert_eq!(parse(&bad), Err(ParseError::Fingerprint));
}

#[test]
fn a_request_needing_what_we_do_not_understand_gets_420() {
    let src: SocketAddr = "192.0.2.1:32853".parse().expect("addr");
    let r = answer(&SAMPLE_REQUEST, src).expect("answered");
    assert_eq!(&r[..2], &[0x01, 0x11], "Binding error response");
    assert_eq!(&r[4..20], &sample_id());
    let attrs = attributes(&r);
    assert_eq!(attrs[0].0, 0x0009);
    assert_eq!(&attrs[0].1[2..4], &[4, 20], "420");
    assert_eq!(attrs[1], (0x000A, vec![0x00, 0x24]));
    assert_eq!(parse_response_fingerprint(&r), Ok(()));
}

/// Checks the FINGERPRINT of a message we wrote.
fn parse_response_fingerprint(m: &[u8]) -> Result<(), ParseError> {
    // A response parses as "not a Binding request" only after its attributes checked out.
    match parse(m) {
        Err(ParseError::NotBinding) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Err(ParseError::NotBinding),
    }
}

#[test]
fn the_mapped_address_is_written_as_the_rfc_samples_write_it() {
    // The samples' transaction and mapped addresses (RFC 5769 §2.2, §2.3).
    let mut req = request(0);
    req[4..20].copy_from_slice(&sample_id());
    let v4 = answer(&req, "192.0.2.1:32853".parse().expect("v4")).expect("answer");
    assert_eq!(&v4[..2], &[0x01, 0x01]);
    assert_eq!(&v4[20..32], &XOR_V4);
    let v6 = "[2001:db8:1234:5678:11:2233:4455:6677]:32853";
    let v6 = answer(&req, v6.parse().expect("v6")).expect("answer");
    assert_eq!(&v6[20..44], &XOR_V6);
    for m in [&v4, &v6] {
        let attrs = attributes(m);
        let kinds: Vec<u16> = attrs.iter().map(|a| a.0).collect();
        assert_eq!(kinds, [0x0020, 0x0001, 0x8028]);
        assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len() - 20);
        assert_eq!(parse_response_fingerprint(m), Ok(()));
    }
    // MAPPED-ADDRESS in clear.
    assert_eq!(attributes(&v4)[1].1, [0, 1, 0x80, 0x55, 192, 0, 2, 1]);
}

#[test]
fn an_ipv4_peer_on_an_ipv6_socket_is_told_its_ipv4_address() {
    let mapped: SocketAddr = "[::ffff:192.0.2.1]:32853".parse().expect("addr");
    let mut req = request(0);
    req[4..20].copy_from_slice(&sample_id());
    assert_eq!(&answer(&req, mapped).expect("answer")[20..32], &XOR_V4);
}

#[test]
fn a_classic_request_gets_mapped_address_and_a_change_request_nothing() {
    let mut req = vec![0x00, 0x01, 0x00, 0x00];
    req.extend_from_slice(&[7; 16]);
    let src: SocketAddr = "198.51.100.7:4000".parse().expect("addr");
    let r = answer(&req, src).expect("answered");
    assert_eq!(&r[4..20], &[7; 16]);
    assert_eq!(
        attributes(&r),
        [(0x0001, vec![0, 1, 0x0f, 0xa0, 198, 51, 100, 7])]
    );
    // CHANGE-REQUEST with "change IP" or "change port": we have no other address.
    for flags in [0x02, 0x04, 0x06] {
        let mut change = req.clone();
        change[3] = 8;
        change.extend_from_slice(&[0x00, 0x03, 0x00, 0x04, 0, 0, 0, flags]);
        assert_eq!(answer(&change, src), None, "{flags}");
    }
    let mut none = req.clone();
    none[3] = 8;
    none.extend_from_slice(&[0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0]);
    assert!(answer(&none, src).is_some(), "no change asked");
}

#[test]
fn indications_responses_and_junk_get_nothing() {
    let src: SocketAddr = "192.0.2.1:1".parse().expect("addr");
    let mut indication = request(1);
    indication[1] = 0x11;
    assert_eq!(parse(&indication), Ok(Binding::Indication));
    assert_eq!(answer(&indication, src), None);
    let response = answer(&request(2), src).expect("answer");
    assert_eq!(answer(&response, src), None, "a response is not answered");
    let mut long = request(3);
    long[3] = 4;
    assert_eq!(parse(&long), Err(ParseError::Length));
    let mut overrun = request(3);
    overrun[3] = 4;
    overrun.extend_from_slice(&[0x80, 0x22, 0x00, 0x09]);
    assert_eq!(parse(&overrun), Err(ParseError::Attribute));
    assert!(!is_stun(b"OPTIONS sip:x SIP/2.0\r\n"));
    assert!(!is_stun(b"\r\n\r\n"));
    assert!(is_stun(&request(4)));
}

#[test]
fn one_address_gets_a_bounded_number_of_answers_a_second() {
    let t0 = std::time::Instant::now();
    let mut limit = AnswerLimit::new(t0);
    let victim: std::net::IpAddr = "192.0.2.9".parse().expect("ip");
    let allowed = (0..PER_SECOND + 50)
        .filter(|_| limit.allow(victim, t0))
        .count();
    assert_eq!(allowed, PER_SECOND as usize);
    // Others are not held back by it; the next second, the victim's count starts again.
    assert!(limit.allow("198.51.100.4".parse().expect("ip"), t0));
    assert!(!limit.allow(victim, t0 + std::time::Duration::from_millis(999)));
    assert!(limit.allow(victim, t0 + std::time::Duration::from_secs(1)));
}
