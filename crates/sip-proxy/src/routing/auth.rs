//! Digest authentication: `www_authorize`, `proxy_authorize`, `auth_challenge`,
//! `consume_credentials` and `$au`.

use std::borrow::Cow;

use auth::{Credentials, Verdict};
use script::{ArgType, Function, Registry, RouteMask, Value, Variable};
use sip_message::{HeaderName, Message, Method, Uri};

use super::{ProxyEnv, RouteCtx};

/// The realm an argument names; empty: the To host of a REGISTER, else the From host.
fn realm<'m>(msg: &'m Message, arg: &'m str) -> Cow<'m, str> {
    if !arg.is_empty() {
        return Cow::Borrowed(arg);
    }
    let party = if msg.method() == Some(Method::Register) {
        msg.to()
    } else {
        msg.from()
    };
    party
        .ok()
        .and_then(|p| {
            p.uri
                .as_sip()
                .map(|s| sip_message::canonical_domain(s.host_raw).into_owned())
        })
        .map_or(Cow::Borrowed(""), Cow::Owned)
}

/// Checks the credentials for `realm` in headers `name`: 1 authorized, -1 none for the
/// realm (or in an algorithm it does not offer), -2 refused (wrong password, unknown user, a nonce not ours, a replay), -3 stale,
/// -4 a digest-uri that is not the Request-URI (a client's mistake: a new challenge would
/// get the same answer again, so it is not counted as a failed login either).
fn authorize(c: &mut RouteCtx<'_>, args: &[Value<'_>], name: HeaderName) -> i64 {
    let arg = args.first().map(Value::as_str).unwrap_or_default();
    let realm = realm(c.msg, &arg).into_owned();
    // Credentials in an algorithm the realm does not offer are not taken (a downgrade);
    // a client may send one per algorithm.
    let offered = c.core.config().digest_algorithms_for(&realm);
    let Some(cr) = c
        .msg
        .auth_headers(name)
        .filter_map(Result::ok)
        .filter_map(|h| Credentials::from_header(&h).ok())
        .find(|cr| cr.realm.eq_ignore_ascii_case(&realm) && offered.contains(&cr.algorithm))
    else {
        return -1;
    };
    // The credentials must be for this request (RFC 2617 §3.2.2.5): a response moved onto
    // another Request-URI is refused.
    let for_this = c
        .msg
        .request_uri_str()
        .is_some_and(|u| registrar::uri_equal(u, &cr.uri));
    if !for_this {
        return -4;
    }
    let method = c.msg.method().map_or("", |m| m.as_str());
    let subscribers = c.core.subscribers();
    let ha1 = subscribers
        .get(&cr.username, &realm)
        .map(|s| s.ha1(cr.algorithm));
    // A retransmission may carry its accepted count again: the same bytes from the same
    // sender (anything changed, a Contact, a Via port, a body, makes another request).
    let request = c
        .core
        .shards()
        .keyed_hash((&c.msg.to_bytes()[..], c.src.addr));
    match c
        .core
        .auth
        .verify(&cr, method, ha1, request, c.core.unix(c.now))
    {
        Verdict::Authorized => {
            c.auth_user = Some(cr.username);
            c.auth_header = Some(name);
            1
        }
        Verdict::Stale => {
            c.auth_stale = true;
            -3
        }
        Verdict::Refused => {
            // A stable line for fail2ban (README): the message, then `src=`; the user and
            // realm are the client's text, quoted and escaped so they cannot forge a line.
            tracing::warn!(
                src = %c.src.addr.ip(),
                user = ?cr.username,
                realm = ?realm,
                method,
                "authentication failed"
            );
            c.core.auth_failed(c.src.addr.ip(), c.now);
            -2
        }
    }
}

fn www_authorize(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    authorize(c, args, HeaderName::Authorization)
}

fn proxy_authorize(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    authorize(c, args, HeaderName::ProxyAuthorization)
}

/// Answers 401 (REGISTER) or 407 with a challenge per algorithm, `stale=true` when the
/// credentials were right but their nonce had expired.
fn auth_challenge(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let arg = args.first().map(Value::as_str).unwrap_or_default();
    let realm = realm(c.msg, &arg).into_owned();
    let (code, reason, header) = if c.msg.method() == Some(Method::Register) {
        (401, "Unauthorized", "WWW-Authenticate")
    } else {
        (407, "Proxy Authentication Required", "Proxy-Authenticate")
    };
    let algorithms = c.core.config().digest_algorithms_for(&realm);
    let challenges = c
        .core
        .auth
        .challenges(&realm, algorithms, c.core.unix(c.now), c.auth_stale);
    let extra: Vec<(&str, &str)> = challenges.iter().map(|v| (header, v.as_str())).collect();
    let core = c.core;
    if core.respond(c, code, reason, &extra) {
        1
    } else {
        -1
    }
}

/// Removes the credentials that authorized the request before it is relayed.
fn consume_credentials(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    match c.auth_header {
        Some(name) => {
            c.edits.remove.push(name.as_str().to_owned());
            1
        }
        None => -1,
    }
}

fn get_au<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    c.auth_user
        .as_deref()
        .map_or(Value::Null, |u| Value::Str(Cow::Borrowed(u)))
}

/// True when a URI's domain has subscribers (`has_subscribers($fu)`); without an argument,
/// when there are any at all.
fn has_subscribers(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let subscribers = c.core.subscribers();
    if subscribers.is_empty() {
        // The zero-configuration server: nothing to parse.
        return -1;
    }
    let Some(arg) = args.first().map(Value::as_str) else {
        return 1;
    };
    let domain = match Uri::parse(&arg) {
        Ok(u) => u.as_sip().map_or(String::new(), |s| s.host_raw.to_owned()),
        Err(_) => arg.into_owned(),
    };
    if subscribers.has_domain(&domain) {
        1
    } else {
        -1
    }
}

/// 1 when the request comes from a trusted peer (`[auth] trusted`). Never over WebSocket:
/// a browser is a user, whatever its address (a page in a trusted network, or a local
/// WebSocket front, must not lend its visitors the network's trust).
fn allow_trusted(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if !c.src.protocol.is_websocket() && c.core.config().is_trusted(c.src.addr.ip()) {
        1
    } else {
        -1
    }
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    for (name, call) in [
        ("www_authorize", www_authorize as script::CallFn<ProxyEnv>),
        ("proxy_authorize", proxy_authorize),
        ("auth_challenge", auth_challenge),
    ] {
        r.function(Function {
            name,
            args: &[ArgType::Str],
            required: 1,
            routes: RouteMask::REQUEST,
            call,
        });
    }
    r.function(Function {
        name: "allow_trusted",
        args: &[],
        required: 0,
        routes: RouteMask::ANY,
        call: allow_trusted,
    });
    r.function(Function {
        name: "consume_credentials",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: consume_credentials,
    });
    r.function(Function {
        name: "has_subscribers",
        args: &[ArgType::Str],
        required: 0,
        routes: RouteMask::ANY,
        call: has_subscribers,
    });
    r.variable(Variable {
        name: "au",
        param: false,
        get: get_au,
        set: None,
    });
}
