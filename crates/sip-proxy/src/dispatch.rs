//! Dispatch: a request gets its server transaction the first time it is seen (atomically
//! under its shard's lock, so retransmissions are absorbed and a CANCEL matches it from the
//! first packet, whatever the script does); the routing script then runs without any lock.
//! Responses and timers go to their context; failure and reply routes also run unlocked.

use std::net::SocketAddr;
use std::time::Instant;

use sip_message::{HeaderName, Message, Method};
use sip_transaction::{Role, TransactionKey};

use crate::branch::{stateful_branch, upstream_ok, Upstream};
use crate::context::{Context, Followed, Noted, Received};
use crate::core::{response_destination, upstream_by, Core, STATEFUL, STATELESS};
use crate::forward::strip_top_via;
use crate::route_key;
use crate::routing::{Phase, ProxyScript, RouteCtx};
use crate::shard::Shards;
use crate::target::Destination;
use crate::Command;

/// What became of a request on its shard.
enum Seen {
    /// A retransmission or an ACK its transaction absorbed.
    Absorbed,
    /// New: its context has this id.
    New(u64),
    /// An ACK no transaction absorbed (for a 2xx), or any request while the transactions
    /// are at their limit: routed without a context.
    Unmatched,
}

impl Core {
    /// Handles one received message; `src` is where it came from. The local address it
    /// arrived at (`$Ri`) is taken to be the one we advertise towards `src`.
    pub fn handle_message(&self, now: Instant, msg: Message, src: Destination) -> Vec<Command> {
        let local = self
            .config()
            .advertised_for(src.protocol, src.addr)
            .unwrap_or_else(|| SocketAddr::new(src.addr.ip(), 0));
        self.handle_message_at(now, msg, src, local)
    }

    /// Handles one received message that arrived at local address `local`.
    pub fn handle_message_at(
        &self,
        now: Instant,
        msg: Message,
        src: Destination,
        local: SocketAddr,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        self.shards().epoch(now);
        let ip = src.addr.ip();
        if !self.config().is_trusted(ip) && !self.guard.allow(ip, now) {
            return out; // flooding, or banned: not even an answer
        }
        if msg.is_request() {
            self.handle_request(now, msg, src, local, &mut out);
        } else {
            self.handle_response(now, msg, src, local, &mut out);
        }
        if self.dialogs.progress_pending() {
            out.extend(self.call_progress(now));
        }
        out
    }

    fn handle_request(
        &self,
        now: Instant,
        msg: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) {
        let Ok((key, via)) = TransactionKey::for_request_with_via(&msg, Role::Server) else {
            return self.reply(&msg, src, 400, "Bad Request (Via)", &[], out);
        };
        let upstream = upstream_by(&via, src);
        let txn = match self.first_sight(now, key, &msg, upstream, out) {
            Seen::Absorbed => return,
            Seen::New(id) => Some(id),
            Seen::Unmatched => None,
        };
        let script = self.script();
        let script: &std::sync::Arc<ProxyScript> = &script;
        let mut ctx = RouteCtx::new(self, script, now, Phase::Request, &msg, src, local, out);
        ctx.txn = txn;
        script.run_request(&mut ctx);
        let used = ctx.stateful;
        drop(ctx);
        if let (Some(id), false) = (txn, used) {
            self.release_if_unused(id);
        }
    }

    /// Matches a request to its server transaction, or creates one (ACKs never do) whose
    /// responses go to `upstream`.
    fn first_sight(
        &self,
        now: Instant,
        key: TransactionKey,
        msg: &Message,
        upstream: Destination,
        out: &mut Vec<Command>,
    ) -> Seen {
        let key = self.shards().digest(&key);
        let shard_i = Shards::for_digest(key);
        let mut shard = self.shards().lock(shard_i);
        if let Some(&id) = shard.by_key.get(&key) {
            let absorbed = match shard.contexts.get_mut(&id) {
                Some(ctx) => ctx.on_request(now, self.config(), msg, out),
                None => shard
                    .lingering
                    .get(&id)
                    .is_some_and(|l| l.on_request(msg, out)),
            };
            shard.settle(id);
            if absorbed {
                return Seen::Absorbed;
            }
        }
        if msg.method() == Some(Method::Ack) {
            return Seen::Unmatched;
        }
        if self.at_capacity() {
            // Full: the script runs without a transaction (answers stateless, no relay).
            return Seen::Unmatched;
        }
        let id = self.shards().new_id(shard_i);
        let received = Received {
            key,
            request: Box::new(msg.clone()),
            upstream,
        };
        shard.insert(id, Context::new(now, self.config(), received), true);
        Seen::New(id)
    }

    fn handle_response(
        &self,
        now: Instant,
        resp: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) {
        let Ok(via) = resp.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        // §16.7 step 3: with our Via removed, none would remain: it was meant for us (a
        // request of our own), never for a caller.
        let for_us = resp
            .headers_named(HeaderName::Via)
            .map(|h| h.values().count())
            .sum::<usize>()
            < 2;
        let secret = &self.config().branch_secret;
        if let Some((id, index)) = stateful_branch(secret, branch) {
            let mut slot = Some(resp);
            if for_us
                && slot
                    .as_ref()
                    .is_some_and(|r| r.cseq().is_ok_and(|c| c.method == Method::Cancel))
            {
                // Our CANCEL of a branch carries our Via alone: its answer ends the
                // branch's CANCEL transaction (no reply route runs for it). Without a
                // context, it answers a CANCEL of a request of our own.
                let cfg = self.config();
                self.with_ctx(id, |ctx| {
                    let resp = slot.take();
                    resp.map(|r| ctx.on_response(now, cfg, index, r, out))
                });
            }
            let Some(resp) = slot else { return };
            if for_us {
                // Not one of ours: dropped.
                let _ = self.outgoing_response(now, id, resp, out);
                return;
            }
            let unmatched = self
                .to_context(now, (id, index), resp, src, local, out)
                .and_then(|resp| self.outgoing_response(now, id, resp, out));
            let unmatched = unmatched.and_then(|resp| self.to_linger(now, id, resp, out));
            if let Some(resp) = unmatched {
                // Its context ended (a 2xx after timer C or a forwarded failure): on,
                // statelessly (§16.7), if its branch vouches for the next Via.
                self.forward_response(now, resp, src, local, out);
            }
        } else if branch.starts_with(STATEFUL) {
            tracing::debug!(branch, src = %src.addr, "response with a branch tag not ours (forged, or from before a restart): dropped");
        } else if branch.starts_with(STATELESS) && !for_us {
            self.forward_response(now, resp, src, local, out);
        } else if let Some(id) = branch
            .strip_prefix(crate::keepalive::PING)
            .filter(|_| for_us)
        {
            self.ping_answered(now, id);
        }
        // Otherwise not ours: dropped (RFC 3261 §16.7 step 1 says so for a proxy).
    }

    /// A response for branch `index` of context `id`. Reply routes, if any, run without
    /// the lock; then the context takes it, and its failure route runs if one is due.
    /// Gives the response back when there is no such context.
    fn to_context(
        &self,
        now: Instant,
        (id, index): (u64, usize),
        resp: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) -> Option<Message> {
        let cfg = self.config();
        let global = self.script().has_reply_route();
        // The 2xx of an in-dialog target refresh gives the responder a new remote target,
        // for the requests that carry the key the refresh carried.
        let refresh = resp.status().is_some_and(|s| (200..300).contains(&s))
            && resp
                .cseq()
                .is_ok_and(|c| route_key::refreshes_target(c.method));
        let mut slot = Some(resp);
        // Without reply routes (the common case) the context takes the response at once.
        let input = self.with_ctx(id, |ctx| {
            if let Some(key) = ctx.refresh_key.filter(|_| refresh) {
                // A phone behind NAT names its private address again: the other side's
                // requests go to where this came from.
                slot = slot.take().map(|resp| {
                    let resp = crate::forward::fix_nated_reply(cfg, resp, src);
                    route_key::note_refresh(&cfg.route_secret, &self.refreshed, key, &resp);
                    resp
                });
            }
            match ctx.reply_route_input(global) {
                Some(input) => Err(Box::new(input)),
                None => Ok(slot.take().is_some_and(|resp| {
                    ctx.on_response(now, cfg, index, resp, out);
                    self.take_noted(now, ctx);
                    ctx.failure_is_due()
                })),
            }
        });
        let failed = match (input, slot) {
            (None, resp) => return resp,
            (Some(Ok(failed)), _) => failed,
            (Some(Err(input)), Some(resp)) => {
                match self.reply_routes(now, Some(*input), resp, src, local, out) {
                    (Some(resp), tx) => self.with_ctx(id, |ctx| {
                        ctx.set_tx(tx);
                        ctx.on_response(now, cfg, index, resp, out);
                        self.take_noted(now, ctx);
                        ctx.failure_is_due()
                    }),
                    (None, _) => None,
                }
                .unwrap_or(false)
            }
            (Some(Err(_)), None) => false,
        };
        if failed {
            self.run_failure_routes(now, id, out);
        }
        None
    }

    /// Notes the pairs of keys a context made while relaying responses.
    /// Takes what a context noted for the core: key pairs, and next hops that failed.
    pub(crate) fn take_noted(&self, now: Instant, ctx: &mut Context) {
        if ctx.noted.is_empty() {
            return;
        }
        for n in ctx.noted.drain(..) {
            match n {
                Noted::Pair((a, b)) => self.refreshed.pair(a, b),
                Noted::Failed(hop) => self.hop_failed(now, hop),
                Noted::Relayed(code, to_tag, answer) => match ctx.dialog.as_deref() {
                    Some(Followed::Invite(key)) => {
                        let at = self.unix_ms(now);
                        let answer = answer.map(|a| *a);
                        self.dialogs
                            .response(at, key, code, to_tag.as_deref(), answer);
                    }
                    Some(Followed::Bye(bye)) if code >= 200 => {
                        self.dialogs.bye_answered(bye, code);
                    }
                    _ => {}
                },
            }
        }
        if ctx.is_answered() {
            // Little more to note: the room is not held while the context lingers (32 s).
            ctx.noted = Vec::new();
        }
    }

    /// A response without a context (a stateless branch, or a late 2xx after its context
    /// ended): after the global reply route, on to the next Via, if that is where the
    /// request came from.
    fn forward_response(
        &self,
        now: Instant,
        resp: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) {
        let Some(dest) = self.vouched_upstream(&resp) else {
            tracing::debug!(src = %src.addr, "response not to a request we forwarded from its next Via: dropped");
            return;
        };
        let (Some(resp), _) = self.reply_routes(now, None, resp, src, local, out) else {
            return;
        };
        out.push(Command::Send {
            dest,
            data: route_key::for_caller_stateless(self.config(), &resp),
        });
    }

    /// Where a response to a branch of ours goes: its next Via's reply address, when our
    /// branch's upstream tag vouches for it.
    fn vouched_upstream(&self, resp: &Message) -> Option<Destination> {
        let ours = resp.top_via().ok()?.branch()?;
        let next = Message::parse(strip_top_via(resp)).ok()?;
        let dest = response_destination(&next)?;
        let via = next.top_via().ok()?;
        let up = Upstream::new(dest, via.branch().unwrap_or_default());
        upstream_ok(&self.config().branch_secret, ours, &up).then_some(dest)
    }

    /// The IO layer could not send `data` (a request the core asked it to send) to `dest`:
    /// the branch it belongs to fails over to UDP or counts as answered 503 (§16.9).
    pub fn send_failed(&self, now: Instant, dest: Destination, data: bytes::Bytes) -> Vec<Command> {
        let mut out = Vec::new();
        let Ok(msg) = Message::parse(data) else {
            return out;
        };
        if !msg.is_request() || matches!(msg.method(), Some(Method::Ack | Method::Cancel)) {
            return out;
        }
        let Some((id, index)) = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .and_then(|b| stateful_branch(&self.config().branch_secret, b))
        else {
            return out;
        };
        let cfg = self.config();
        let proxied = self.with_ctx(id, |ctx| {
            ctx.on_transport_error(now, cfg, index, dest, &mut out);
            self.take_noted(now, ctx);
        });
        match proxied {
            Some(()) => self.run_failure_routes(now, id, &mut out),
            None => self.outgoing_failed(now, id, &mut out),
        }
        out
    }

    /// When [`handle_timeouts`](Self::handle_timeouts) is next needed. Locks nothing.
    pub fn next_timeout(&self) -> Option<Instant> {
        let timers = self.shards().next_timeout();
        match self.writes_stall_at() {
            Some(stall) => Some(timers.map_or(stall, |t| t.min(stall))),
            None => timers,
        }
    }

    /// Fires every transaction timer due at `now`, each once; only shards with a timer
    /// due are locked.
    pub fn handle_timeouts(&self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        let (mut failures, mut own) = (Vec::new(), Vec::new());
        let due: Vec<usize> = self.shards().due(now).collect();
        for i in due {
            let mut shard = self.shards().lock(i);
            let ids: Vec<u64> = std::iter::from_fn(|| shard.pop_due(now)).collect();
            for id in ids {
                if let Some(ctx) = shard.contexts.get_mut(&id) {
                    ctx.on_timeout(now, self.config(), &mut out);
                    self.take_noted(now, ctx);
                    if ctx.failure_is_due() {
                        failures.push(id);
                    }
                    shard.settle(id);
                } else if shard.outgoing.contains_key(&id) {
                    // Fired (and re-armed) once the shard is released.
                    own.push(id);
                }
            }
        }
        for id in failures {
            self.run_failure_routes(now, id, &mut out);
        }
        for id in own {
            self.outgoing_timeout(now, id, &mut out);
        }
        if self.writes_stall_at().is_some_and(|t| t <= now) {
            self.writes_stalled(now, &mut out);
        }
        if self.dialogs.progress_pending() {
            out.extend(self.call_progress(now));
        }
        out
    }

    /// No binding write ended for 64·T1 (a database that hangs): the REGISTERs waiting get
    /// 500 rather than wait for ever; their slots come back when their writes end. Rare,
    /// so a scan of every shard; a REGISTER costs no timer for it.
    fn writes_stalled(&self, now: Instant, out: &mut Vec<Command>) {
        tracing::warn!("binding writes stalled: waiting REGISTERs get 500");
        self.writes_moved_at(now);
        let cfg = self.config();
        for i in 0..crate::shard::SHARDS {
            let mut shard = self.shards().lock(i);
            let ids: Vec<u64> = shard.contexts.keys().copied().collect();
            for id in ids {
                if let Some(ctx) = shard.contexts.get_mut(&id) {
                    ctx.write_stalled(now, cfg, out);
                    shard.settle(id);
                }
            }
        }
    }
}
