//! What a followed call's messages say of it, read once: the URI and tag of a From or To,
//! how each side is reached (its Contact, route set and next hop, kept only when sane and
//! short), and the session interval (RFC 4028).

use dialog::{Answer, Leg};
use sip_message::header::NameAddr;
use sip_message::{HeaderName, Message};

use crate::route_key::{addr_uri, scanned_tag};
use crate::target::Destination;

/// What a 2xx to an INVITE says of its dialog: how its callee is reached ([`callee_leg`])
/// and its session interval.
pub(crate) fn answer(resp: &Message, ours: Option<&[u8]>, hop: Destination) -> Answer {
    Answer {
        callee: callee_leg(resp, ours, hop),
        session_s: session_expires(resp),
    }
}

/// A message's Session-Expires (RFC 4028), in seconds.
pub(crate) fn session_expires(msg: &Message) -> Option<u32> {
    let value = msg.header(HeaderName::SessionExpires)?.value;
    let delta = value.split(';').next().unwrap_or_default();
    sip_message::header::parse_delta_seconds(delta).filter(|&s| s > 0)
}

/// How the callee of a 2xx is reached: its Contact, through `hop` (where the INVITE went)
/// and the proxies that record-routed after us (the entries above `ours`, nearest first).
fn callee_leg(resp: &Message, ours: Option<&[u8]>, hop: Destination) -> Leg {
    let mut above: Vec<&str> = Vec::new();
    let values = resp
        .headers_named(HeaderName::RecordRoute)
        .flat_map(|h| h.values());
    let mut found = false;
    for v in values {
        if ours.is_some_and(|k| memchr::memmem::find(v.as_bytes(), k).is_some()) {
            found = true;
            break;
        }
        above.push(v);
    }
    // Without our entry, nothing tells which entries are past us.
    if !found {
        above.clear();
    }
    above.reverse();
    leg(contact_of(resp), &above, hop, 0)
}

/// Most bytes of a Contact URI, and of a route set, a followed call keeps for each side:
/// past them (or with a control character, or a Contact that is no SIP URI) the side is
/// not kept, and the server cannot end the call itself.
const MAX_CONTACT: usize = 512;
const MAX_ROUTE: usize = 2048;

/// How a side is reached, when what its message says can be kept (see [`MAX_CONTACT`]).
pub(crate) fn leg(contact: Option<&str>, route: &[&str], hop: Destination, cseq: u32) -> Leg {
    let route = route.join(", ");
    let contact = contact.unwrap_or_default();
    let sip = contact
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("sip:"))
        || contact
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    if !sip
        || contact.len() > MAX_CONTACT
        || route.len() > MAX_ROUTE
        || !plain(contact)
        || !plain(&route)
    {
        return Leg::default();
    }
    Leg {
        contact: contact.to_owned(),
        route,
        hop: hop.to_text(),
        cseq,
    }
}

/// No control characters (a response is not checked whole when it comes).
fn plain(s: &str) -> bool {
    !s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// A From or To value's URI and tag: found by scans, or by the parser when the value holds
/// a quoted string (in one, `>`, `;` and `,` mean nothing, and a scan could take them).
pub(crate) fn uri_and_tag(value: &str) -> Option<(&str, Option<&str>)> {
    let (uri, tag) = match value.contains('"') {
        true => {
            let na = NameAddr::parse(value).ok()?;
            (na.uri.as_str(), na.tag())
        }
        false => (addr_uri(value)?, scanned_tag(value)),
    };
    Some((uri, tag.filter(|t| plain(t))))
}

/// A From or To value's tag alone, read as [`uri_and_tag`] reads it.
pub(crate) fn tag_of(value: &str) -> Option<&str> {
    let tag = match value.contains('"') {
        true => NameAddr::parse(value).ok()?.tag(),
        false => scanned_tag(value),
    };
    tag.filter(|t| plain(t))
}

/// The URI of a message's first Contact (parsed when it holds a quoted string).
pub(crate) fn contact_of(msg: &Message) -> Option<&str> {
    let value = msg.header(HeaderName::Contact)?.value;
    if !value.contains('"') {
        return addr_uri(value);
    }
    match msg.contacts().next()?.ok()? {
        sip_message::header::Contact::Address(na) => Some(na.uri.as_str()),
        sip_message::header::Contact::Star => None,
    }
}
