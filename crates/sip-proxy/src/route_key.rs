//! The key of our Record-Route entries: a token (`;rk=`) made from the dialog's Call-ID, the
//! caller's From tag, who holds the copy, the remote target the holder sends its in-dialog
//! requests to and the URIs of the proxies that follow us in its route set, under a secret
//! the servers sharing a database share. An in-dialog request follows a Route set we put
//! there, and only to the party of that dialog: the callee's copy (in the INVITE) covers the
//! caller's Contact, the caller's copy (rewritten in the 18x and 2xx we relay, RFC 3261
//! §16.7 step 9) the callee's. Targets refreshed since: [`crate::refresh`].

use std::hash::Hasher;

use bytes::Bytes;
use sip_message::{HeaderName, Message, Method, Uri};
use siphasher::sip::SipHasher24;

use crate::config::ProxyConfig;
use crate::refresh::RefreshedTargets;
use crate::target::is_us;

/// The Record-Route parameter that carries the token.
pub(crate) const PARAM: &str = "rk";

/// The key of the tokens: kept in the database (every server sharing it has the same, and
/// a restart keeps the dialogs going); never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RouteSecret(pub [u8; 16]);

impl std::fmt::Debug for RouteSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteSecret(..)")
    }
}

/// The hash state of the dialog `call_id` begun with From tag `tag`, before its target.
fn dialog_of(secret: &RouteSecret, call_id: &str, tag: &str, media: bool) -> SipHasher24 {
    let mut h = SipHasher24::new_with_key(&secret.0);
    h.write(call_id.as_bytes());
    h.write_u8(0xff);
    h.write(tag.as_bytes());
    h.write_u8(0xff);
    if media {
        // The dialog's media goes through the relay (our entries' `;rtprelay`): the key
        // covers that mark too, so no party can set or clear it.
        h.write_u8(0x4d);
    }
    h
}

/// Who holds a copy of a dialog's key: the two copies never coincide, so no party's copy
/// is ever the other's (nor pairs with itself, [`RefreshedTargets::pair`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The caller's copy (in the 18x/2xx relayed to it), for its requests to the callee.
    Caller = 1,
    /// The callee's copy (in the INVITE relayed to it), for its requests to the caller.
    Callee = 2,
}

/// The token of a dialog (its hash state) for `holder`'s requests to `target` through the
/// proxies `routes` (the URIs of the Route values that follow ours, in order).
fn token_in(mut dialog: SipHasher24, holder: Holder, target: &Target<'_>, routes: &[&str]) -> u64 {
    dialog.write_u8(holder as u8);
    dialog.write(target.host.as_bytes());
    dialog.write_u16(target.port);
    for r in routes {
        dialog.write(r.as_bytes());
        dialog.write_u8(0xfe);
    }
    dialog.finish()
}

/// The token of the dialog `call_id` begun with From tag `tag`, for `holder`'s requests to
/// `target` through `routes`.
fn token_of(
    secret: &RouteSecret,
    (call_id, tag, media): (&str, &str, bool),
    holder: Holder,
    target: &Target<'_>,
    routes: &[&str],
) -> u64 {
    token_in(
        dialog_of(secret, call_id, tag, media),
        holder,
        target,
        routes,
    )
}

/// The URI of a Route or Record-Route value, read by a scan (as the key is made, so it is
/// checked): what is in `<…>`, after a quoted display name.
pub(crate) fn route_uri(value: &str) -> &str {
    let v = skip_display_name(value.trim()).unwrap_or_default();
    match v.find('<') {
        Some(i) => v[i + 1..].split('>').next().unwrap_or_default(),
        None => v,
    }
}

/// The URI of a From, To or (first) Contact value, found by a scan: inside `<>`, or up to
/// the first `;` or `,` of an addr-spec.
pub(crate) fn addr_uri(value: &str) -> Option<&str> {
    // A quoted display name may hold any of `<;,`.
    let v = skip_display_name(value.trim_start())?;
    Some(match v.find(['<', ';', ',']) {
        Some(i) if v.as_bytes()[i] == b'<' => v[i + 1..].split('>').next()?,
        Some(i) => v[..i].trim_end(),
        None => v.trim_end(),
    })
}

/// `value` after its quoted display name, if it starts with one.
fn skip_display_name(value: &str) -> Option<&str> {
    let Some(q) = value.strip_prefix('"') else {
        return Some(value);
    };
    let b = q.as_bytes();
    let mut i = 0;
    while *b.get(i)? != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    Some(&q[i + 1..])
}

/// A token as written in `;rk=`: 16 lower-case hex digits.
fn hex(t: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, d) in out.iter_mut().enumerate() {
        *d = HEX[((t >> ((15 - i) * 4)) & 0xf) as usize];
    }
    out
}

/// The key of the Record-Route entries of a request we relay (the callee's copy), with its
/// dialog's hash state, from which the caller's copy is made when the responses come.
#[derive(Clone, Copy)]
pub(crate) struct Issued {
    text: [u8; 16],
    value: u64,
    dialog: SipHasher24,
}

impl Issued {
    /// The key as our Record-Route entries carry it.
    pub(crate) fn text(&self) -> &[u8] {
        &self.text
    }
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued(..)")
    }
}

impl Issued {
    /// The key as written in `;rk=`.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

/// The token of `target` as a refreshed target of dialog `call_id`, for
/// [`RefreshedTargets`].
fn refreshed_target(secret: &RouteSecret, call_id: &str, target: &Target<'_>) -> u64 {
    token_in(
        dialog_of(secret, call_id, "", false),
        Holder::Caller,
        target,
        &[],
    )
}

/// True for the methods whose requests, and their 2xx, refresh the sender's remote target
/// (RFC 3261 §12.2: INVITE, RFC 3311: UPDATE, RFC 6665 §4.3: SUBSCRIBE, NOTIFY).
pub(crate) fn refreshes_target(method: Method<'_>) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify
    )
}

/// Notes the Contact of `req`, an in-dialog target refresh that came with our `key`, as
/// the new remote target of its sender: the other copy of the key (the one its peer holds)
/// then leads there.
pub(crate) fn note_request_refresh(
    secret: &RouteSecret,
    refreshed: &RefreshedTargets,
    key: u64,
    req: &Message,
    fixed: Option<std::net::SocketAddr>,
) {
    let target = fixed.map(Target::at).or_else(|| Target::contact_of(req));
    let (Ok(call_id), Some(target)) = (req.call_id(), target) else {
        return;
    };
    refreshed.refresh_partner(key, refreshed_target(secret, call_id, &target));
}

/// Notes the Contact of `resp`, the 2xx of an in-dialog target refresh that came with our
/// `key`, as the new remote target of its sender: requests with that key then pass there.
pub(crate) fn note_refresh(
    secret: &RouteSecret,
    refreshed: &RefreshedTargets,
    key: u64,
    resp: &Message,
) {
    let (Ok(call_id), Some(target)) = (resp.call_id(), Target::contact_of(resp)) else {
        return;
    };
    refreshed.note(key, refreshed_target(secret, call_id, &target));
}

/// Where in-dialog requests go: a remote target's host (canonical) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    host: std::borrow::Cow<'a, str>,
    port: u16,
}

impl<'a> Target<'a> {
    /// The target as an address, when its host is an IP literal.
    pub(crate) fn address(&self) -> Option<std::net::SocketAddr> {
        let ip: std::net::IpAddr = self.host.parse().ok()?;
        Some(std::net::SocketAddr::new(ip, self.port))
    }

    /// The target at an address (a Contact fixed to its sender's source).
    fn at(addr: std::net::SocketAddr) -> Target<'a> {
        Target {
            host: sip_message::canonical_domain(&addr.ip().to_string())
                .into_owned()
                .into(),
            port: addr.port(),
        }
    }

    /// The target a SIP URI names, its port defaulted as the next hop defaults it
    /// ([`crate::target::next_hop`]); `None` with `maddr`, which would send the request
    /// elsewhere than the host a key covers.
    pub(crate) fn of(uri: &Uri<'a>) -> Option<Target<'a>> {
        let sip = uri.as_sip()?;
        if sip.params.contains("maddr") {
            return None;
        }
        Some(Target {
            host: sip_message::canonical_domain(sip.host_raw),
            port: sip.port.unwrap_or(5060),
        })
    }

    /// The first Contact of `msg`, read by a scan, not a parse (this runs for every call
    /// set up): the host and port of the URI in `<…>`, or of an addr-spec up to its first
    /// `;` or `,` (RFC 3261 §20: a URI with those is in brackets). Only for keys: a scan and
    /// the parser may be made to disagree, and then the key covers whatever the scan read,
    /// which fails that dialog alone, whose party named its Contact anyway.
    pub(crate) fn contact_of(msg: &'a Message) -> Option<Target<'a>> {
        let uri = addr_uri(msg.header(HeaderName::Contact)?.value)?;
        let (scheme, rest) = uri.split_once(':')?;
        let scheme = scheme.trim();
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return None;
        }
        // '@' is in neither parameters nor headers: the first one ends the user part.
        let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
        let hostport = rest.split([';', '?']).next()?;
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let close = v6.find(']')? + 1;
                (&hostport[..=close], hostport[close + 1..].strip_prefix(':'))
            }
            None => match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        let port = match port {
            Some(p) => sip_message::parse_port(p).ok()?,
            None => 5060,
        };
        (!host.is_empty()).then(|| Target {
            host: sip_message::canonical_domain(host),
            port,
        })
    }
}

/// The token as written in `;rk=` of dialog (Call-ID, From tag, media relayed), for
/// `holder`'s requests to `target` through `routes` (tests make keys with it).
#[cfg(test)]
pub(crate) fn token(
    secret: &RouteSecret,
    dialog: (&str, &str, bool),
    holder: Holder,
    target: &Target<'_>,
    routes: &[&str],
) -> String {
    let t = token_of(secret, dialog, holder, target, routes);
    String::from_utf8_lossy(&hex(t)).into_owned()
}

/// The `tag` parameter of a From value found by a scan, not a parse (this runs for every
/// in-dialog request): among the parameters after the `>` that closes the URI, or after
/// the URI of an addr-spec. Only for checking a key: a scan and the parser may be made to
/// disagree, and a wrong tag here fails the check (whoever could make it pass with another
/// tag holds a key for that tag anyway). Whether a request is in-dialog is never decided by
/// it.
pub(crate) fn scanned_tag(value: &str) -> Option<&str> {
    let start = memchr::memrchr(b'>', value.as_bytes()).map_or(0, |i| i + 1);
    let mut rest = &value[start..];
    // What comes before the first `;` is the URI (or nothing).
    let mut params = std::iter::from_fn(|| {
        let i = memchr::memchr(b';', rest.as_bytes())?;
        let tail = &rest[i + 1..];
        let end = memchr::memchr(b';', tail.as_bytes()).unwrap_or(tail.len());
        rest = &tail[end..];
        Some(&tail[..end])
    });
    params.find_map(|p| {
        let eq = memchr::memchr(b'=', p.as_bytes())?;
        p[..eq]
            .trim()
            .eq_ignore_ascii_case("tag")
            .then(|| p[eq + 1..].trim())
    })
}

/// The key for the dialog an initial request begins (its From tag scanned, as `verify`
/// reads it), for the callee's requests to the caller's Contact; `None` without them.
pub(crate) fn issue(
    secret: &RouteSecret,
    msg: &Message,
    fixed: Option<std::net::SocketAddr>,
    media: bool,
) -> Option<Issued> {
    let call_id = msg.call_id().ok()?;
    let tag = scanned_tag(msg.header(HeaderName::From)?.value)?;
    let dialog = dialog_of(secret, call_id, tag, media);
    // The callee's route set goes on (after ours) through the proxies that record-routed
    // the request before us.
    let below: Vec<&str> = msg
        .headers_named(HeaderName::RecordRoute)
        .flat_map(|h| h.values())
        .map(route_uri)
        .collect();
    let target = fixed.map(Target::at).or_else(|| Target::contact_of(msg))?;
    let value = token_in(dialog, Holder::Callee, &target, &below);
    Some(Issued {
        text: hex(value),
        value,
        dialog,
    })
}

/// A response to relay upstream: without our Via, and with our Record-Route entries' key
/// (`issued`, when the request had them) made for the caller's requests to the callee's
/// Contact in a 1xx or 2xx, taken out of any other; a callee behind NAT (`nat`: where we
/// reach it) has its Contact fixed to that address in a 1xx or 2xx, and the key covers it.
/// With it, the pair of keys this dialog has now (for [`RefreshedTargets::pair`]).
pub(crate) fn for_caller(
    resp: &Message,
    issued: Option<&Issued>,
    nat: Option<std::net::SocketAddr>,
) -> (Bytes, Option<(u64, u64)>) {
    let mut e = resp.edit();
    e.remove_first_value(HeaderName::Via);
    let fix = nat.filter(|_| resp.status().is_some_and(|s| (101..300).contains(&s)));
    if let Some((old, new)) = fix.and_then(|a| crate::forward::fixed_contact(resp, a)) {
        e.replace(old, &new);
    }
    let Some(issued) = issued else {
        return (e.finish(), None);
    };
    // Our entries, as the callee echoed them: found by their key after a `=` (a hash no
    // other text holds by chance), not by a parse.
    let old = issued.text;
    let key_in = |v: &'_ str| -> Option<usize> {
        memchr::memchr_iter(b'=', v.as_bytes())
            .map(|i| i + 1)
            .find(|&i| v.get(i..i + 16).is_some_and(|k| k.as_bytes() == old))
    };
    let values = resp
        .headers_named(HeaderName::RecordRoute)
        .flat_map(|h| h.values());
    let (mut above, mut ours) = (Vec::new(), Vec::new());
    for v in values {
        match key_in(v) {
            Some(i) => ours.push(&v[i..i + 16]),
            None if ours.is_empty() => above.push(route_uri(v)),
            None => {}
        }
    }
    if ours.is_empty() {
        return (e.finish(), None);
    }
    if !resp.status().is_some_and(|s| (101..300).contains(&s)) {
        // No dialog: the callee's copy, which covers the caller's own Contact, must
        // never go back to the caller.
        for old in ours {
            e.replace(old, "-");
        }
        return (e.finish(), None);
    }
    // The caller's route set goes on (after ours) through the proxies that record-routed
    // the response after us, nearest first.
    above.reverse();
    // Without a Contact we can read, the caller gets no key: the callee's copy, which
    // covers the caller's own Contact, must never go back to it.
    let target = fix.map(Target::at).or_else(|| Target::contact_of(resp));
    let made = target.map(|t| token_in(issued.dialog, Holder::Caller, &t, &above));
    let text = made.map(hex);
    let key = text
        .as_ref()
        .map_or("-", |k| std::str::from_utf8(k).unwrap_or("-"));
    for old in ours {
        e.replace(old, key);
    }
    (e.finish(), made.map(|k| (issued.value, k)))
}

/// [`for_caller`] for a response relayed statelessly: our keyed entries found by a parse
/// (entries of ours with different keys, a spiral's, lose them),
/// the dialog by the response's Call-ID and From tag (scanned, as `verify` will read it
/// in the caller's requests: the same header text comes back).
pub(crate) fn for_caller_stateless(cfg: &ProxyConfig, resp: &Message) -> Bytes {
    let mut media = false;
    let keys: Vec<&str> = resp
        .record_routes()
        .filter_map(Result::ok)
        .filter(|rr| is_us(cfg, &rr.uri))
        .filter_map(|rr| {
            let sip = rr.uri.as_sip()?;
            media |= sip.params.get(crate::relay::MEDIA_PARAM).is_some();
            sip.params.get(PARAM).flatten()
        })
        .collect();
    if keys.iter().any(|k| *k != keys[0]) {
        // A spiral: which entry this pass made is not known here, and none may go back
        // unchanged (one is a callee's copy): no key for the caller.
        let mut e = resp.edit();
        e.remove_first_value(HeaderName::Via);
        for k in keys {
            e.replace(k, "-");
        }
        return e.finish();
    }
    let issued = keys.first().filter(|k| k.len() == 16).and_then(|k| {
        let call_id = resp.call_id().ok()?;
        let tag = scanned_tag(resp.header(HeaderName::From)?.value)?;
        let text = k.as_bytes().try_into().ok()?;
        let value = u64::from_str_radix(k, 16).ok()?;
        let dialog = dialog_of(&cfg.route_secret, call_id, tag, media);
        Some(Issued {
            text,
            value,
            dialog,
        })
    });
    for_caller(resp, issued.as_ref(), None).0
}

/// `value` as a key, when it is the token of the dialog of in-dialog request `msg`, whose
/// To tag (parsed) is `to_tag`, for requests to `target` (its remote target) through
/// `routes` (the URIs of the Route values after ours): made from its From tag (a request
/// of the caller's) or from that tag (one of the callee's); or, when the other party
/// refreshed its target since and no proxy follows us, when `target` is the one
/// `refreshed` holds for this key.
pub(crate) fn verify(
    secret: &RouteSecret,
    refreshed: &RefreshedTargets,
    msg: &Message,
    (value, media): (&str, bool),
    (to_tag, target, routes): (&str, &Target<'_>, &[&str]),
) -> Option<u64> {
    let (Ok(call_id), Ok(given)) = (msg.call_id(), u64::from_str_radix(value, 16)) else {
        return None;
    };
    // The caller's requests first: every ACK is one.
    let from_caller = msg
        .header(HeaderName::From)
        .and_then(|h| scanned_tag(h.value))
        .is_some_and(|tag| {
            token_of(
                secret,
                (call_id, tag, media),
                Holder::Caller,
                target,
                routes,
            ) == given
        });
    let ok = from_caller
        || token_of(
            secret,
            (call_id, to_tag, media),
            Holder::Callee,
            target,
            routes,
        ) == given
        || (routes.is_empty() && refreshed.holds(given, refreshed_target(secret, call_id, target)));
    ok.then_some(given)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_message::header::Contact;

    const KEY: RouteSecret = RouteSecret(*b"0123456789abcdef");

    /// An in-dialog request from `from_tag` to `to_tag`, to the remote target `target`.
    fn msg(from_tag: &str, to_tag: &str, target: &str) -> Message {
        Message::parse(format!(
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag={from_tag}\r\n\
To: <sip:b@h>;tag={to_tag}\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContact: <{target}>\r\nContent-Length: 0\r\n\r\n"
        ))
        .expect("message")
    }

    fn target(m: &Message) -> Target<'_> {
        Target::of(&m.request_uri().expect("uri")).expect("target")
    }

    fn check(m: &Message, key: &str, to_tag: &str) -> bool {
        let refreshed = RefreshedTargets::default();
        verify(&KEY, &refreshed, m, (key, false), (to_tag, &target(m), &[])).is_some()
    }

    #[test]
    fn a_key_holds_for_its_dialog_and_its_target_only() {
        // The INVITE's key (in the callee's copy) covers the caller's Contact.
        let invite = msg("caller", "x", "sip:a@192.0.2.1:5062");
        let k = issue(&KEY, &invite, None, false)
            .expect("key")
            .as_str()
            .to_owned();
        let to_caller = msg("callee", "caller", "sip:a@192.0.2.1:5062");
        assert!(
            check(&to_caller, &k, "caller"),
            "the callee's request to the caller"
        );
        let elsewhere = msg("callee", "caller", "sip:victim@198.51.100.9");
        assert!(!check(&elsewhere, &k, "caller"), "another target");
        let other = msg("other", "caller2", "sip:a@192.0.2.1:5062");
        assert!(!check(&other, &k, "caller2"), "another dialog");
        assert!(verify(
            &RouteSecret([7; 16]),
            &RefreshedTargets::default(),
            &to_caller,
            (&k, false),
            ("caller", &target(&to_caller), &[])
        )
        .is_none());
        assert!(!check(&to_caller, "0000000000000000", "caller"));
        // The media mark is part of the key: not set (nor cleared) by a party.
        let refreshed = RefreshedTargets::default();
        let marked = (k.as_str(), true);
        let caller = ("caller", &target(&to_caller), &[][..]);
        assert!(verify(&KEY, &refreshed, &to_caller, marked, caller).is_none());
        let with_media = issue(&KEY, &invite, None, true).expect("key");
        let m = (with_media.as_str(), true);
        assert!(verify(&KEY, &refreshed, &to_caller, m, caller).is_some());
        let cleared = (with_media.as_str(), false);
        assert!(verify(&KEY, &refreshed, &to_caller, cleared, caller).is_none());
        assert!(!check(&to_caller, "not hex", "caller"));
        // The caller's copy covers the callee's Contact; its requests carry its From tag.
        let t = Target::of(&Uri::parse("sip:b@192.0.2.2").expect("uri")).expect("target");
        let k2 = token(&KEY, ("c1", "caller", false), Holder::Caller, &t, &[]);
        let to_callee = msg("caller", "callee", "sip:b@192.0.2.2:5060");
        assert!(
            check(&to_callee, &k2, "callee"),
            "the caller's request to the callee"
        );
    }

    #[test]
    fn a_refreshed_target_holds_for_the_key_of_the_refresh() {
        let refreshed = RefreshedTargets::default();
        // The callee's copy covers the caller's first Contact.
        let invite = msg("caller", "x", "sip:a@192.0.2.1:5062");
        let k = issue(&KEY, &invite, None, false)
            .expect("key")
            .as_str()
            .to_owned();
        let moved = msg("callee", "caller", "sip:a@203.0.113.7:5062");
        let check = |m: &Message, k: &str| {
            verify(&KEY, &refreshed, m, (k, false), ("caller", &target(m), &[])).is_some()
        };
        assert!(!check(&moved, &k), "not before the refresh");
        // The caller answers the callee's re-INVITE (which carried k) from a new Contact.
        let ok = msg("callee", "caller", "sip:a@203.0.113.7:5062");
        let given = u64::from_str_radix(&k, 16).expect("hex");
        note_refresh(&KEY, &refreshed, given, &ok);
        assert!(
            check(&moved, &k),
            "the new target, with the key of the refresh"
        );
        let first = msg("callee", "caller", "sip:a@192.0.2.1:5062");
        assert!(check(&first, &k), "the first one, which the key covers");
        let elsewhere = msg("callee", "caller", "sip:victim@198.51.100.9");
        assert!(!check(&elsewhere, &k), "any other");
        // Not with another key (the caller's copy, say), nor in another dialog.
        let t = Target::of(&Uri::parse("sip:b@192.0.2.2").expect("uri")).expect("target");
        let callers = token(&KEY, ("c1", "caller", false), Holder::Caller, &t, &[]);
        assert!(!check(&moved, &callers));
        let other = Message::parse(
            "BYE sip:a@203.0.113.7:5062 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=callee\r\n\
To: <sip:a@h>;tag=caller\r\nCall-ID: c2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("message");
        assert!(!check(&other, &k), "another Call-ID");
    }

    #[test]
    fn contacts_are_scanned_as_the_parser_reads_them() {
        for contact in [
            "<sip:a@192.0.2.1:5062>",
            "\"A <b>, c;d\" <sip:a@Example.COM;transport=tcp>;expires=60",
            "sip:a@192.0.2.1;expires=60, <sip:b@192.0.2.2>",
            "Alice <sips:a@[2001:DB8::1]:5071;ob>",
            "<sip:+1234;npdi@gw.example:5080?Subject=x>",
            "<sip:[::1]>",
            "<SIP:host.example.>",
        ] {
            let m = msg("caller", "x", "sip:a@h");
            let text = String::from_utf8_lossy(&m.to_bytes())
                .replace("Contact: <sip:a@h>", &format!("Contact: {contact}"));
            let m = Message::parse(text.into_bytes()).expect(contact);
            let parsed = match m.contacts().next().expect(contact).expect(contact) {
                Contact::Address(a) => Target::of(&a.uri),
                Contact::Star => None,
            };
            assert_eq!(Target::contact_of(&m), parsed, "{contact}");
        }
        let m = msg("caller", "x", "sip:a@h");
        let star = String::from_utf8_lossy(&m.to_bytes()).replace("<sip:a@h>", "*");
        let star = Message::parse(star.into_bytes()).expect("star");
        assert_eq!(Target::contact_of(&star), None);
    }

    #[test]
    fn a_stateless_spiral_gives_the_caller_no_key() {
        let cfg = crate::tests::config();
        let resp = Message::parse(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKsl-x\r\n\
Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
Record-Route: <sip:192.0.2.1:5060;lr;rk=0123456789abcdef>, <sip:192.0.2.1:5060;lr;rk=fedcba9876543210>\r\n\
From: <sip:a@h>;tag=caller\r\nTo: <sip:b@h>;tag=callee\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:b@192.0.2.2>\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("200");
        let out = Message::parse(for_caller_stateless(&cfg, &resp)).expect("relayed");
        let rr = out.header(HeaderName::RecordRoute).expect("RR").value;
        assert_eq!(
            rr,
            "<sip:192.0.2.1:5060;lr;rk=->, <sip:192.0.2.1:5060;lr;rk=->"
        );
        assert_eq!(out.vias().count(), 1);
    }

    #[test]
    fn from_tags_are_found_after_the_uri() {
        assert_eq!(scanned_tag("<sip:a@h;tag=no>;tag=yes"), Some("yes"));
        assert_eq!(
            scanned_tag("\"A ;tag=no\" <sip:a@h> ; TAG = yes ;x=1"),
            Some("yes")
        );
        assert_eq!(scanned_tag("sip:a@h;tag=yes"), Some("yes"));
        assert_eq!(scanned_tag("<sip:a@h>"), None);
    }
}
