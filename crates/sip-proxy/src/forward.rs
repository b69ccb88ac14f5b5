//! Building a forwarded request (RFC 3261 §16.6) as splices over the received one.

use bytes::Bytes;
use sip_message::{Editor, HeaderName, Message};

/// How to change a request on its way to one target.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Forward<'a> {
    /// New Request-URI (the target from a location lookup).
    pub(crate) request_uri: Option<&'a str>,
    /// Remove this many top Route values (they named us: one, or two of a double
    /// Record-Route).
    pub(crate) pop_routes: usize,
    /// Remove every Route.
    pub(crate) drop_routes: bool,
    /// Remove this header field (the last Route, moved to the Request-URI by strict routing).
    pub(crate) remove: Option<usize>,
    /// Route values to put on top (a binding's Path).
    pub(crate) push_routes: &'a [String],
    /// Our Record-Route value (for the interface the request leaves by).
    pub(crate) record_route: Option<&'a str>,
    /// A second one below it, for the interface the request came in on when that differs.
    pub(crate) record_route_in: Option<&'a str>,
    /// Parameters for the received request's top Via (RFC 3581): `received`, `rport`.
    pub(crate) received: Option<&'a str>,
    pub(crate) rport: Option<&'a str>,
    /// Our Via value.
    pub(crate) via: &'a str,
    /// Header fields to add (`Name: value`) and names of fields to remove (the script's).
    pub(crate) append: &'a [String],
    pub(crate) remove_named: &'a [String],
    /// Max-Forwards to write when the request has none (70 otherwise).
    pub(crate) max_forwards: Option<u8>,
    /// The host and port the first Contact gets (`fix_nated_contact()`).
    pub(crate) fix_contact: Option<std::net::SocketAddr>,
    /// A new body (the SDP the media relay rewrote), its Content-Type kept.
    pub(crate) body: Option<&'a Bytes>,
    /// The media goes through the relay (`rtp_relay()`): our Record-Route says so.
    pub(crate) relay_media: bool,
}

/// Writes the request for one branch.
pub(crate) fn forward_request(msg: &Message, f: &Forward<'_>) -> Bytes {
    let mut e = msg.edit();
    if let Some(uri) = f.request_uri {
        e.set_request_uri(uri);
    }
    if f.drop_routes {
        e.remove_headers(HeaderName::Route);
    } else if f.pop_routes > 0 {
        e.remove_first_values(HeaderName::Route, f.pop_routes);
    }
    if let Some(i) = f.remove {
        e.remove_header(i);
    }
    for r in f.push_routes {
        e.push_front(HeaderName::Route, r);
    }
    match msg.header(HeaderName::MaxForwards) {
        Some(h) => {
            let left = msg
                .max_forwards()
                .ok()
                .flatten()
                .unwrap_or(1)
                .saturating_sub(1);
            e.set_header_value(h.index, &left.to_string());
        }
        None => {
            let n = f.max_forwards.unwrap_or(70).to_string();
            e.add_header("Max-Forwards", &n);
        }
    }
    header_edits(msg, &mut e, f.remove_named, f.append);
    if let Some((old, new)) = f.fix_contact.and_then(|a| fixed_contact(msg, a)) {
        e.replace(old, &new);
    }
    // Both go above the received Record-Routes, in the order inserted: the outbound
    // entry (the callee's first hop) on top, the inbound one below it.
    if let Some(rr) = f.record_route {
        e.push_front(HeaderName::RecordRoute, rr);
    }
    if let Some(rr) = f.record_route_in {
        e.push_front(HeaderName::RecordRoute, rr);
    }
    if let Some(ip) = f.received {
        e.set_top_via_param("received", Some(ip));
    }
    if let Some(port) = f.rport {
        e.set_top_via_param("rport", Some(port));
    }
    if let Some(body) = f.body {
        e.replace_body(body.clone());
    }
    e.push_front(HeaderName::Via, f.via);
    e.finish()
}

/// Removes the fields named in `remove` and appends the `Name: value` lines of `append`.
pub(crate) fn header_edits(
    msg: &Message,
    e: &mut Editor<'_>,
    remove: &[String],
    append: &[String],
) {
    for name in remove {
        let found: Vec<usize> = msg
            .headers()
            .filter(|h| h.is_named(name))
            .map(|h| h.index)
            .collect();
        for i in found {
            e.remove_header(i);
        }
    }
    for line in append {
        if let Some((name, value)) = line.split_once(": ") {
            e.add_header(name, value);
        }
    }
}

/// Applies a reply route's header changes to a response.
pub(crate) fn edit_response(resp: &Message, remove: &[String], append: &[String]) -> Bytes {
    let mut e = resp.edit();
    header_edits(resp, &mut e, remove, append);
    e.finish()
}

/// Removes our top Via from a response to pass it upstream.
pub(crate) fn strip_top_via(resp: &Message) -> Bytes {
    let mut e = resp.edit();
    e.remove_first_value(HeaderName::Via);
    e.finish()
}

/// 64-bit FNV-1a, for branch ids that must be stable (stateless forwarding) or short.
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A provisional or 2xx response from a phone behind NAT (its Contact a private address that
/// is not where the response came from, `src`) with that source in its Contact, as
/// `fix_nated_contact()` does for requests: the other party's in-dialog requests (ACK, BYE,
/// a re-INVITE) then reach it through its NAT. Anything else comes back as it was. Used on
/// the 2xx of target refreshes in our dialogs (those of an initial request to a phone
/// behind NAT are fixed from its binding), and only when no other proxy recorded its route
/// (the response would come from that proxy).
pub(crate) fn fix_nated_reply(
    cfg: &crate::config::ProxyConfig,
    resp: Message,
    src: crate::target::Destination,
) -> Message {
    if !resp.status().is_some_and(|s| (101..300).contains(&s)) {
        return resp;
    }
    // From the phone itself, not through another proxy that records its route (whose
    // address the source is).
    let direct = resp
        .record_routes()
        .all(|r| r.is_ok_and(|r| crate::target::is_us(cfg, &r.uri)));
    if !direct {
        return resp;
    }
    let stream = src.protocol.is_reliable();
    let behind = crate::route_key::Target::contact_of(&resp)
        .and_then(|c| c.address())
        .is_some_and(|a| nat::is_private(a.ip()) && nat::address_behind_nat(a, src.addr, stream));
    if !behind {
        return resp;
    }
    let edited = fixed_contact(&resp, src.addr).map(|(old, new)| {
        let mut e = resp.edit();
        e.replace(old, &new);
        e.finish()
    });
    edited
        .and_then(|data| Message::parse(data).ok())
        .unwrap_or(resp)
}

/// The first Contact's URI of `msg` (a slice of it) and that URI with `addr` for its host
/// and port, its scheme, user part, parameters and headers kept.
pub(crate) fn fixed_contact(msg: &Message, addr: std::net::SocketAddr) -> Option<(&str, String)> {
    let sip_message::header::Contact::Address(a) = msg.contacts().next()?.ok()? else {
        return None;
    };
    let raw = a.uri.as_str();
    let sip = a.uri.as_sip()?;
    let head = match raw.find('@') {
        Some(at) => &raw[..=at],
        None => &raw[..raw.find(':')? + 1],
    };
    let mut new = format!("{head}{addr}{}", sip.params.as_str());
    if let Some(h) = sip.headers {
        new.push('?');
        new.push_str(h);
    }
    Some((raw, new))
}
