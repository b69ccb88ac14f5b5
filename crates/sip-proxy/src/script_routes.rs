//! Running the routes a transaction triggers: reply routes for each reply received, the
//! failure route once every branch has failed. Both run without any shard lock: what they
//! need is copied (or taken) out of the context first, and what they decided goes back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use script::{Outcome, RouteId};
use sip_message::Message;

use crate::core::Core;
use crate::forward::edit_response;
use crate::routing::{FailureInfo, Phase, ProxyScript, RouteCtx, TxScript};
use crate::suspend::Parked;
use crate::target::Destination;
use crate::Command;

/// What a context's reply routes need: its script (`None`: the current one), its script
/// state, its request while kept, and its `t_on_reply` route.
#[derive(Debug)]
pub(crate) struct ReplyInput {
    pub(crate) script: Option<Arc<ProxyScript>>,
    pub(crate) tx: TxScript,
    pub(crate) request: Option<Message>,
    pub(crate) on_reply: Option<RouteId>,
}

impl Core {
    /// Runs the global `reply_route` and the transaction's `t_on_reply` route on a reply.
    /// Gives the reply (`None` when the script dropped it), with the script's header
    /// changes applied, and the transaction's script state as the routes left it.
    pub(crate) fn reply_routes(
        &self,
        now: Instant,
        input: Option<ReplyInput>,
        resp: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) -> (Option<Message>, TxScript) {
        let current = self.script();
        let (script, tx, request, on_reply) = match input {
            Some(i) => (i.script, i.tx, i.request, i.on_reply),
            None => (None, TxScript::default(), None, None),
        };
        let script: &Arc<ProxyScript> = script.as_ref().unwrap_or(&current);
        if !script.has_reply_route() && on_reply.is_none() {
            return (Some(resp), tx);
        }
        let mut c = RouteCtx::new(self, script, now, Phase::Reply, &resp, src, local, out);
        c.request = request.as_ref();
        c.tx = tx;
        let mut outcome = script.run_reply(&mut c);
        if let (Outcome::Done, Some(route)) = (outcome, on_reply) {
            outcome = script.run_route(route, &mut c);
        }
        let (tx, edits) = (std::mem::take(&mut c.tx), std::mem::take(&mut c.edits));
        drop(c);
        let status = resp.status().unwrap_or(0);
        if outcome == Outcome::Drop {
            if status < 200 {
                return (None, tx);
            }
            tracing::warn!(target: "script", status, "a final reply cannot be dropped: relayed");
        }
        if edits.append.is_empty() && edits.remove.is_empty() {
            return (Some(resp), tx);
        }
        let edited = Message::parse(edit_response(&resp, &edits.remove, &edits.append)).ok();
        (edited, tx)
    }

    /// Runs the failure route of context `id` while one is due, and acts on what it
    /// decided: new branches, an answer of its own, a wait for DNS, or the best reply.
    pub(crate) fn run_failure_routes(&self, now: Instant, id: u64, out: &mut Vec<Command>) {
        let cfg = self.config();
        loop {
            let Some(Some(due)) = self.with_ctx(id, |ctx| ctx.take_failure()) else {
                return;
            };
            let (mut routing, request, status) = due;
            let Some(route) = routing.tx.on_failure.take() else {
                self.with_ctx(id, |ctx| {
                    ctx.after_failure(now, cfg, routing, Default::default(), out);
                    self.take_noted(now, ctx);
                });
                return;
            };
            let script = routing.script.clone();
            let mut c = RouteCtx::new(
                self,
                &script,
                now,
                Phase::Failure,
                &request,
                routing.src,
                routing.local,
                out,
            );
            c.tx = routing.tx.clone();
            c.edits = routing.edits.clone();
            c.set.ruri = routing.ruri.clone();
            c.failure = Some(FailureInfo {
                id,
                next_branch: request_branches(self, id),
                status: status.status,
                reason: &status.reason,
                canceled: status.canceled,
                timed_out: status.timed_out,
            });
            script.run_route(route, &mut c);
            routing.tx = std::mem::take(&mut c.tx);
            let mut effects = std::mem::take(&mut c.effects);
            drop(c);
            if let Some((hosts, state)) = effects.parked.take() {
                out.push(self.park(now, Some(id), hosts, Parked::FailureRelay(state)));
            }
            self.with_ctx(id, |ctx| {
                ctx.after_failure(now, cfg, routing, effects, out);
                self.take_noted(now, ctx);
            });
        }
    }
}

/// Index the next branch of context `id` gets.
fn request_branches(core: &Core, id: u64) -> usize {
    core.with_ctx(id, |ctx| ctx.next_branch()).unwrap_or(0)
}
