//! Running the routes a transaction triggers: reply routes for each reply received, the
//! failure route once every branch has failed.

use std::net::SocketAddr;
use std::time::Instant;

use script::Outcome;
use sip_message::Message;

use crate::context::Context;
use crate::core::Core;
use crate::forward::edit_response;
use crate::routing::{FailureInfo, Phase, RouteCtx};
use crate::target::Destination;
use crate::{Command, Resume};

impl Core {
    /// Runs the global `reply_route` and the transaction's `t_on_reply` route on a reply.
    /// `None` when the script dropped it; otherwise the reply, with the script's header
    /// changes applied.
    pub(crate) fn reply_routes(
        &self,
        now: Instant,
        ctx: Option<&mut Context>,
        resp: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) -> Option<Message> {
        let current = self.script();
        let current: &std::sync::Arc<_> = &current;
        let (routing, request) = match ctx {
            Some(c) => (c.routing.as_deref_mut(), c.request.as_ref()),
            None => (None, None),
        };
        let script = routing.as_ref().map_or(current, |r| &r.script);
        let on_reply = routing.as_ref().and_then(|r| r.tx.on_reply);
        if !script.has_reply_route() && on_reply.is_none() {
            return Some(resp);
        }
        let mut c = RouteCtx::new(self, script, now, Phase::Reply, &resp, src, local, out);
        c.request = request;
        if let Some(r) = &routing {
            c.tx = r.tx.clone();
        }
        let mut outcome = script.run_reply(&mut c);
        if let (Outcome::Done, Some(route)) = (outcome, on_reply) {
            outcome = script.run_route(route, &mut c);
        }
        let (tx, edits) = (std::mem::take(&mut c.tx), std::mem::take(&mut c.edits));
        drop(c);
        if let Some(r) = routing {
            r.tx = tx;
        }
        let status = resp.status().unwrap_or(0);
        if outcome == Outcome::Drop {
            if status < 200 {
                return None;
            }
            tracing::warn!(target: "script", status, "a final reply cannot be dropped: relayed");
        }
        if edits.append.is_empty() && edits.remove.is_empty() {
            return Some(resp);
        }
        Message::parse(edit_response(&resp, &edits.remove, &edits.append)).ok()
    }

    /// Runs the failure route of context `id` if one is due, and acts on what it decided.
    pub(crate) fn failure_routes(
        &self,
        now: Instant,
        id: u64,
        ctx: &mut Context,
        out: &mut Vec<Command>,
    ) {
        while let Some((mut routing, request, status, reason)) = ctx.take_failure() {
            let Some(route) = routing.tx.on_failure.take() else {
                break;
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
                next_branch: ctx.next_branch(),
                status,
                reason: &reason,
            });
            script.run_route(route, &mut c);
            routing.tx = std::mem::take(&mut c.tx);
            let effects = std::mem::take(&mut c.effects);
            drop(c);
            if !effects.resolve.is_empty() {
                // Armed again for the run after the answer.
                routing.tx.on_failure = Some(route);
                out.push(Command::Resolve {
                    hosts: effects.resolve.clone(),
                    then: Resume::Failure { context: id },
                });
            }
            ctx.after_failure(now, self.config(), routing, effects, out);
        }
    }
}
