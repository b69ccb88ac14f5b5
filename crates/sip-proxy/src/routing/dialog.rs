//! Following calls: `dlg_manage()`.

use script::{Function, Registry, RouteMask, Value};
use sip_message::Method;

use super::{ProxyEnv, RouteCtx};

/// `dlg_manage()`, for an initial INVITE: once relayed, its call's dialogs are followed
/// (early, confirmed, ended) and a call detail record made when it ends. -1 for any other
/// request.
fn dlg_manage(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    let initial = c.msg.to().is_ok_and(|t| t.tag().is_none());
    if c.msg.method() != Some(Method::Invite) || !initial {
        return -1;
    }
    c.edits.dialog = true;
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
}
