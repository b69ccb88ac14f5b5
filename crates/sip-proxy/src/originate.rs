//! Requests of our own: the core sends a request (a keep-alive OPTIONS, a NOTIFY, the BYE of
//! a call cut at its maximum duration, a stored MESSAGE, the legs of click-to-dial) in a
//! client transaction of its own — retransmitted, timed out, its next hop looked up like a
//! forwarded request's — and hands its final answer to the one who asked, once.

use std::time::{Duration, Instant};

use sip_message::{HeaderName, Message, Method};
use sip_transaction::{build_cancel, ClientState, ClientTransaction, Output, TimerConfig};

use crate::branch::{new_stateful_branch, Upstream};
use crate::context::reliability;
use crate::core::{Core, Located};
use crate::relay::sock_text;
use crate::shard::Shards;
use crate::suspend::Resume;
use crate::target::{next_hop, Destination};
use crate::Command;

/// How a request of our own ended.
#[derive(Debug)]
pub enum Answer {
    /// Its final response (for an INVITE, the first; the ACK of a 2xx is the asker's).
    Response(Box<Message>),
    /// No final response in time (timer B or F; for an INVITE that rang, timer C and then
    /// 64·T1 after its CANCEL).
    Timeout,
    /// Its next hop cannot be reached: no address, a name that does not resolve, or a
    /// connection that could not be made.
    Unreachable,
}

/// Runs once with the final answer to a request of our own; what it pushes is sent.
pub type OnAnswer = Box<dyn FnOnce(&Core, Instant, Answer, &mut Vec<Command>) + Send>;

/// A request of our own in flight.
pub(crate) struct Outgoing {
    /// The request as given (without our Via), until it is sent.
    request: Option<Message>,
    /// Where it goes: given, or found from its Route or Request-URI.
    dest: Option<Destination>,
    client: Option<ClientTransaction>,
    on_answer: Option<OnAnswer>,
    /// An INVITE's timer C (RFC 3261 §16.8): restarted by each provisional response, it
    /// sends a CANCEL when it fires.
    timer_c: Option<Instant>,
    cancel: Option<ClientTransaction>,
    /// 64·T1 after the CANCEL: the INVITE is given up if still unanswered (§9.1).
    give_up: Option<Instant>,
    /// It was given up: the asker is told it timed out.
    gave_up: bool,
    /// The deadline its shard's timer set holds for it.
    pub(crate) armed: Option<Instant>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("dest", &self.dest)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Outgoing {
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let waiting = self.on_answer.is_some();
        [
            self.client
                .as_ref()
                .and_then(ClientTransaction::poll_timeout),
            self.cancel
                .as_ref()
                .and_then(ClientTransaction::poll_timeout),
            self.timer_c.filter(|_| waiting),
            self.give_up.filter(|_| waiting),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn is_done(&self) -> bool {
        let ended = |c: &ClientTransaction| c.state() == ClientState::Terminated;
        self.client.as_ref().is_some_and(ended) && self.cancel.as_ref().is_none_or(ended)
    }

    /// Fires the due timers: the transactions', then timer C (a CANCEL goes) and the end of
    /// the wait after it.
    fn on_timeout(&mut self, now: Instant, timers: TimerConfig) {
        let (Some(client), Some(dest)) = (self.client.as_mut(), self.dest) else {
            return;
        };
        client.handle_timeout(now);
        if let Some(cancel) = self.cancel.as_mut() {
            cancel.handle_timeout(now);
        }
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.timer_c) && self.on_answer.is_some() {
            self.timer_c = None;
            let cancel = client.request().map(|i| Message::parse(build_cancel(&i)));
            if let Some(Ok(cancel)) = cancel {
                let r = reliability(dest);
                self.cancel = Some(ClientTransaction::new(now, cancel, r, timers));
                self.give_up = Some(now + timers.timeout());
            }
        }
        if due(self.give_up) && self.on_answer.is_some() {
            self.give_up = None;
            client.abandon();
            self.gave_up = true;
        }
    }

    /// Moves the transactions' output to `out`; the answer, with its callback, once final.
    /// A provisional response to an INVITE restarts its timer C.
    pub(crate) fn pump(
        &mut self,
        now: Instant,
        timer_c: Duration,
        out: &mut Vec<Command>,
    ) -> Option<(OnAnswer, Answer)> {
        let (client, dest) = (self.client.as_mut()?, self.dest?);
        let mut answer = std::mem::take(&mut self.gave_up).then_some(Answer::Timeout);
        while let Some(o) = client.poll_output() {
            match o {
                Output::Transmit(data) => out.push(Command::Send { dest, data }),
                Output::Response(r) if r.status().is_some_and(|s| s >= 200) => {
                    answer = answer.or(Some(Answer::Response(r)));
                }
                Output::Response(r) => {
                    if self.timer_c.is_some() && r.status().is_some_and(|s| s > 100) {
                        self.timer_c = Some(now + timer_c);
                    }
                }
                Output::Terminated => {}
                Output::Timeout => answer = answer.or(Some(Answer::Timeout)),
            }
        }
        if let Some(cancel) = self.cancel.as_mut() {
            while let Some(o) = cancel.poll_output() {
                if let Output::Transmit(data) = o {
                    out.push(Command::Send { dest, data });
                }
            }
        }
        let answer = answer?;
        Some((self.on_answer.take()?, answer))
    }
}

impl Core {
    /// Sends `request` (complete but for its Via, which the core adds) to `dest`, or where
    /// its first Route or its Request-URI leads, and calls `on_answer` once with how it
    /// ended. Provisional responses are not reported.
    pub fn send_request(
        &self,
        now: Instant,
        request: Message,
        dest: Option<Destination>,
        on_answer: OnAnswer,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        self.shards().epoch(now);
        let id = self.shards().new_id_any();
        let own = Outgoing {
            request: Some(request),
            dest,
            client: None,
            on_answer: Some(on_answer),
            timer_c: None,
            cancel: None,
            give_up: None,
            gave_up: false,
            armed: None,
        };
        self.shards().lock(Shards::of(id)).insert_outgoing(id, own);
        self.start_outgoing(now, id, false, &mut out);
        out
    }

    /// Sends request of our own `id` once its next hop is known: asks for a DNS lookup
    /// (the first time) or gives up as unreachable.
    pub(crate) fn start_outgoing(
        &self,
        now: Instant,
        id: u64,
        resumed: bool,
        out: &mut Vec<Command>,
    ) {
        let Some((request, dest)) = self
            .with_outgoing(id, |o| Some((o.request.clone()?, o.dest)))
            .flatten()
        else {
            return;
        };
        let hop = match dest {
            Some(d) => Located::Ready(d, Vec::new()),
            None => self.hop_of(now, &request),
        };
        match hop {
            Located::Ready(dest, _) => match self.stamp(id, &request, dest) {
                Some(msg) => self.transmit(now, id, dest, msg, out),
                None => self.answer_outgoing(now, id, Answer::Unreachable, out),
            },
            Located::Pending(host) if !resumed => out.push(Command::Resolve {
                hosts: vec![host],
                then: Resume { context: id },
            }),
            Located::Pending(_) | Located::Unreachable => {
                self.answer_outgoing(now, id, Answer::Unreachable, out)
            }
        }
    }

    /// Where a request of our own goes: its first Route, else its Request-URI.
    fn hop_of(&self, now: Instant, request: &Message) -> Located {
        let route = request.routes().filter_map(Result::ok).next();
        let uri = match &route {
            Some(r) => r.uri,
            None => match request.request_uri() {
                Some(u) => u,
                None => return Located::Unreachable,
            },
        };
        match uri.as_sip().and_then(next_hop) {
            Some(hop) => self.locate(now, hop, request),
            None => Located::Unreachable,
        }
    }

    /// The request with our Via for `dest` (a keyed branch naming `id`).
    fn stamp(&self, id: u64, request: &Message, dest: Destination) -> Option<Message> {
        let cfg = self.config();
        let local = cfg.advertised_for(dest.protocol, dest.addr)?;
        // No Via below ours: its responses are for us alone, never relayed.
        let branch = new_stateful_branch(&cfg.branch_secret, (id, 0), 0, &Upstream::nowhere());
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            dest.protocol.via_token(),
            sock_text(local)
        );
        let mut e = request.edit();
        e.push_front(HeaderName::Via, &via);
        Message::parse(e.finish()).ok()
    }

    fn transmit(
        &self,
        now: Instant,
        id: u64,
        dest: Destination,
        msg: Message,
        out: &mut Vec<Command>,
    ) {
        let (timers, timer_c) = (self.config().timers, self.config().timer_c);
        let invite = msg.method() == Some(Method::Invite);
        let done = self
            .with_outgoing(id, |o| {
                o.request = None;
                o.dest = Some(dest);
                o.timer_c = invite.then(|| now + timer_c);
                o.client = Some(ClientTransaction::new(now, msg, reliability(dest), timers));
                o.pump(now, timer_c, out)
            })
            .flatten();
        if let Some((on_answer, answer)) = done {
            on_answer(self, now, answer, out);
        }
    }

    /// A response whose branch names request of our own `id`; given back when there is
    /// no such request.
    pub(crate) fn outgoing_response(
        &self,
        now: Instant,
        id: u64,
        resp: Message,
        out: &mut Vec<Command>,
    ) -> Option<Message> {
        let mut slot = Some(resp);
        let timer_c = self.config().timer_c;
        let to_cancel = slot
            .as_ref()
            .is_some_and(|r| r.cseq().is_ok_and(|c| c.method == Method::Cancel));
        let done = self.with_outgoing(id, |o| {
            // The answer to our CANCEL ends that transaction, not the INVITE's.
            let client = match to_cancel {
                true => o.cancel.as_mut()?,
                false => o.client.as_mut()?,
            };
            client.on_response(now, slot.take()?);
            o.pump(now, timer_c, out)
        });
        if let Some(Some((on_answer, answer))) = done {
            on_answer(self, now, answer, out);
        }
        slot
    }

    /// Fires the timers of request of our own `id`.
    pub(crate) fn outgoing_timeout(&self, now: Instant, id: u64, out: &mut Vec<Command>) {
        let cfg = self.config();
        let done = self.with_outgoing(id, |o| {
            o.on_timeout(now, cfg.timers);
            o.pump(now, cfg.timer_c, out)
        });
        if let Some(Some((on_answer, answer))) = done {
            on_answer(self, now, answer, out);
        }
    }

    /// Request of our own `id` could not be sent.
    pub(crate) fn outgoing_failed(&self, now: Instant, id: u64, out: &mut Vec<Command>) {
        let timer_c = self.config().timer_c;
        let done = self.with_outgoing(id, |o| {
            o.client.as_mut()?.on_transport_error();
            let reported = o.pump(now, timer_c, out).map(|(on_answer, _)| on_answer);
            reported.or_else(|| o.on_answer.take())
        });
        if let Some(Some(on_answer)) = done {
            on_answer(self, now, Answer::Unreachable, out);
        }
    }

    /// Ends request of our own `id` with `answer` (it was never sent).
    fn answer_outgoing(&self, now: Instant, id: u64, answer: Answer, out: &mut Vec<Command>) {
        let on_answer = {
            let mut shard = self.shards().lock(Shards::of(id));
            let on_answer = shard.outgoing.get_mut(&id).and_then(|o| o.on_answer.take());
            shard.remove(id);
            on_answer
        };
        if let Some(on_answer) = on_answer {
            on_answer(self, now, answer, out);
        }
    }

    /// Runs `f` on request of our own `id` under its shard's lock, then re-arms its timer.
    fn with_outgoing<R>(&self, id: u64, f: impl FnOnce(&mut Outgoing) -> R) -> Option<R> {
        let mut shard = self.shards().lock(Shards::of(id));
        let r = f(shard.outgoing.get_mut(&id)?);
        shard.settle(id);
        Some(r)
    }
}
