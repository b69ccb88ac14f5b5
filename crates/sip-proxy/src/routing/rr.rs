//! Route handling and request tests: `record_route`, `loose_route`, `has_totag`, `is_method`.

use script::{ArgType, Function, Registry, RouteMask, Value};

use super::{ProxyEnv, RouteCtx};
use crate::route::preprocess;

fn record_route(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let protocol = c.src.protocol;
    match c
        .core
        .config()
        .inbound_interface(protocol, c.src.addr, c.local)
    {
        Some(local) => {
            c.edits.record_route = Some((protocol, local));
            1
        }
        None => -1,
    }
}

fn loose_route(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    use sip_message::HeaderName;
    // Only an in-dialog request with a Route has a key to check; in-dialog as `has_totag()`
    // reads it (the parsed To), so that the script and this check never disagree.
    let to_tag = c.msg.header(HeaderName::Route).and_then(|_| c.to_tag());
    let in_dialog = to_tag.is_some();
    let edit = preprocess(
        c.core.config(),
        &c.core.refreshed,
        c.msg,
        to_tag,
        c.src.addr,
    );
    if let Some(uri) = &edit.new_uri {
        // Strict routing: the last Route is the real Request-URI.
        c.set.ruri = Some(uri.clone());
        c.set.binding = None;
    }
    // As Kamailio's: 1 when our Route entries were there and were taken off (or a strict
    // router's fixed), -2 when an in-dialog request's entry of ours lacks our key for its
    // dialog (a Route set we did not put there: taken off all the same), -3 when the top
    // Route is not ours (preloaded, or someone else's: the request would be sent to it), -1
    // without Route.
    let code = if edit.pop_routes > 0 || edit.new_uri.is_some() {
        if in_dialog && edit.key.is_none() {
            -2
        } else {
            1
        }
    } else if edit.next_is_route {
        -3
    } else {
        -1
    };
    c.edits.route = edit;
    code
}

fn has_totag(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if c.to_tag().is_some() {
        1
    } else {
        -1
    }
}

fn is_method(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let list = args.first().map(Value::as_str).unwrap_or_default();
    let method = match c.msg.method_token() {
        Some(m) => m,
        None => match c.msg.cseq() {
            Ok(s) => s.method.as_str(),
            Err(_) => return -1,
        },
    };
    // Bytes and ASCII trimming: every request runs a few of these.
    let method = method.as_bytes();
    if list
        .as_bytes()
        .split(|&b| b == b'|')
        .any(|m| m.trim_ascii() == method)
    {
        1
    } else {
        -1
    }
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    r.function(Function {
        name: "record_route",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: record_route,
    });
    r.function(Function {
        name: "loose_route",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: loose_route,
    });
    r.function(Function {
        name: "has_totag",
        args: &[],
        required: 0,
        routes: RouteMask::ANY,
        call: has_totag,
    });
    r.function(Function {
        name: "is_method",
        args: &[ArgType::Str],
        required: 1,
        routes: RouteMask::ANY,
        call: is_method,
    });
}
