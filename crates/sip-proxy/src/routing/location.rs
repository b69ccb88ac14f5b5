//! The registrar and the location service: `save("location")`, `lookup("location")`.

use script::{ArgType, Function, Registry, RouteMask, Value};
use sip_message::Method;

use super::{ProxyEnv, RouteCtx};

const TABLES: &[&str] = &["location"];

fn save(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if c.msg.method() != Some(Method::Register) {
        tracing::warn!(target: "script", "save: not a REGISTER");
        return -1;
    }
    let core = c.core;
    if core.register(c) {
        1
    } else {
        -1
    }
}

fn lookup(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let Some(aor) = c.ruri_parsed().and_then(|u| registrar::aor_of(&u)) else {
        return -1;
    };
    let mut bindings = c.core.lookup(c.now, &aor);
    // One flow per instance (RFC 5626 §5.3); its branch falls back to the others.
    registrar::one_flow_per_instance(&mut bindings);
    let mut bindings = bindings.into_iter();
    let Some(first) = bindings.next() else {
        return -1;
    };
    c.set.ruri = Some(first.contact.clone());
    c.set.binding = Some(first);
    c.set.branches = bindings.collect();
    1
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    r.function(Function {
        name: "save",
        args: &[ArgType::OneOf(TABLES)],
        required: 1,
        routes: RouteMask::REQUEST,
        call: save,
    });
    r.function(Function {
        name: "lookup",
        args: &[ArgType::OneOf(TABLES)],
        required: 1,
        routes: RouteMask(RouteMask::REQUEST.0 | RouteMask::FAILURE.0),
        call: lookup,
    });
}
