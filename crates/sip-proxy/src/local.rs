//! Answers the server gives itself: stateless replies, the registrar, stateful local answers
//! (`t_reply`, `redirect`).

use bytes::Bytes;
use registrar::Binding;
use sip_message::{Message, Method};

use crate::context::{Context, Received};
use crate::core::{unix_now, upstream_of, Core};
use crate::reply::{response, to_tag};
use crate::routing::{Phase, RouteCtx};
use crate::target::Destination;
use crate::Command;

impl Core {
    /// Answers a request without a transaction (never an ACK).
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
        let data = response(req, code, reason, &self.config().agent, extra);
        out.push(Command::Send {
            dest: upstream_of(req, src),
            data,
        });
    }

    /// `save("location")`: processes a REGISTER and answers it, the 200 once its bindings
    /// are stored. Answered without a transaction: the registrar treats a repeated CSeq as
    /// a retransmission, so answering again is safe. False when it was refused.
    pub(crate) fn register(&self, msg: &Message, src: Destination, out: &mut Vec<Command>) -> bool {
        let source = format!("{}:{}", src.protocol, src.addr);
        let now_unix = unix_now();
        let (data, ok) =
            match self
                .location
                .register(&self.config().registrar, now_unix, msg, &source)
            {
                Ok(mut reg) => {
                    let data = registrar::ok_response(msg, &reg, now_unix, &to_tag(msg));
                    if !reg.changes.is_empty() {
                        out.push(Command::Persist(std::mem::take(&mut reg.changes)));
                    }
                    (data, true)
                }
                Err(r) => {
                    let min = r.min_expires.map(|m| m.to_string());
                    let extra: Vec<(&str, &str)> = min
                        .as_deref()
                        .map(|m| ("Min-Expires", m))
                        .into_iter()
                        .collect();
                    let data = response(msg, r.status, r.reason, &self.config().agent, &extra);
                    (data, false)
                }
            };
        out.push(Command::Send {
            dest: upstream_of(msg, src),
            data,
        });
        ok
    }

    /// The live bindings of an address-of-record, highest q first; an alias has those of
    /// the address it stands for.
    pub(crate) fn lookup(&self, aor: &str) -> Vec<Binding> {
        let now = unix_now();
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

    /// `t_reply`: in a request route, answers inside a new server transaction; in a failure
    /// route, makes this the transaction's final answer.
    pub(crate) fn t_reply(&self, c: &mut RouteCtx<'_>, code: u16, reason: &str) -> bool {
        match c.phase {
            Phase::Request => self.answer_with(c, code, reason, &[]),
            Phase::Failure => {
                let data = response(c.msg, code, reason, &self.config().agent, &[]);
                c.effects.reply = Some((code, data));
                true
            }
            Phase::Reply | Phase::Branch => false,
        }
    }

    /// Answers the request of a request route inside a server transaction, which absorbs
    /// retransmissions and resends the answer.
    pub(crate) fn answer_with(
        &self,
        c: &mut RouteCtx<'_>,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) -> bool {
        let (Some(key), Phase::Request) = (c.key, c.phase) else {
            return false;
        };
        if c.msg.method() == Some(Method::Ack) || c.stateful {
            return false;
        }
        let data = response(c.msg, code, reason, &self.config().agent, extra);
        self.answer(
            c.now,
            c.msg.clone(),
            key.clone(),
            upstream_of(c.msg, c.src),
            code,
            data,
            c.out,
        );
        c.stateful = true;
        true
    }

    /// Answers locally inside a server transaction.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        now: std::time::Instant,
        msg: Message,
        key: sip_transaction::TransactionKey,
        upstream: Destination,
        status: u16,
        answer: Bytes,
        out: &mut Vec<Command>,
    ) {
        let shard_i = Core::key_shard(&key);
        let id = self.new_id(shard_i);
        let received = Received {
            key: key.clone(),
            request: msg,
            upstream,
        };
        let ctx = Context::answered(now, self.config(), received, status, answer, out);
        self.store(shard_i, id, key, ctx);
    }
}
