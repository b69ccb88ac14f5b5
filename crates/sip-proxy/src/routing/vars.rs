//! Message variables: `$ru`, `$rU`, `$fu`, `$hdr(Name)`…

use std::borrow::Cow;

use script::{GetFn, Registry, SetFn, Value, Variable};
use sip_message::{HeaderName, Message, SipUri, Uri};

use super::{Phase, ProxyEnv, RouteCtx};

fn text(s: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(s))
}

fn opt(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, text)
}

fn sip(uri: &str) -> Option<SipUri<'_>> {
    Uri::parse(uri).ok()?.as_sip().copied()
}

/// A part of the Request-URI (parsed once with the message).
fn ruri_part<'b>(c: &'b RouteCtx<'_>, f: fn(&SipUri<'b>) -> Value<'b>) -> Value<'b> {
    match c.ruri_parsed() {
        Some(Uri::Sip(u)) => f(&u),
        _ => Value::Null,
    }
}

/// A part of a URI-valued header's SIP URI.
fn part<'b>(uri: Option<&'b str>, f: fn(&SipUri<'b>) -> Value<'b>) -> Value<'b> {
    uri.and_then(sip).map_or(Value::Null, |u| f(&u))
}

fn user<'b>(u: &SipUri<'b>) -> Value<'b> {
    opt(u.user)
}

fn host<'b>(u: &SipUri<'b>) -> Value<'b> {
    text(u.host_raw)
}

fn port<'b>(u: &SipUri<'b>) -> Value<'b> {
    u.port.map_or(Value::Null, |p| Value::Int(i64::from(p)))
}

fn from_uri(m: &Message) -> Option<&str> {
    m.from().ok().map(|n| n.uri.as_str())
}

fn to_uri(m: &Message) -> Option<&str> {
    m.to().ok().map(|n| n.uri.as_str())
}

fn get_ru<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    opt(c.ruri())
}

fn get_ruser<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    ruri_part(c, user)
}

fn get_rhost<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    ruri_part(c, host)
}

fn get_rport<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    ruri_part(c, port)
}

/// The byte range of `part` (a slice of `whole`) within `whole`.
fn range_of(whole: &str, part: &str) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// Sets the Request-URI; false (and nothing changes) unless it is a URI.
fn set_ruri(c: &mut RouteCtx<'_>, uri: String) -> bool {
    if Uri::parse(&uri).is_err() {
        tracing::warn!(target: "script", %uri, "not a URI: Request-URI unchanged");
        return false;
    }
    c.set.ruri = Some(uri);
    c.set.binding = None;
    true
}

fn set_ru(c: &mut RouteCtx<'_>, _: &str, v: Value<'_>) -> bool {
    set_ruri(c, v.as_str().into_owned())
}

/// Rewrites one part of the current Request-URI.
fn rewrite(c: &mut RouteCtx<'_>, edit: impl Fn(&str, &SipUri<'_>) -> String) -> bool {
    let Some(uri) = c.ruri().map(str::to_owned) else {
        return false;
    };
    let Some(parsed) = sip(&uri) else {
        tracing::warn!(target: "script", %uri, "not a SIP URI: cannot change a part of it");
        return false;
    };
    let new = edit(&uri, &parsed);
    set_ruri(c, new)
}

fn set_ruser(c: &mut RouteCtx<'_>, _: &str, v: Value<'_>) -> bool {
    let new_user = v.as_str().into_owned();
    rewrite(c, |uri, u| {
        let mut s = uri.to_owned();
        match (u.user, new_user.is_empty()) {
            (Some(old), false) => s.replace_range(range_of(uri, old), &new_user),
            (Some(old), true) => {
                let r = range_of(uri, old);
                let end = uri[r.end..].find('@').map_or(r.end, |i| r.end + i + 1);
                s.replace_range(r.start..end, "");
            }
            (None, false) => {
                let at = range_of(uri, u.host_raw).start;
                s.insert_str(at, &format!("{new_user}@"));
            }
            (None, true) => {}
        }
        s
    })
}

fn set_rhost(c: &mut RouteCtx<'_>, _: &str, v: Value<'_>) -> bool {
    let new_host = v.as_str().into_owned();
    rewrite(c, |uri, u| {
        let mut s = uri.to_owned();
        s.replace_range(range_of(uri, u.host_raw), &new_host);
        s
    })
}

fn set_rport(c: &mut RouteCtx<'_>, _: &str, v: Value<'_>) -> bool {
    let new_port = match v {
        Value::Null => None,
        v => Some(v.as_int()),
    };
    if new_port.is_some_and(|p| !(1..=65535).contains(&p)) {
        return false;
    }
    rewrite(c, |uri, u| {
        let host = range_of(uri, u.host_raw);
        // The port, if any, follows the host as ":digits".
        let rest = &uri[host.end..];
        let old_len = rest
            .strip_prefix(':')
            .map_or(0, |r| 1 + r.bytes().take_while(u8::is_ascii_digit).count());
        let mut s = uri.to_owned();
        let text = new_port.map_or(String::new(), |p| format!(":{p}"));
        s.replace_range(host.end..host.end + old_len, &text);
        s
    })
}

fn get_du<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    opt(c.set.du.as_deref())
}

fn set_du(c: &mut RouteCtx<'_>, _: &str, v: Value<'_>) -> bool {
    if v == Value::Null || v.as_str().is_empty() {
        c.set.du = None;
        return true;
    }
    let du = v.as_str().into_owned();
    if sip(&du).is_none() {
        tracing::warn!(target: "script", %du, "$du must be a SIP URI");
        return false;
    }
    c.set.du = Some(du);
    true
}

fn get_fu<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    opt(from_uri(c.msg))
}

fn get_fuser<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    part(from_uri(c.msg), user)
}

fn get_fhost<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    part(from_uri(c.msg), host)
}

fn get_tu<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    opt(to_uri(c.msg))
}

fn get_tuser<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    part(to_uri(c.msg), user)
}

fn get_thost<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    part(to_uri(c.msg), host)
}

fn get_ci<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    opt(c.msg.call_id().ok())
}

fn get_cs<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    c.msg
        .cseq()
        .map_or(Value::Null, |s| Value::Int(i64::from(s.seq)))
}

fn get_rm<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    match c.msg.method() {
        Some(m) => text(m.as_str()),
        None => opt(c.msg.cseq().ok().map(|s| s.method.as_str())),
    }
}

fn get_rs<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    match (c.phase, c.failure) {
        (Phase::Failure, Some(f)) => Value::Int(i64::from(f.status)),
        _ => c
            .msg
            .status()
            .map_or(Value::Null, |s| Value::Int(i64::from(s))),
    }
}

fn get_rr<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    match (c.phase, c.failure) {
        (Phase::Failure, Some(f)) => text(f.reason),
        _ => opt(c.msg.reason()),
    }
}

fn get_si<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    Value::Str(Cow::Owned(c.src.addr.ip().to_string()))
}

fn get_sp<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    Value::Int(i64::from(c.src.addr.port()))
}

fn get_ri<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    Value::Str(Cow::Owned(c.local.ip().to_string()))
}

fn get_rp_local<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    Value::Int(i64::from(c.local.port()))
}

fn get_proto<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    text(c.src.protocol.name())
}

fn get_ua<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    opt(c.msg.header(HeaderName::UserAgent).map(|h| h.value))
}

fn get_hdr<'b>(c: &'b RouteCtx<'_>, name: &str) -> Value<'b> {
    opt(c.msg.header_str(name).map(|h| h.value))
}

fn get_body<'b>(c: &'b RouteCtx<'_>, _: &str) -> Value<'b> {
    let body = c.msg.body();
    if body.is_empty() {
        return Value::Null;
    }
    Value::Str(Cow::Owned(String::from_utf8_lossy(&body).into_owned()))
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    let ro = |name: &'static str, get: GetFn<ProxyEnv>| -> Variable<ProxyEnv> {
        Variable {
            name,
            param: false,
            get,
            set: None,
        }
    };
    let rw =
        |name: &'static str, get: GetFn<ProxyEnv>, set: SetFn<ProxyEnv>| -> Variable<ProxyEnv> {
            Variable {
                name,
                param: false,
                get,
                set: Some(set),
            }
        };
    r.variable(rw("ru", get_ru, set_ru));
    r.variable(rw("rU", get_ruser, set_ruser));
    r.variable(rw("rd", get_rhost, set_rhost));
    r.variable(rw("rp", get_rport, set_rport));
    r.variable(rw("du", get_du, set_du));
    for (name, get) in [
        ("fu", get_fu as GetFn<ProxyEnv>),
        ("fU", get_fuser),
        ("fd", get_fhost),
        ("tu", get_tu),
        ("tU", get_tuser),
        ("td", get_thost),
        ("ci", get_ci),
        ("cs", get_cs),
        ("rm", get_rm),
        ("rs", get_rs),
        ("rr", get_rr),
        ("si", get_si),
        ("sp", get_sp),
        ("Ri", get_ri),
        ("Rp", get_rp_local),
        ("proto", get_proto),
        ("ua", get_ua),
        ("body", get_body),
    ] {
        r.variable(ro(name, get));
    }
    r.variable(Variable {
        name: "hdr",
        param: true,
        get: get_hdr,
        set: None,
    });
}
