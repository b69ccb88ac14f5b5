//! The 200 OK of an accepted REGISTER.

use std::net::SocketAddr;

use bytes::Bytes;
use sip_message::{HeaderName, Message, ResponseBuilder};

use crate::register::Registered;

/// The 200 OK listing every binding with its remaining time (and q when not 1.0, and its
/// `+sip.instance` and `reg-id`, RFC 5626 §6); Path is echoed when the request supports it
/// (RFC 3327), and `Require: outbound` tells a client that asked for it that its flows are
/// kept (RFC 5626 §6), with the seconds between its keep-alives (`flow_timer`). The top Via names `src`, where the REGISTER came from (`received`,
/// `rport`).
pub fn ok_response(
    req: &Message,
    src: SocketAddr,
    reg: &Registered,
    now: u64,
    to_tag: &str,
    flow_timer: u32,
) -> Bytes {
    let mut b = ResponseBuilder::for_request_from(req, src, 200, "OK", Some(to_tag));
    for binding in &reg.bindings {
        let q = match binding.q {
            1000 => String::new(),
            q => format!(";q={}.{:03}", q / 1000, q % 1000),
        };
        let mut contact = format!(
            "<{}>;expires={}{q}",
            binding.contact,
            binding.remaining(now)
        );
        if let Some(instance) = &binding.instance {
            let quoted = instance.replace('\\', "\\\\").replace('"', "\\\"");
            contact.push_str(&format!(";+sip.instance=\"{quoted}\""));
        }
        if let Some(id) = binding.reg_id {
            contact.push_str(&format!(";reg-id={id}"));
        }
        b = b.header("Contact", &contact);
    }
    let supports = |option: &str| {
        req.tokens(HeaderName::Supported)
            .filter_map(Result::ok)
            .any(|t| t.eq_ignore_ascii_case(option))
    };
    let with_reg_id = || {
        req.contacts().filter_map(Result::ok).any(|c| match c {
            sip_message::header::Contact::Address(a) => a.params.get("reg-id").is_some(),
            sip_message::header::Contact::Star => false,
        })
    };
    let outbound = reg.bindings.iter().any(|b| b.reg_id.is_some());
    if outbound && supports("outbound") && with_reg_id() {
        b = b
            .header("Require", "outbound")
            .header("Flow-Timer", &flow_timer.to_string());
    }
    if supports("path") {
        for p in req.headers_named(HeaderName::Path) {
            b = b.header("Path", &p.value_unfolded());
        }
    }
    b.build()
}
