//! Checks and stateless replies: `sanity_check`, `mf_process_maxfwd_header`,
//! `sl_send_reply`, `options_reply`.

use script::{ArgType, Function, Registry, RouteMask, Value};

use super::{ProxyEnv, RouteCtx};

fn sanity_check(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let core = c.core;
    if core.sanity(c) {
        1
    } else {
        -1
    }
}

fn maxfwd(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    match c.msg.max_forwards() {
        Ok(Some(0)) => -1,
        Ok(Some(_)) => 1,
        // Missing (or unreadable): forwarding writes one with this value.
        _ => {
            let n = args.first().map_or(70, Value::as_int).clamp(1, 255);
            c.edits.max_forwards = u8::try_from(n).ok();
            1
        }
    }
}

fn sl_send_reply(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let Some(code) = status_arg(args) else {
        return -1;
    };
    let reason = args.get(1).map(Value::as_str).unwrap_or_default();
    let core = c.core;
    ret(core.respond(c, code, &reason, &[]))
}

fn ret(ok: bool) -> i64 {
    if ok {
        1
    } else {
        -1
    }
}

/// A status code argument: 100 to 699.
pub(super) fn status_arg(args: &[Value<'_>]) -> Option<u16> {
    let code = args.first().map(Value::as_int)?;
    match u16::try_from(code) {
        Ok(c @ 100..=699) => Some(c),
        _ => {
            tracing::warn!(target: "script", code, "not a SIP status code: no reply sent");
            None
        }
    }
}

fn options_reply(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if c.msg.method() != Some(sip_message::Method::Options) {
        return -1;
    }
    let extra = [
        ("Allow", crate::core::ALLOW),
        ("Accept", "application/sdp"),
        ("Supported", "path"),
    ];
    let core = c.core;
    ret(core.respond(c, 200, "OK", &extra))
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    let req = RouteMask::REQUEST;
    r.function(Function {
        name: "sanity_check",
        args: &[],
        required: 0,
        routes: req,
        call: sanity_check,
    });
    r.function(Function {
        name: "mf_process_maxfwd_header",
        args: &[ArgType::Int],
        required: 1,
        routes: req,
        call: maxfwd,
    });
    r.function(Function {
        name: "sl_send_reply",
        args: &[ArgType::Int, ArgType::Str],
        required: 2,
        routes: req,
        call: sl_send_reply,
    });
    r.function(Function {
        name: "options_reply",
        args: &[],
        required: 0,
        routes: req,
        call: options_reply,
    });
}
