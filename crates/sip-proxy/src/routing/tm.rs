//! Transactions: `t_relay`, `t_reply`, `forward`, `redirect`, `t_on_failure`, `t_on_branch`,
//! `t_on_reply`.

use script::{ArgType, Function, Registry, RouteId, RouteKind, RouteMask, Value};

use super::sl::status_arg;
use super::{Phase, ProxyEnv, RouteCtx};

fn ret(ok: bool) -> i64 {
    if ok {
        1
    } else {
        -1
    }
}

fn t_relay(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let core = c.core;
    ret(match c.phase {
        Phase::Request => core.relay(c, true),
        Phase::Failure => core.relay_more(c),
        Phase::Reply | Phase::Branch => false,
    })
}

fn forward(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    if let Some(uri) = args.first() {
        if !matches!(uri, Value::Null) {
            c.set.du = Some(uri.as_str().into_owned());
        }
    }
    let core = c.core;
    ret(core.relay(c, false))
}

fn t_reply(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let Some(code) = status_arg(args) else {
        return -1;
    };
    let reason = args.get(1).map(Value::as_str).unwrap_or_default();
    let core = c.core;
    ret(core.t_reply(c, code, &reason))
}

fn redirect(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let contacts = match args.first() {
        Some(uri) if !matches!(uri, Value::Null) => format!("<{}>", uri.as_str()),
        _ => {
            let main = c
                .ruri()
                .map(|u| (u.to_owned(), c.set.binding.as_ref().map_or(1000, |b| b.q)));
            let others = c.set.branches.iter().map(|b| (b.contact.clone(), b.q));
            let all: Vec<String> = main
                .into_iter()
                .chain(others)
                .map(|(u, q)| format!("<{u}>;q={}.{:03}", q / 1000, q % 1000))
                .collect();
            all.join(", ")
        }
    };
    if contacts.is_empty() {
        return -1;
    }
    let core = c.core;
    ret(core.respond(c, 302, "Moved Temporarily", &[("Contact", &contacts)]))
}

fn t_on_failure(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    c.tx.on_failure = args.first().and_then(RouteId::from_value);
    1
}

/// In a failure route: 1 when the caller cancelled the request.
fn t_is_canceled(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    ret(c.failure.is_some_and(|f| f.canceled))
}

/// In a failure route: 1 when the best reply is a timeout of ours (no response, or a
/// ringing branch timer C ended), not an answer of the callee.
fn t_branch_timeout(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    ret(c.failure.is_some_and(|f| f.timed_out))
}

fn t_on_branch(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    c.tx.on_branch = args.first().and_then(RouteId::from_value);
    1
}

fn t_on_reply(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    c.tx.on_reply = args.first().and_then(RouteId::from_value);
    1
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    let req = RouteMask::REQUEST;
    let req_fail = RouteMask(RouteMask::REQUEST.0 | RouteMask::FAILURE.0);
    let req_fail_br = RouteMask(req_fail.0 | RouteMask::BRANCH.0);
    r.function(Function {
        name: "t_relay",
        args: &[],
        required: 0,
        routes: req_fail,
        call: t_relay,
    });
    r.function(Function {
        name: "forward",
        args: &[ArgType::Str],
        required: 0,
        routes: req,
        call: forward,
    });
    r.function(Function {
        name: "t_reply",
        args: &[ArgType::Int, ArgType::Str],
        required: 2,
        routes: req_fail,
        call: t_reply,
    });
    r.function(Function {
        name: "redirect",
        args: &[ArgType::Str],
        required: 0,
        routes: req,
        call: redirect,
    });
    let fail = RouteMask::FAILURE;
    r.function(Function {
        name: "t_is_canceled",
        args: &[],
        required: 0,
        routes: fail,
        call: t_is_canceled,
    });
    r.function(Function {
        name: "t_branch_timeout",
        args: &[],
        required: 0,
        routes: fail,
        call: t_branch_timeout,
    });
    r.function(Function {
        name: "t_on_failure",
        args: &[ArgType::Route(RouteKind::Failure)],
        required: 1,
        routes: req_fail,
        call: t_on_failure,
    });
    r.function(Function {
        name: "t_on_branch",
        args: &[ArgType::Route(RouteKind::Branch)],
        required: 1,
        routes: req_fail_br,
        call: t_on_branch,
    });
    r.function(Function {
        name: "t_on_reply",
        args: &[ArgType::Route(RouteKind::Reply)],
        required: 1,
        routes: req_fail_br,
        call: t_on_reply,
    });
}
