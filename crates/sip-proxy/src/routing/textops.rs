//! Header changes: `append_hf`, `remove_hf`, `is_present_hf`.

use script::{ArgType, Function, Registry, RouteMask, Value};
use sip_message::HeaderName;

use super::{ProxyEnv, RouteCtx};

/// Headers the proxy itself maintains; removing them would break the message.
const PROTECTED: &[HeaderName] = &[
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::ContentLength,
    HeaderName::MaxForwards,
    HeaderName::RecordRoute,
];

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// `Name: value` with an optional trailing CRLF, as one header field line.
pub(crate) fn header_line(text: &str) -> Option<(&str, &str)> {
    let line = text.strip_suffix("\r\n").unwrap_or(text);
    let (name, value) = line.split_once(':')?;
    let (name, value) = (name.trim(), value.trim());
    (is_token(name) && !value.contains(['\r', '\n'])).then_some((name, value))
}

fn append_hf(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let text = args.first().map(Value::as_str).unwrap_or_default();
    match header_line(&text) {
        Some((name, value)) => {
            c.edits.append.push(format!("{name}: {value}"));
            1
        }
        None => {
            tracing::warn!(target: "script", header = %text, "append_hf: not a header field");
            -1
        }
    }
}

fn remove_hf(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let name = args.first().map(Value::as_str).unwrap_or_default();
    let known = HeaderName::from_bytes(name.as_bytes());
    if PROTECTED.contains(&known) {
        tracing::warn!(target: "script", %name, "remove_hf: the proxy maintains this header");
        return -1;
    }
    let present = c.msg.header_str(&name).is_some();
    if known == HeaderName::Route {
        // Not followed either.
        c.edits.route.drop_routes = true;
        c.edits.route.next_is_route = false;
    } else {
        c.edits.remove.push(name.into_owned());
    }
    if present {
        1
    } else {
        -1
    }
}

fn is_present_hf(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let name = args.first().map(Value::as_str).unwrap_or_default();
    if c.msg.header_str(&name).is_some() {
        1
    } else {
        -1
    }
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    r.function(Function {
        name: "append_hf",
        args: &[ArgType::Str],
        required: 1,
        routes: RouteMask::ANY,
        call: append_hf,
    });
    r.function(Function {
        name: "remove_hf",
        args: &[ArgType::Str],
        required: 1,
        routes: RouteMask::ANY,
        call: remove_hf,
    });
    r.function(Function {
        name: "is_present_hf",
        args: &[ArgType::Str],
        required: 1,
        routes: RouteMask::ANY,
        call: is_present_hf,
    });
}
