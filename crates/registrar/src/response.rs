//! The 200 OK of an accepted REGISTER.

use std::net::SocketAddr;

use bytes::Bytes;
use sip_message::{push_decimal, HeaderName, Message, ResponseBuilder};

use crate::register::Registered;

/// The 200 OK listing every binding with its remaining time (and q when not 1.0, and its
/// `+sip.instance` and `reg-id`, RFC 5626 §6); Path is echoed when the request supports it
/// (RFC 3327). A client that asks for outbound with an instance and a reg-id is told it has
/// it with `Require: outbound` (RFC 5626 §6) when its flow is kept: by us, when it came
/// over a connection without Path (`flow_timer`: with the seconds between its keep-alives,
/// §5.4), or by the edge proxy whose Path entry is marked `ob`. The top Via names `src`,
/// where the REGISTER came from (`received`, `rport`).
pub fn ok_response(
    req: &Message,
    src: SocketAddr,
    reg: &Registered,
    now: u64,
    to_tag: &str,
    flow_timer: Option<u32>,
) -> Bytes {
    let mut b = ResponseBuilder::for_request_from(req, src, 200, "OK", Some(to_tag));
    // One Contact value written in place per binding (every REGISTER's 200: no formatter).
    let mut contact = String::with_capacity(128);
    for binding in reg.bindings.iter() {
        contact.clear();
        contact.push('<');
        contact.push_str(&binding.contact);
        contact.push_str(">;expires=");
        push_decimal(&mut contact, binding.remaining(now));
        if binding.q != 1000 {
            contact.push_str(";q=");
            push_decimal(&mut contact, u64::from(binding.q / 1000));
            contact.push('.');
            let thousandths = binding.q % 1000;
            for digit in [thousandths / 100, thousandths / 10 % 10, thousandths % 10] {
                contact.push(char::from(b'0' + digit as u8));
            }
        }
        if let Some(instance) = &binding.instance {
            let quoted = instance.replace('\\', "\\\\").replace('"', "\\\"");
            contact.push_str(";+sip.instance=\"");
            contact.push_str(&quoted);
            contact.push('"');
        }
        if let Some(id) = binding.reg_id {
            contact.push_str(";reg-id=");
            push_decimal(&mut contact, u64::from(id));
        }
        b = b.header("Contact", &contact);
    }
    if claims_outbound(req, reg) {
        match (req.header(HeaderName::Path), flow_timer) {
            (None, Some(seconds)) => {
                b = b
                    .header("Require", "outbound")
                    .header("Flow-Timer", &seconds.to_string());
            }
            (Some(_), _) if first_path_ob(req) => b = b.header("Require", "outbound"),
            _ => {}
        }
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

/// True when the first Path entry (the edge proxy next to the client) has the `ob` URI
/// parameter: that proxy keeps the flow (RFC 5626 §5.1).
fn first_path_ob(req: &Message) -> bool {
    let first = req
        .headers_named(HeaderName::Path)
        .flat_map(|h| h.values().map(str::to_owned).collect::<Vec<_>>())
        .next();
    first.is_some_and(|v| {
        sip_message::header::NameAddr::parse_bracketed(&v)
            .ok()
            .and_then(|na| na.uri.as_sip().map(|s| s.params.get("ob").is_some()))
            .unwrap_or(false)
    })
}

/// True when a REGISTER asks for outbound (RFC 5626 §6): `Supported: outbound` and a
/// Contact with an instance and a reg-id.
fn claims_outbound(req: &Message, reg: &Registered) -> bool {
    let flows = reg
        .bindings
        .iter()
        .any(|b| b.reg_id.is_some() && b.instance.is_some());
    let supported = || {
        req.tokens(HeaderName::Supported)
            .filter_map(Result::ok)
            .any(|t| t.eq_ignore_ascii_case("outbound"))
    };
    let asked = || {
        req.contacts().filter_map(Result::ok).any(|c| match c {
            sip_message::header::Contact::Address(a) => {
                a.params.get("reg-id").is_some() && a.params.find("+sip.instance").is_some()
            }
            sip_message::header::Contact::Star => false,
        })
    };
    flows && supported() && asked()
}
