//! Messages for users who are offline in the routing language: `m_store()` keeps a
//! MESSAGE, `m_dump()` sends a registering user what was kept for it.

use script::{Function, Registry, RouteMask, Value};
use sip_message::Method;

use super::{ProxyEnv, RouteCtx};

/// `m_store()`, for a MESSAGE to one of our users (its Request-URI as it came, also in a
/// failure route): kept until its user registers (the script then answers 202). 1 when
/// kept; -1 when refused (a request route answers why itself: 413 too large, 480 an
/// automatic message, 486 the user's mailbox full, 503 all full); -2 for another request.
fn m_store(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let Some(msg) = c.request() else {
        return -2;
    };
    if msg.method() != Some(Method::Message) {
        return -2;
    }
    match c.core.store_message(c.now, msg) {
        Ok(write) => {
            c.out.push(write);
            1
        }
        Err(refused) => {
            if c.failure.is_none() {
                c.core.respond(c, refused.code, refused.reason, &[]);
            }
            -1
        }
    }
}

/// `m_dump()`, for a REGISTER: the messages kept for its user go to it, oldest first,
/// once it is registered. 1, or -1 for another request.
fn m_dump(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if c.msg.method() != Some(Method::Register) {
        return -1;
    }
    // (A REGISTER reads nothing more while no message waits.)
    if c.core.messages_kept() == 0 {
        return 1;
    }
    let aor = c.msg.to().ok().and_then(|t| registrar::aor_of(&t.uri));
    match aor {
        Some(aor) => {
            c.core.wake_mailbox(&aor);
            1
        }
        None => -1,
    }
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    r.function(Function {
        name: "m_store",
        args: &[],
        required: 0,
        routes: RouteMask(RouteMask::REQUEST.0 | RouteMask::FAILURE.0),
        call: m_store,
    });
    r.function(Function {
        name: "m_dump",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: m_dump,
    });
}
