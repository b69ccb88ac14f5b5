//! Any text as a URI and as the values of address, Via and auth headers (digest credentials
//! and their nonce checked as the server would): no panic, and a parsed URI gives back
//! exactly its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_message::header::{AuthHeader, CSeq, Contact, NameAddr, Via};
use sip_message::Uri;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(u) = Uri::parse(s) {
        assert_eq!(u.as_str(), s);
        if let Some(sip) = u.as_sip() {
            let _ = (sip.user_decoded(), sip.transport(), sip.params.iter().count(), sip.host.to_string());
        }
    }
    if let Ok(a) = NameAddr::parse(s) {
        let _ = (a.display_name(), a.tag(), a.q(), a.expires());
    }
    let _ = Contact::parse(s);
    if let Ok(v) = Via::parse(s) {
        let _ = (v.branch(), v.received(), v.rport(), v.maddr(), v.ttl());
    }
    if let Ok(a) = AuthHeader::parse(s) {
        let _ = a.params().count();
        let _ = a.get("nonce");
        if let Ok(c) = auth::Credentials::from_header(&a) {
            let verifier = auth::Authenticator::new(b"fuzz", 300, 32);
            let verdict = verifier.verify(&c, "REGISTER", Some("00"), 0, 1000);
            assert_ne!(verdict, auth::Verdict::Authorized, "a forged nonce never passes");
        }
    }
    let _ = CSeq::parse(s);
});
