//! Any datagram on an ng control socket: the parsers never panic, and a request they read
//! encodes to one that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ng::Request::parse(data) {
        if let ng::Command::Media(..) = &r.command {
            let again = ng::Request::parse(&r.encode()).expect("our encoding reads back");
            assert_eq!(again.cookie, r.cookie);
        }
    }
    let _ = ng::Reply::parse(data);
});
