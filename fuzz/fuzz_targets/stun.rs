//! Any datagram: the STUN server never panics, and what it answers carries the request's
//! transaction and parses back as a response with a valid FINGERPRINT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = "192.0.2.1:5060".parse().expect("address");
    if let Some(answer) = stun::answer(data, source) {
        assert_eq!(answer[4..20], data[4..20]);
        assert!(matches!(
            stun::parse(&answer),
            Err(stun::ParseError::NotBinding)
        ));
    }
});
