//! JSON rendering of a parsed message for `ferrosip parse`.

use serde_json::{json, Map, Value};
use sip_message::header::{self as hdr, AuthHeader, CSeq, Contact, MediaType, NameAddr, Via};
use sip_message::{Header, HeaderName, Host, Message, Params, Uri};

/// The whole message: start line, every header with its parsed fields, body length.
pub(crate) fn message_json(m: &Message) -> Value {
    let mut out = Map::new();
    if let Some(method) = m.method() {
        out.insert("type".into(), "request".into());
        out.insert("method".into(), method.as_str().into());
        let uri = m.request_uri().map_or(Value::Null, |u| uri_json(&u));
        out.insert("request_uri".into(), uri);
    } else {
        out.insert("type".into(), "response".into());
        out.insert("status".into(), m.status().into());
        out.insert("reason".into(), m.reason().into());
    }
    let headers: Vec<Value> = m.headers().map(|h| header_json(&h)).collect();
    out.insert("headers".into(), headers.into());
    out.insert("body_length".into(), m.body().len().into());
    out.insert("trailing_bytes".into(), m.trailing_len().into());
    let sanity = m.sanity_check().err().map(|e| e.kind.to_string());
    out.insert("sanity_error".into(), sanity.into());
    out.into()
}

fn header_json(h: &Header<'_>) -> Value {
    let name = match h.name {
        HeaderName::Other => h.raw_name,
        n => n.as_str(),
    };
    let mut obj = Map::new();
    obj.insert("name".into(), name.into());
    obj.insert("raw_name".into(), h.raw_name.into());
    obj.insert("value".into(), h.value_unfolded().into());
    if let Some(parsed) = parsed_json(h) {
        obj.insert("parsed".into(), parsed);
    }
    obj.into()
}

/// Typed fields of a well-known header; `None` for headers kept as text. The message was
/// validated, so parsing succeeds here.
fn parsed_json(h: &Header<'_>) -> Option<Value> {
    use HeaderName as N;
    let v = h.value;
    let list = |f: &dyn Fn(&str) -> Option<Value>| -> Value { h.values().filter_map(f).collect() };
    Some(match h.name {
        N::Via => list(&|v| Via::parse(v).ok().map(|v| via_json(&v))),
        N::From | N::To | N::ReplyTo | N::ReferTo | N::ReferredBy => {
            name_addr_json(&NameAddr::parse(v).ok()?)
        }
        N::Contact => list(&|v| match Contact::parse(v).ok()? {
            Contact::Star => Some("*".into()),
            Contact::Address(a) => Some(name_addr_json(&a)),
        }),
        N::Route | N::RecordRoute | N::Path => list(&|v| {
            NameAddr::parse_bracketed(v)
                .ok()
                .map(|a| name_addr_json(&a))
        }),
        N::CallId => hdr::parse_call_id(v).ok()?.into(),
        N::CSeq => {
            let c = CSeq::parse(v).ok()?;
            json!({ "seq": c.seq, "method": c.method.as_str() })
        }
        N::MaxForwards => hdr::parse_max_forwards(v).ok()?.into(),
        N::Expires | N::MinExpires => hdr::parse_seconds(v).ok()?.into(),
        N::ContentLength => hdr::parse_content_length(v).ok()?.into(),
        N::ContentType => {
            let t = MediaType::parse(v).ok()?;
            json!({ "type": t.kind, "subtype": t.subtype, "params": params_json(&t.params) })
        }
        N::Require | N::ProxyRequire | N::Supported | N::Unsupported | N::Allow => {
            hdr::parse_tokens(v).filter_map(Result::ok).collect()
        }
        N::Authorization | N::ProxyAuthorization | N::WwwAuthenticate | N::ProxyAuthenticate => {
            let a = AuthHeader::parse(v).ok()?;
            let params: Map<String, Value> = a
                .params()
                .map(|(n, _)| (n.to_owned(), a.get(n).map(|v| v.into_owned()).into()))
                .collect();
            json!({ "scheme": a.scheme, "params": params })
        }
        _ => return None,
    })
}

fn via_json(v: &Via<'_>) -> Value {
    json!({
        "protocol": v.protocol,
        "version": v.version,
        "transport": v.transport,
        "host": host_json(&v.host),
        "port": v.port,
        "params": params_json(&v.params),
    })
}

fn name_addr_json(a: &NameAddr<'_>) -> Value {
    json!({
        "display_name": a.display_name(),
        "uri": uri_json(&a.uri),
        "params": params_json(&a.params),
    })
}

fn uri_json(u: &Uri<'_>) -> Value {
    match u {
        Uri::Sip(s) => json!({
            "scheme": if s.secure { "sips" } else { "sip" },
            "user": s.user,
            "password": s.password,
            "host": host_json(&s.host),
            "port": s.port,
            "params": params_json(&s.params),
            "headers": s.headers,
        }),
        Uri::Tel(t) => {
            json!({ "scheme": "tel", "number": t.number, "params": params_json(&t.params) })
        }
        Uri::Other(o) => json!({ "scheme": o.scheme, "uri": o.raw }),
    }
}

fn host_json(h: &Host<'_>) -> Value {
    let kind = match h {
        Host::Domain(_) => "domain",
        Host::Ipv4(_) => "ipv4",
        Host::Ipv6(_) => "ipv6",
    };
    json!({ "type": kind, "address": h.to_string() })
}

fn params_json(p: &Params<'_>) -> Value {
    p.iter()
        .map(|p| {
            (
                p.name.to_owned(),
                p.unquoted().map(|v| v.into_owned()).into(),
            )
        })
        .collect::<Map<String, Value>>()
        .into()
}
