//! The 200 OK of an accepted REGISTER.

use bytes::Bytes;
use sip_message::{HeaderName, Message, ResponseBuilder};

use crate::register::Registered;

/// The 200 OK listing every binding with its remaining time (and q when not 1.0); Path is
/// echoed when the request supports it (RFC 3327).
pub fn ok_response(req: &Message, reg: &Registered, now: u64, to_tag: &str) -> Bytes {
    let mut b = ResponseBuilder::for_request(req, 200, "OK", Some(to_tag));
    for binding in &reg.bindings {
        let q = match binding.q {
            1000 => String::new(),
            q => format!(";q={}.{:03}", q / 1000, q % 1000),
        };
        b = b.header(
            "Contact",
            &format!(
                "<{}>;expires={}{q}",
                binding.contact,
                binding.remaining(now)
            ),
        );
    }
    if req
        .tokens(HeaderName::Supported)
        .filter_map(Result::ok)
        .any(|t| t.eq_ignore_ascii_case("path"))
    {
        for p in req.headers_named(HeaderName::Path) {
            b = b.header("Path", &p.value_unfolded());
        }
    }
    b.build()
}
