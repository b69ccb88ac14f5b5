//! The 200 OK of an accepted REGISTER.

use std::net::SocketAddr;

use bytes::Bytes;
use sip_message::{HeaderName, Message, ResponseBuilder};

use crate::register::Registered;

/// The 200 OK listing every binding with its remaining time (and q when not 1.0); Path is
/// echoed when the request supports it (RFC 3327). The top Via names `src`, where the
/// REGISTER came from (`received`, `rport`).
pub fn ok_response(
    req: &Message,
    src: SocketAddr,
    reg: &Registered,
    now: u64,
    to_tag: &str,
) -> Bytes {
    let mut b = ResponseBuilder::for_request_from(req, src, 200, "OK", Some(to_tag));
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
