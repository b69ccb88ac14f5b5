//! Following calls: `dlg_manage()`, and call limits per profile: `dlg_limit()`.

use script::{ArgType, Function, Registry, RouteMask, Value};
use sip_message::Method;

use super::{ProxyEnv, RouteCtx};

/// Most profiles one call counts under, and the longest name of one.
const MAX_PROFILES: usize = 4;
const MAX_PROFILE_LEN: usize = 256;

/// True for an initial INVITE (no To tag).
fn initial_invite(c: &RouteCtx<'_>) -> bool {
    c.msg.method() == Some(Method::Invite) && c.to_tag().is_none()
}

/// `dlg_manage()`, for an initial INVITE: once relayed, its call's dialogs are followed
/// (early, confirmed, ended) and a call detail record made when it ends. -1 for any other
/// request.
fn dlg_manage(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if !initial_invite(c) {
        return -1;
    }
    c.edits.dialog = true;
    1
}

/// `dlg_limit(profile, max)`, for an initial INVITE: -1 when `max` calls counted under
/// `profile` (any text: a user, a domain) are in progress already, or when its call (its
/// Call-ID and From tag) is followed already but for a spiral of it, which its first pass
/// counts; else the call is followed and counts under it from now until it is over, and 1.
/// -2 for any other request, one without a From tag, an empty or too long profile, or a
/// call with too many profiles.
fn dlg_limit(c: &mut RouteCtx<'_>, args: &[Value<'_>]) -> i64 {
    let profile = args[0].as_str();
    let max = args[1].as_int();
    if !initial_invite(c)
        || profile.is_empty()
        || profile.len() > MAX_PROFILE_LEN
        || profile.chars().any(char::is_control)
        || c.edits.profiles.len() >= MAX_PROFILES
    {
        return -2;
    }
    if c.edits.profiles.iter().any(|p| *p == profile) {
        return 1;
    }
    // The same call again, in a new transaction, would go uncounted.
    match c.core.dialogs.is_followed(c.msg) {
        None => return -2,
        Some(true) if c.core.looped(c.msg) => return 1,
        Some(true) => return -1,
        Some(false) => {}
    }
    let in_progress = i64::from(c.core.dialogs.profile_size(&profile));
    if in_progress >= max {
        return -1;
    }
    c.edits.dialog = true;
    c.edits.profiles.push(profile.into_owned());
    1
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    r.function(Function {
        name: "dlg_manage",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: dlg_manage,
    });
    r.function(Function {
        name: "dlg_limit",
        args: &[ArgType::Str, ArgType::Int],
        required: 2,
        routes: RouteMask::REQUEST,
        call: dlg_limit,
    });
}
