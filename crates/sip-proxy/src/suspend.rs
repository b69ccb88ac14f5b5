//! Suspend and resume: a transaction that waits for something outside the core (a DNS
//! answer, its bindings written to storage) is parked in its context with what it had
//! decided, and goes on exactly once when the IO layer hands the answer back. Nothing runs
//! twice: not the script, not an authentication check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use registrar::{Binding, Change};
use sip_message::Message;

use crate::context::Context;
use crate::core::Core;
use crate::routing::{DestSet, Edits, FailureInfo, Phase, ProxyScript, RouteCtx, TxScript};
use crate::shard::Shards;
use crate::target::Destination;
use crate::Command;

/// Identifies what waits for the IO layer; hand it back to [`Core::resume`] (after a
/// [`Command::Resolve`]) or [`Core::persisted`] (after a [`Command::Persist`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub(crate) context: u64,
}

/// What a parked context waits for, and how it goes on.
#[derive(Debug)]
pub(crate) enum Parked {
    /// `t_relay` or `forward` in a request route, waiting for names.
    Relay(Box<RelayState>),
    /// `t_relay` in a failure route, waiting for names.
    FailureRelay(Box<RelayState>),
    /// `t_relay` or `forward` of a request whose SDP is with the media relay.
    Media(Box<RelayState>),
    /// A REGISTER's 200 OK, waiting for its bindings to be written; the AOR's bindings
    /// before, put back if they cannot be.
    Persist {
        ok: Bytes,
        previous: std::sync::Arc<Vec<Binding>>,
    },
}

/// What became of the changes a [`Command::Persist`] carried.
#[derive(Debug, Clone, Copy)]
pub enum Written<'a> {
    /// They are stored.
    Stored,
    /// They could not be stored: these are they.
    Failed(&'a [Change]),
}

/// What the script had decided when a relay had to wait: enough to finish it.
#[derive(Debug)]
pub(crate) struct RelayState {
    pub(crate) script: Arc<ProxyScript>,
    pub(crate) msg: Message,
    pub(crate) src: Destination,
    pub(crate) local: SocketAddr,
    pub(crate) tx: TxScript,
    pub(crate) edits: Edits,
    pub(crate) set: DestSet,
    /// `t_relay` (true) or `forward` (false).
    pub(crate) stateful: bool,
    /// The media relay has answered for the request already.
    pub(crate) media_asked: bool,
}

impl RelayState {
    /// The decisions of a route run so far.
    pub(crate) fn of(c: &RouteCtx<'_>, stateful: bool) -> RelayState {
        RelayState {
            script: c.script.clone(),
            msg: c.msg.clone(),
            src: c.src,
            local: c.local,
            tx: c.tx.clone(),
            edits: c.edits.clone(),
            set: c.set.clone(),
            stateful,
            media_asked: c.media_asked,
        }
    }

    /// A route context that carries on from these decisions (`resumed`: after a DNS answer).
    pub(crate) fn context<'a>(
        &'a self,
        core: &'a Core,
        now: Instant,
        phase: Phase,
        out: &'a mut Vec<Command>,
        resumed: bool,
    ) -> RouteCtx<'a> {
        let mut c = RouteCtx::new(
            core,
            &self.script,
            now,
            phase,
            &self.msg,
            self.src,
            self.local,
            out,
        );
        c.tx = self.tx.clone();
        c.edits = self.edits.clone();
        c.set = self.set.clone();
        c.resumed = resumed;
        c.media_asked = self.media_asked;
        c
    }
}

impl Core {
    /// Parks context `id` (or, without one, a context of its own) until the names are
    /// looked up; returns the command that asks for them.
    pub(crate) fn park(
        &self,
        now: Instant,
        id: Option<u64>,
        hosts: Vec<crate::Lookup>,
        parked: Parked,
    ) -> Command {
        Command::Resolve {
            hosts,
            then: self.park_context(now, id, parked),
        }
    }

    /// Parks context `id` (or, without one, a context of its own) with `parked`; gives what
    /// resumes it.
    pub(crate) fn park_context(&self, now: Instant, id: Option<u64>, parked: Parked) -> Resume {
        let id = match id {
            Some(id) => {
                let cfg = self.config();
                self.with_ctx(id, |ctx| ctx.park(now, cfg, parked));
                id
            }
            None => self.park_alone(now, parked),
        };
        Resume { context: id }
    }

    /// Goes on with what waited for a DNS answer ([`Command::Resolve`]), once the answers
    /// are stored with [`dns_answer`](Self::dns_answer). A name still unknown (the lookup
    /// failed or was refused) counts as one that does not resolve. Only the first call for
    /// a `then` does anything.
    pub fn resume(&self, now: Instant, then: Resume) -> Vec<Command> {
        let id = then.context;
        let mut out = Vec::new();
        let parked = self.with_ctx(id, Context::take_relay);
        let Some(parked) = parked else {
            // Not a context: a request of our own waiting for its next hop.
            self.start_outgoing(now, id, true, &mut out);
            return out;
        };
        match parked {
            Some(Parked::Relay(state)) => {
                let mut c = state.context(self, now, Phase::Request, &mut out, true);
                c.txn = Some(id);
                self.relay(&mut c, state.stateful);
                drop(c);
                self.release_if_unused(id);
            }
            Some(Parked::FailureRelay(state)) => self.resume_failure(now, id, &state, &mut out),
            _ => {}
        }
        out
    }

    /// A failure route's `t_relay` goes on: the branches it asked for, or (none resolve)
    /// the best reply upstream.
    fn resume_failure(&self, now: Instant, id: u64, state: &RelayState, out: &mut Vec<Command>) {
        let Some(status) = self.with_ctx(id, |ctx| ctx.failure_status()).flatten() else {
            return;
        };
        let mut c = state.context(self, now, Phase::Failure, out, true);
        c.failure = Some(FailureInfo {
            id,
            next_branch: status.next_branch,
            status: status.status,
            reason: &status.reason,
            canceled: status.canceled,
            timed_out: status.timed_out,
        });
        self.relay_more(&mut c);
        let groups = std::mem::take(&mut c.effects.groups);
        drop(c);
        let cfg = self.config();
        self.with_ctx(id, |ctx| {
            ctx.resume_failure(now, cfg, groups, out);
            self.take_noted(now, ctx);
        });
        self.run_failure_routes(now, id, out);
    }

    /// The bindings a [`Command::Persist`] carried are written, or could not be: the
    /// REGISTER that waited is answered 200, or (its changes taken back) 500 with
    /// Retry-After. Several that failed together are reported newest first.
    ///
    /// A REGISTER answered is forgotten at once ([`Context::is_done`]): a retransmission is
    /// routed again, and gets the same answer (the registrar changes nothing for the same
    /// Call-ID and CSeq, the authenticator accepts the same credentials again in the same
    /// request).
    pub fn persisted(&self, now: Instant, then: Resume, written: Written<'_>) -> Vec<Command> {
        self.writes_done(now);
        let mut out = Vec::new();
        let (cfg, id) = (self.config(), then.context);
        let mut shard = self.shards().lock(Shards::of(id));
        let Some(ctx) = shard.contexts.get_mut(&id) else {
            return out;
        };
        let Some(Parked::Persist { ok, previous }) = ctx.take_persist() else {
            return out;
        };
        match written {
            Written::Stored => {
                ctx.answer(now, cfg, 200, ok, &mut out);
                shard.settle(id);
            }
            Written::Failed(changes) => {
                self.location.undo(&previous, changes);
                // A browser's binding put back whose connection closed meanwhile goes again
                // (its close found the binding another connection had made then).
                let closed = |b: &&registrar::Binding| {
                    b.source_addr()
                        .is_some_and(|(p, a)| p.is_websocket() && !self.ws_registered.is_open(p, a))
                };
                let gone: Vec<registrar::Change> = previous
                    .iter()
                    .filter(|b| changes.iter().any(|c| b.is_changed_by(c)))
                    .filter(closed)
                    .filter_map(|b| self.location.remove_binding(b))
                    .collect();
                if !gone.is_empty() {
                    out.push(Command::Persist {
                        changes: gone,
                        then: None,
                    });
                }
                let why = "Server Internal Error (bindings not stored)";
                if let Some(error) = ctx.own_reply(cfg, 500, why, &[("Retry-After", "5")]) {
                    ctx.answer(now, cfg, 500, error, &mut out);
                }
                shard.settle(id);
            }
        }
        out
    }

    /// A context with no request to match, for what waits without one (an ACK relayed
    /// statelessly to a name).
    fn park_alone(&self, now: Instant, parked: Parked) -> u64 {
        let id = self.shards().new_id_any();
        let (Parked::Relay(state) | Parked::Media(state)) = &parked else {
            return id;
        };
        if let Some(mut ctx) = self.bare_context(now, &state.msg, state.src) {
            ctx.park(now, self.config(), parked);
            self.shards().lock(Shards::of(id)).insert(id, ctx, false);
        }
        id
    }
}
