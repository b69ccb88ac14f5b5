//! Answers the server gives itself: replies of the script and the registrar (through the
//! request's server transaction, which resends them to retransmissions), `t_reply` in
//! failure routes, `redirect`.

use registrar::Binding;
use sip_message::{Message, Method};

use crate::core::{upstream_of, Core};
use crate::reply::{response, to_tag};
use crate::routing::{Phase, RouteCtx};
use crate::suspend::{Parked, Resume};
use crate::target::Destination;
use crate::Command;

impl Core {
    /// Answers a request without a transaction (never an ACK): one that cannot have one.
    pub(crate) fn reply(
        &self,
        req: &Message,
        src: Destination,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
        out: &mut Vec<Command>,
    ) {
        if req.method() == Some(Method::Ack) {
            return;
        }
        let data = response(req, src.addr, code, reason, &self.config().agent, extra);
        out.push(Command::Send {
            dest: upstream_of(req, src),
            data,
        });
    }

    /// Answers the request of a request route through its server transaction (never an
    /// ACK). False when it had its final answer already.
    pub(crate) fn respond(
        &self,
        c: &mut RouteCtx<'_>,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) -> bool {
        if c.phase != Phase::Request || c.msg.method() == Some(Method::Ack) {
            return false;
        }
        let Some(id) = c.txn else {
            // No transaction (too many): answered once, without state.
            self.reply(c.msg, c.src, code, reason, extra, c.out);
            c.stateful |= code >= 200;
            return true;
        };
        let data = response(c.msg, c.src.addr, code, reason, &self.config().agent, extra);
        let (now, cfg, out) = (c.now, self.config(), &mut *c.out);
        let sent = self.with_ctx(id, |ctx| ctx.answer(now, cfg, code, data, out));
        if code >= 200 {
            c.stateful = true;
        }
        sent == Some(true)
    }

    /// `save("location")`: processes a REGISTER and answers it, the 200 once its bindings
    /// are stored ([`Command::Persist`], then [`Core::persisted`]). 503 while too many
    /// writes wait already. False when it was refused.
    pub(crate) fn register(&self, c: &mut RouteCtx<'_>) -> bool {
        let Some(id) = c.txn.filter(|_| c.phase == Phase::Request) else {
            return self.too_busy(c);
        };
        let (msg, src) = (c.msg, c.src);
        let cfg = self.config();
        if !self.admit_write(c.now) {
            let why = "Service Unavailable (storage busy)";
            self.respond(c, 503, why, &[("Retry-After", "5")]);
            return false;
        }
        let mut source = String::with_capacity(56);
        source.push_str(src.protocol.name());
        source.push(':');
        sip_message::push_socket_addr(&mut source, src.addr);
        let now_unix = self.unix(c.now);
        let exempt = cfg.is_trusted(src.addr.ip());
        let served = |domain: &str| cfg.is_local_domain(domain);
        match self
            .location
            .register(&cfg.registrar, now_unix, msg, &source, exempt, &served)
        {
            Ok(reg) => {
                if src.protocol.is_websocket() {
                    self.ws_registered.note(src.protocol, src.addr, &reg.aor);
                } else if src.protocol.is_reliable() {
                    // Open while its bindings last (a WebSocket's pings keep it).
                    let mine = reg.bindings.iter().filter(|b| b.source == source);
                    let left = mine.map(|b| b.remaining(now_unix)).max().unwrap_or(0);
                    c.out.push(Command::KeepOpen {
                        dest: src,
                        time: std::time::Duration::from_secs(left),
                    });
                }
                // A connection the AOR's bindings came over before and come over no more
                // (a client that reconnected) is let go when idle.
                let elsewhere = moved_away(&reg.previous, &reg.bindings, &source);
                for gone in elsewhere {
                    c.out.push(Command::KeepOpen {
                        dest: gone,
                        time: std::time::Duration::ZERO,
                    });
                }
                // Outbound flows are connections here (UDP keep-alives are the NAT module's).
                let flow_timer = src
                    .protocol
                    .is_reliable()
                    .then_some(cfg.registrar.flow_timer);
                let ok =
                    registrar::ok_response(msg, src.addr, &reg, now_unix, &to_tag(msg), flow_timer);
                let watchers = self.presence_location(c.now, &reg.changes);
                c.out.extend(watchers);
                let previous = reg.previous;
                self.with_ctx(id, |ctx| {
                    ctx.parked = Some(Parked::Persist { ok, previous })
                });
                c.out.push(Command::Persist {
                    changes: reg.changes,
                    then: Some(Resume { context: id }),
                });
                c.stateful = true;
                true
            }
            Err(r) => {
                self.writes_done(c.now);
                if r.limit {
                    self.limit_hit(c.now, src.addr, r.reason);
                }
                let min = r.min_expires.map(|m| m.to_string());
                let extra: Vec<(&str, &str)> = min
                    .as_deref()
                    .map(|m| ("Min-Expires", m))
                    .into_iter()
                    .collect();
                self.respond(c, r.status, r.reason, &extra);
                false
            }
        }
    }

    /// Answers 503 with Retry-After: the request cannot get the state it needs.
    pub(crate) fn too_busy(&self, c: &mut RouteCtx<'_>) -> bool {
        let why = "Service Unavailable (too busy)";
        self.respond(c, 503, why, &[("Retry-After", "5")]);
        false
    }

    /// The live bindings of an address-of-record at `now`, highest q first; an alias has
    /// those of the address it stands for.
    pub(crate) fn lookup(&self, now: std::time::Instant, aor: &str) -> Vec<Binding> {
        let now = self.unix(now);
        let aliases = self.aliases();
        if let Some((scheme, target)) = (!aliases.is_empty())
            .then(|| aor.split_once(':'))
            .flatten()
            .and_then(|(scheme, addr)| Some((scheme, aliases.get(addr)?)))
        {
            return self.location.lookup(&format!("{scheme}:{target}"), now);
        }
        self.location.lookup(aor, now)
    }

    /// `t_reply`: in a request route, answers inside the request's server transaction;
    /// in a failure route, makes this the transaction's final answer.
    pub(crate) fn t_reply(&self, c: &mut RouteCtx<'_>, code: u16, reason: &str) -> bool {
        match c.phase {
            Phase::Request => self.respond(c, code, reason, &[]),
            Phase::Failure => {
                let data = response(c.msg, c.src.addr, code, reason, &self.config().agent, &[]);
                c.effects.reply = Some((code, data));
                true
            }
            Phase::Reply | Phase::Branch => false,
        }
    }
}

/// The TCP and TLS connections bindings of `before` came over that none of `after` does,
/// but for the one the registration came over (`source`).
fn moved_away(before: &[Binding], after: &[Binding], source: &str) -> Vec<Destination> {
    let mut gone: Vec<Destination> = Vec::new();
    for b in before.iter().filter(|b| b.source != source) {
        let Some((protocol, addr)) = b.source_addr() else {
            continue;
        };
        let stream = protocol.is_reliable() && !protocol.is_websocket();
        let dest = Destination::new(protocol, addr);
        if stream && !after.iter().any(|a| a.source == b.source) && !gone.contains(&dest) {
            gone.push(dest);
        }
    }
    gone
}
