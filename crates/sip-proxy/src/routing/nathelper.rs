//! NAT functions for the script, in the spirit of Kamailio's nathelper: `nat_uac_test(flags)`
//! tells whether the sender of the message sits behind NAT ([`nat`] holds the tests), and
//! `fix_nated_contact()` makes its Contact the address its request came from, so that the
//! other party's in-dialog requests reach it through its NAT; `dst_behind_nat()` tells
//! the same of the phone a lookup chose; `rtp_relay()` takes a call's media through the
//! relay, and `is_media_relayed()` finds that mark in a dialog's requests.

use script::{ArgType, Function, Registry, RouteMask, Value};
use sip_message::header::Contact;
use sip_message::Protocol;

use super::{ProxyEnv, RouteCtx};

/// Contact is a private address.
const CONTACT_PRIVATE: i64 = 1;
/// The top Via names another address than the source's.
const VIA_NOT_SOURCE: i64 = 2;
/// The top Via is a private address.
const VIA_PRIVATE: i64 = 4;
/// The SDP names a private address (`c=`).
const SDP_PRIVATE: i64 = 8;
/// The top Via names another port than the source's (over UDP).
const VIA_PORT_NOT_SOURCE: i64 = 16;
/// Contact is not the source (its address, and over UDP its port).
const CONTACT_NOT_SOURCE: i64 = 64;

/// `nat_uac_test(flags)`: 1 when any of the tests `flags` selects (Kamailio's numbers: 1, 2,
/// 4, 8, 16, 64, added) finds the sender behind NAT, else -1.
fn nat_uac_test(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let flags = args.first().map_or(0, Value::as_int);
    let src = c.src.addr;
    let msg = c.msg;
    // The Contact's address, scanned (this runs for requests on the hot path).
    let contact = || crate::route_key::Target::contact_of(msg)?.address();
    let via = msg.top_via().ok();
    let via_ip = via.as_ref().and_then(|v| v.host.ip());
    let same_ip = |ip: std::net::IpAddr| ip.to_canonical() == src.ip().to_canonical();
    let found = |flag: i64| -> bool {
        match flag {
            CONTACT_PRIVATE => contact().is_some_and(|a| nat::is_private(a.ip())),
            VIA_NOT_SOURCE => via.is_some() && !via_ip.is_some_and(same_ip),
            VIA_PRIVATE => via_ip.is_some_and(nat::is_private),
            SDP_PRIVATE => sdp_private(msg),
            // Over a connection the source port is any the client's system picked: no
            // sign of NAT (Kamailio tests it there too, and relays every TCP call).
            VIA_PORT_NOT_SOURCE => {
                c.src.protocol == Protocol::Udp
                    && via
                        .as_ref()
                        .is_some_and(|v| v.port.unwrap_or(5060) != src.port())
            }
            CONTACT_NOT_SOURCE => contact()
                .is_some_and(|a| nat::address_behind_nat(a, src, c.src.protocol.is_reliable())),
            _ => false,
        }
    };
    let all = [
        CONTACT_PRIVATE,
        VIA_NOT_SOURCE,
        VIA_PRIVATE,
        SDP_PRIVATE,
        VIA_PORT_NOT_SOURCE,
        CONTACT_NOT_SOURCE,
    ];
    if all.into_iter().any(|f| flags & f != 0 && found(f)) {
        1
    } else {
        -1
    }
}

/// True when the message carries SDP naming a private address in a `c=` line.
fn sdp_private(msg: &sip_message::Message) -> bool {
    let is_sdp = msg.content_type().ok().flatten().is_some_and(|t| {
        t.kind.eq_ignore_ascii_case("application") && t.subtype.eq_ignore_ascii_case("sdp")
    });
    if !is_sdp {
        return false;
    }
    let body = msg.body();
    let Ok(s) = sdp::Session::parse(&body) else {
        return false;
    };
    let media = s.media.iter().filter_map(|m| m.connection);
    s.connection
        .into_iter()
        .chain(media)
        .any(|c| nat::is_private(c.address))
}

/// `fix_nated_contact()`: the relayed request's first Contact gets the source address and
/// port for host and port (user part and parameters kept); our Record-Route key then
/// covers that address. -1 without a Contact.
fn fix_nated_contact(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    match c.msg.contacts().next() {
        Some(Ok(Contact::Address(_))) => {
            c.edits.contact = Some(c.src.addr);
            1
        }
        _ => -1,
    }
}

/// `dst_behind_nat()`: 1 when a binding `lookup` chose (any of them, when it forks) sits
/// behind NAT, reached where its REGISTER came from; else -1.
fn dst_behind_nat(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let set = &c.set;
    let mut bindings = set.binding.iter().chain(&set.branches);
    if bindings.any(crate::keepalive::behind_nat) {
        1
    } else {
        -1
    }
}

/// `dst_other_family()`: 1 when the request goes to an address of another family than it
/// came from (IPv6 to IPv4 or back): a binding `lookup` chose (any of them, when it forks),
/// where it registered from, or the Request-URI's IP; else -1 (a host name is not known
/// yet). Its media must then be bridged by the relay.
fn dst_other_family(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let from_v6 = c.src.addr.ip().to_canonical().is_ipv6();
    let other = |ip: std::net::IpAddr| ip.to_canonical().is_ipv6() != from_v6;
    let set = &c.set;
    let mut bindings = set.binding.iter().chain(&set.branches).peekable();
    let differs = match bindings.peek() {
        Some(_) => bindings.any(|b| b.source_is_ipv6() != from_v6),
        None => c
            .ruri()
            .and_then(|u| sip_message::Uri::parse(u).ok())
            .and_then(|u| u.as_sip().and_then(|s| s.host.ip()))
            .is_some_and(other),
    };
    if differs {
        1
    } else {
        -1
    }
}

/// `dst_websocket()`: 1 when the request goes to a browser: a binding `lookup` chose (any,
/// when it forks) was registered over WebSocket, or the Request-URI says `transport=ws` or
/// `wss`; else -1. The relay bridges such a call's WebRTC media to a phone's plain RTP.
fn dst_websocket(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let set = &c.set;
    let mut bindings = set.binding.iter().chain(&set.branches).peekable();
    let browser = match bindings.peek() {
        Some(_) => bindings.any(|b| b.source_is_websocket()),
        None => c
            .ruri()
            .and_then(|u| sip_message::Uri::parse(u).ok())
            .and_then(|u| u.as_sip().and_then(|s| s.transport()))
            .is_some_and(|t| t.eq_ignore_ascii_case("ws") || t.eq_ignore_ascii_case("wss")),
    };
    if browser {
        1
    } else {
        -1
    }
}

/// `rtp_relay()`: the media of this transaction goes through the media relay: the SDP of
/// the request and of its replies (offers and answers, early media included) is rewritten
/// to name the relay, a BYE ends the call's session, and so do a CANCEL and a failure of
/// an initial INVITE. An initial request's Record-Route marks its dialog for
/// `is_media_relayed()`.
fn rtp_relay(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    c.edits.media = true;
    1
}

/// `is_media_relayed()`: 1 when `loose_route()` took off a Route entry of ours that marks
/// the dialog's media as going through the relay; else -1.
fn is_media_relayed(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if c.edits.route.media {
        1
    } else {
        -1
    }
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    r.function(Function {
        name: "dst_behind_nat",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: dst_behind_nat,
    });
    r.function(Function {
        name: "dst_other_family",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: dst_other_family,
    });
    r.function(Function {
        name: "dst_websocket",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: dst_websocket,
    });
    r.function(Function {
        name: "rtp_relay",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: rtp_relay,
    });
    r.function(Function {
        name: "is_media_relayed",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: is_media_relayed,
    });
    r.function(Function {
        name: "fix_nated_contact",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: fix_nated_contact,
    });
    r.function(Function {
        name: "nat_uac_test",
        args: &[ArgType::Int],
        required: 1,
        routes: RouteMask::ANY,
        call: nat_uac_test,
    });
}
