//! One stateful proxy transaction (RFC 3261 §16.2): the server transaction upstream, a client
//! transaction per branch, forking in q-value groups, best-response selection, CANCEL and
//! timer C.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use sip_message::{Message, Method};
use sip_transaction::{
    build_cancel, ClientState, ClientTransaction, Output, Reliability, ServerState,
    ServerTransaction,
};

use crate::config::ProxyConfig;
use crate::linger::{Accepted, Linger};
use crate::media::{Held, Hold, MediaMark};
use crate::reply::{reason, response};
use crate::route_key::{self, Issued};
use crate::routing::{Effects, TxRouting, TxScript};
use crate::script_routes::ReplyInput;
use crate::shard::Digest;
use crate::suspend::{Parked, RelayState};
use crate::target::Destination;
use crate::Command;

/// A target the request is forked to, with the request already written for it.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) dest: Destination,
    pub(crate) request: Bytes,
    /// The request as it would go over UDP, when its size moved it to TCP: sent instead if
    /// the TCP connection cannot be made (RFC 3261 §18.1.1).
    pub(crate) fallback: Option<UdpFallback>,
    /// The key of our Record-Route entries in the request, if it has them.
    pub(crate) issued: Option<Issued>,
    /// The target is behind NAT, reached at this address: its replies' Contact is fixed.
    pub(crate) nat: Option<std::net::SocketAddr>,
    /// The request for each address to fail over to (RFC 3263 §4.3), in order.
    pub(crate) alternatives: Rare<(Destination, Bytes)>,
}

/// A list that is nearly always empty, one word wide (in structs moved about for every
/// request) and allocated only when it has something.
#[allow(clippy::box_collection)]
pub(crate) type Rare<T> = Option<Box<Vec<T>>>;

/// What a context notes for the core, which takes it after each event.
#[derive(Debug)]
pub(crate) enum Noted {
    /// A pair of keys ([`crate::refresh`]) made for a response relayed.
    Pair((u64, u64)),
    /// A next hop failed.
    Failed(Destination),
    /// A response of a followed call went to the caller ([`crate::dialogs`]): its
    /// status, To tag and (a 2xx's) callee.
    Relayed(u16, Option<String>, Option<Box<dialog::Answer>>),
}

/// What a context's request is to the calls followed ([`crate::dialogs`]).
#[derive(Debug)]
pub(crate) enum Followed {
    /// The INVITE of a followed call.
    Invite(dialog::CallKey),
    /// A BYE of a followed call's dialog.
    Bye(crate::dialogs::ByeOf),
}

/// Where a branch index keeps the attempt: the bits above the branch's place.
const ATTEMPT_SHIFT: u32 = 20;

/// The index written in the Via branch of attempt `k` (0: the first) of branch `n`.
pub(crate) fn attempt_index(n: usize, k: usize) -> usize {
    n | (k << ATTEMPT_SHIFT)
}

/// A branch's place and attempt, from the index its Via branch carries.
fn place_of(index: usize) -> (usize, usize) {
    (index & ((1 << ATTEMPT_SHIFT) - 1), index >> ATTEMPT_SHIFT)
}

/// Statuses after which a branch tries the next address of its target (RFC 3263 §4.3):
/// 503, and our own 408 (no answer) and 503 (a transport error); and 430 Flow Failed, after
/// which it tries the instance's next flow (RFC 5626 §5.3).
fn fails_over(status: u16) -> bool {
    matches!(status, 408 | 430 | 503)
}

/// A UDP alternative to a branch's request.
pub(crate) type UdpFallback = (Destination, Bytes);

/// A request that opens a context: its transaction key, the request, and where its
/// responses go.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) key: Digest,
    /// Boxed where it is cloned: a message is some hundred bytes, copied at every move.
    pub(crate) request: Box<Message>,
    pub(crate) upstream: Destination,
}

/// What a failure route sees of its transaction.
#[derive(Debug, Clone)]
pub(crate) struct FailureStatus {
    /// The index the next branch gets.
    pub(crate) next_branch: usize,
    /// The best reply so far.
    pub(crate) status: u16,
    pub(crate) reason: String,
    /// The caller cancelled (`t_is_canceled()`).
    pub(crate) canceled: bool,
    /// The best reply is a timeout of ours: no response, or timer C (`t_branch_timeout()`).
    pub(crate) timed_out: bool,
}

#[derive(Debug)]
struct Branch {
    client: ClientTransaction,
    dest: Destination,
    status: Option<u16>,
    provisional: bool,
    timer_c: Option<Instant>,
    /// Timer C cancelled this ringing branch: its 487 counts as 408 (no answer).
    timer_c_fired: bool,
    cancel_wanted: bool,
    /// Boxed, as `fallback`: rare, and a branch is kept for 32 s after its answer.
    cancel: Option<Box<ClientTransaction>>,
    /// 64·T1 after our CANCEL: the INVITE counts as ended if still unanswered (§9.1).
    give_up: Option<Instant>,
    fallback: Option<Box<UdpFallback>>,
    /// The key of our Record-Route entries in its request, rewritten for the caller in the
    /// responses that come back ([`crate::route_key::for_caller`]).
    issued: Option<Issued>,
    /// Its target is behind NAT, reached at this address ([`Prepared::nat`]).
    nat: Option<std::net::SocketAddr>,
    /// The requests for the addresses to fail over to ([`Prepared::alternatives`]), the
    /// next last.
    alternatives: Rare<(Destination, Bytes)>,
    /// Which of its target's addresses it tries (0: the first).
    attempt: u8,
}

/// The proxy's state for one received request.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) key: Digest,
    /// The received request, kept until every branch and the answer upstream are final.
    pub(crate) request: Option<Box<Message>>,
    /// The script state of the transaction, when its routes need it later.
    pub(crate) routing: Option<Box<TxRouting>>,
    /// Every branch failed and a failure route is armed: the core runs it next.
    failure_due: bool,
    invite: bool,
    /// The request is a CANCEL (its answer keeps timer J).
    of_cancel: bool,
    /// The request is a REGISTER: answered here, its transaction ends with its final answer
    /// ([`Self::is_done`]).
    register: bool,
    server: ServerTransaction,
    upstream: Destination,
    branches: Vec<Branch>,
    /// Later q-value groups, tried in turn while no branch succeeds (serial forking).
    pending: VecDeque<Vec<Prepared>>,
    /// The best final response so far, ready to go upstream.
    best: Option<(u16, Bytes)>,
    /// `best` is a 408 of ours: the branch timed out (no response, or timer C).
    best_timed_out: bool,
    /// A non-INVITE every branch of which timed out got no answer (RFC 4320): a 2xx that
    /// comes late still goes upstream, statelessly.
    unanswered: bool,
    answered: bool,
    cancelled: bool,
    /// The key of an in-dialog target refresh request, ours for its dialog: its 2xx give
    /// the responder a new remote target, for the requests with that key
    /// ([`crate::refresh`]).
    pub(crate) refresh_key: Option<u64>,
    /// What the core has yet to take ([`Noted`]).
    pub(crate) noted: Vec<Noted>,
    /// `dlg_manage()`: the call followed, whose responses that go to the caller are noted
    /// for its dialogs; or a BYE of one, whose answer ends its dialog.
    pub(crate) dialog: Option<Box<Followed>>,
    /// When a 100 Trying goes upstream unless another response went first (RFC 3261
    /// §17.2.1 allows 200 ms): a callee that rings at once saves the message.
    trying_at: Option<Instant>,
    /// What the context waits for outside the core (a DNS answer, a write to storage).
    pub(crate) parked: Option<Parked>,
    /// When a wait for DNS is given up (the IO layer resumes well before).
    park_until: Option<Instant>,
    /// The deadline its shard's timer set holds for it.
    pub(crate) armed: Option<Instant>,
    /// Its media goes through the relay (`rtp_relay()`).
    pub(crate) media: Option<Box<MediaMark>>,
    /// Its id in the shards (what the media relay's answers are given back with).
    pub(crate) id: u64,
}

/// How long an INVITE may wait for a response upstream before we send 100 Trying.
const TRYING_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// Whether transactions towards `d` run over a reliable transport.
pub(crate) fn reliability(d: Destination) -> Reliability {
    if d.protocol.is_reliable() {
        Reliability::Reliable
    } else {
        Reliability::Unreliable
    }
}

fn class_rank(code: u16) -> u16 {
    // 6xx wins; otherwise the lowest class (RFC 3261 §16.7 step 6).
    if code >= 600 {
        0
    } else {
        code
    }
}

impl Context {
    /// The context of a request seen for the first time: its server transaction absorbs
    /// retransmissions (and matches a CANCEL) while the script decides what to do.
    pub(crate) fn new(now: Instant, cfg: &ProxyConfig, received: Received) -> Box<Context> {
        let Received {
            key,
            request,
            upstream,
        } = received;
        let server = ServerTransaction::new(&request, reliability(upstream), cfg.timers);
        let method = request.method();
        let (invite, of_cancel, register) = (
            method == Some(Method::Invite),
            method == Some(Method::Cancel),
            method == Some(Method::Register),
        );
        Box::new(Context {
            key,
            server,
            upstream,
            branches: Vec::new(),
            pending: VecDeque::new(),
            best: None,
            best_timed_out: false,
            unanswered: false,
            answered: false,
            cancelled: false,
            refresh_key: None,
            noted: Vec::new(),
            dialog: None,
            request: Some(request),
            routing: None,
            failure_due: false,
            invite,
            of_cancel,
            register,
            trying_at: invite.then(|| now + TRYING_DELAY),
            parked: None,
            park_until: None,
            armed: None,
            media: None,
            id: 0,
        })
    }

    /// Forwards the request to `groups` (each a parallel fork; groups in series). False
    /// when it was answered meanwhile (a CANCEL) or already forwarded.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        groups: VecDeque<Vec<Prepared>>,
        routing: Option<Box<TxRouting>>,
        refresh_key: Option<u64>,
        out: &mut Vec<Command>,
    ) -> bool {
        if self.answered || !self.branches.is_empty() || !self.pending.is_empty() {
            return false;
        }
        self.refresh_key = refresh_key;
        self.pending = groups;
        self.routing = routing;
        self.start_next_group(now, cfg);
        self.pump(now, cfg, out);
        true
    }

    /// Answers the request with a response of the script's own (or the registrar's): a
    /// final one is sent once, again only to a retransmission, and kept T4 (RFC 3261
    /// §26.3.2.4: a stranger's spoofed request must not make us send a burst). The answer
    /// to a CANCEL is kept 64·T1 (timer J): a retransmitted CANCEL must get its 200 again,
    /// not a 481 once the INVITE is gone. False when a final answer went already.
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        status: u16,
        data: Bytes,
        out: &mut Vec<Command>,
    ) -> bool {
        if self.answered {
            return false;
        }
        self.answered = status >= 200;
        self.trying_at = None;
        if status >= 300 {
            // Refused after its SDP went to the relay (no ports, no route): the session goes.
            if let Some(request) = self.media.as_ref().and_then(|m| m.call.delete()) {
                out.push(Command::Media {
                    request,
                    then: None,
                });
            }
        }
        if self.of_cancel {
            self.server.send_response(now, status, data);
        } else {
            self.server.send_local_response(now, status, data);
        }
        self.pump(now, cfg, out);
        true
    }

    /// Parks the context until the names are looked up (at most 64·T1); a relay without a
    /// transaction of its own (`forward`) sends no 100 Trying meanwhile.
    pub(crate) fn park(&mut self, now: Instant, cfg: &ProxyConfig, parked: Parked) {
        if matches!(&parked, Parked::Relay(state) | Parked::Media(state) if !state.stateful) {
            self.trying_at = None;
        }
        self.park_until = Some(now + cfg.timers.timeout());
        self.parked = Some(parked);
    }

    /// Takes what waits for DNS, unless the request was answered meanwhile (a CANCEL): then
    /// it is dropped.
    pub(crate) fn take_relay(&mut self) -> Option<Parked> {
        let relay = |p: &mut Parked| matches!(p, Parked::Relay(_) | Parked::FailureRelay(_));
        let parked = self.parked.take_if(relay)?;
        self.park_until = None;
        (!self.answered).then_some(parked)
    }

    /// Takes the request that waits for the media relay; when it was answered meanwhile (a
    /// CANCEL), the end of the session the relay made for it instead (`Err`).
    pub(crate) fn take_media(
        &mut self,
    ) -> Option<Result<Box<RelayState>, Option<::relay::MediaRequest>>> {
        let Some(Parked::Media(state)) = self.parked.take_if(|p| matches!(p, Parked::Media(_)))
        else {
            return None;
        };
        self.park_until = None;
        match self.answered {
            false => Some(Ok(state)),
            true => Some(Err(self.media.as_ref().and_then(|m| m.call.delete()))),
        }
    }

    /// Takes what waits for a binding write, if anything does.
    pub(crate) fn take_persist(&mut self) -> Option<Parked> {
        self.parked.take_if(|p| matches!(p, Parked::Persist { .. }))
    }

    /// The writes stalled: a REGISTER waiting for its bindings is answered 500. The write
    /// may still end; if it fails then, its change stays in memory until it expires.
    pub(crate) fn write_stalled(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        out: &mut Vec<Command>,
    ) {
        if self.take_persist().is_none() || self.answered {
            return;
        }
        let why = "Server Internal Error (bindings not stored in time)";
        if let Some(data) = self.own_reply(cfg, 500, why, &[("Retry-After", "5")]) {
            self.answer(now, cfg, 500, data, out);
        }
    }

    /// The DNS answer never came: the request is answered 503 (or, in a failure route,
    /// with the best reply).
    fn give_up_waiting(&mut self, now: Instant, cfg: &ProxyConfig, out: &mut Vec<Command>) {
        self.park_until = None;
        match self.parked.take() {
            Some(Parked::Relay(_) | Parked::Media(_)) if !self.answered => {
                let is_ack = |r: &Message| r.method() == Some(Method::Ack);
                let why = "Service Unavailable (next hop not resolved)";
                match self.request.as_deref() {
                    // Nothing answers an ACK: the context is forgotten.
                    Some(r) if is_ack(r) => self.server.on_transport_error(),
                    Some(r) => {
                        let data = response(r, self.upstream.addr, 503, why, &cfg.agent, &[]);
                        self.answer(now, cfg, 503, data, out);
                    }
                    None => {}
                }
            }
            Some(Parked::FailureRelay(_)) if !self.answered => self.send_best(now, cfg, out),
            Some(Parked::Relay(_) | Parked::FailureRelay(_) | Parked::Media(_)) | None => {}
            Some(other) => self.parked = Some(other),
        }
    }

    /// True when the script left the request without an answer, a branch or anything to
    /// wait for: it was handled statelessly (or dropped), and its context is not needed.
    pub(crate) fn is_unused(&self) -> bool {
        !self.answered
            && self.branches.is_empty()
            && self.pending.is_empty()
            && self.parked.is_none()
    }

    /// True when the request belongs to a dialog (its To has a tag).
    fn in_dialog(&self) -> bool {
        let r = self.request.as_deref();
        r.is_some_and(|r| r.to().is_ok_and(|t| t.tag().is_some()))
    }

    fn is_invite(&self) -> bool {
        self.invite
    }

    /// Sends a response upstream through the server transaction.
    fn respond(&mut self, now: Instant, code: u16, data: Bytes) {
        self.trying_at = None;
        self.note_failure(code);
        self.server.send_response(now, code, data);
    }

    /// A final failure of a followed call goes to the caller (relayed, or ours): noted for
    /// its dialogs.
    fn note_failure(&mut self, code: u16) {
        if self.dialog.is_some() && code >= 300 {
            self.noted.push(Noted::Relayed(code, None, None));
        }
    }

    /// A provisional or 2xx response of branch `i` of a followed call is relayed: noted
    /// for its dialogs, read off the response as it came.
    fn note_answer(&mut self, code: u16, resp: &Message, i: usize) {
        if self.dialog.is_none() {
            return;
        }
        let to = resp.header(sip_message::HeaderName::To);
        let to_tag = to
            .and_then(|t| crate::dialog_read::tag_of(t.value))
            .map(str::to_owned);
        let b = &self.branches[i];
        let answer = (code >= 200 && self.invite).then(|| {
            let ours = b.issued.as_ref().map(crate::route_key::Issued::text);
            Box::new(crate::dialog_read::answer(resp, ours, b.dest))
        });
        self.noted.push(Noted::Relayed(code, to_tag, answer));
    }

    /// Sends the 100 Trying now if it is still owed.
    fn send_trying(&mut self, now: Instant, cfg: &ProxyConfig) {
        if self.trying_at.take().is_some() {
            if let Some(trying) = self.own_response(cfg, 100) {
                self.respond(now, 100, trying);
            }
        }
    }

    /// A response of our own to the received request (None once it was let go).
    fn own_response(&self, cfg: &ProxyConfig, code: u16) -> Option<Bytes> {
        self.own_reply(cfg, code, reason(code), &[])
    }

    /// A response of our own with this reason and `extra` headers; its top Via names where
    /// the request came from (the address responses go back to).
    pub(crate) fn own_reply(
        &self,
        cfg: &ProxyConfig,
        code: u16,
        why: &str,
        extra: &[(&str, &str)],
    ) -> Option<Bytes> {
        let r = self.request.as_deref()?;
        Some(response(
            r,
            self.upstream.addr,
            code,
            why,
            &cfg.agent,
            extra,
        ))
    }

    fn start_next_group(&mut self, now: Instant, cfg: &ProxyConfig) {
        let Some(group) = self.pending.pop_front() else {
            return;
        };
        // Room for this group's branches only: a branch is large, and a Vec's first growth
        // would make room for four (most requests have one branch, held for 32 s).
        self.branches.reserve_exact(group.len());
        for p in group {
            let (invite, reliable) = (self.invite, reliability(p.dest));
            let client = ClientTransaction::for_bytes(now, invite, p.request, reliable, cfg.timers);
            let timer_c = self.is_invite().then(|| now + cfg.timer_c);
            self.branches.push(Branch {
                client,
                dest: p.dest,
                status: None,
                provisional: false,
                timer_c,
                timer_c_fired: false,
                cancel_wanted: false,
                cancel: None,
                give_up: None,
                fallback: p.fallback.map(Box::new),
                issued: p.issued,
                nat: p.nat,
                alternatives: p.alternatives.map(|mut a| {
                    a.reverse();
                    a
                }),
                attempt: 0,
            });
        }
    }

    /// A retransmission or ACK that matched the server transaction; true when absorbed.
    pub(crate) fn on_request(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        msg: &Message,
        out: &mut Vec<Command>,
    ) -> bool {
        let absorbed = self.server.on_request(now, msg);
        // A retransmitted INVITE: the caller waits for a sign of life.
        self.send_trying(now, cfg);
        self.pump(now, cfg, out);
        absorbed
    }

    /// A response whose top Via names branch `index` of this context.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        index: usize,
        resp: Message,
        out: &mut Vec<Command>,
    ) {
        let is_cancel = resp.cseq().is_ok_and(|c| c.method == Method::Cancel);
        let (index, attempt) = place_of(index);
        let Some(b) = self.branches.get_mut(index) else {
            return;
        };
        if usize::from(b.attempt) != attempt {
            // An address given up answers after all: its 2xx to an INVITE still goes
            // upstream (§16.7 step 5, RFC 6026) and the attempt after it is cancelled;
            // anything else of it is dropped.
            let ok = resp.status().is_some_and(|c| (200..300).contains(&c));
            if ok && !is_cancel && self.invite {
                self.cancel_branch(now, cfg, index);
                self.branch_response(now, cfg, index, resp, out);
                self.pump(now, cfg, out);
            }
            return;
        }
        match (is_cancel, b.cancel.as_mut()) {
            (true, Some(c)) => c.on_response(now, resp),
            (true, None) => {}
            // The branch's transaction is over (timer B or F, or given up): a 2xx still goes
            // upstream (§16.7 step 5): every one for an INVITE (RFC 6026), the first for
            // another request, as its answer while it has none (later groups may be trying).
            // Anything else is dropped.
            (false, _) if b.client.state() == ClientState::Terminated => {
                let ok = resp.status().is_some_and(|c| (200..300).contains(&c));
                if ok && (self.invite || !self.answered || self.unanswered) {
                    self.branch_response(now, cfg, index, resp, out);
                }
            }
            (false, _) => b.client.on_response(now, resp),
        }
        self.pump(now, cfg, out);
    }

    /// The request of branch `index` could not be sent to `dest`: over UDP instead when it
    /// went over TCP only for its size, to the target's next address when it has one,
    /// otherwise the branch fails as if answered 503
    /// (§16.9), or 430 Flow Failed when `dest` was a WebSocket client's connection (the
    /// only way to it, RFC 5626 §5.3).
    pub(crate) fn on_transport_error(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        index: usize,
        dest: Destination,
        out: &mut Vec<Command>,
    ) {
        let (index, attempt) = place_of(index);
        let Some(b) = self
            .branches
            .get_mut(index)
            .filter(|b| usize::from(b.attempt) == attempt)
        else {
            return;
        };
        if b.dest != dest || b.status.is_some() {
            return;
        }
        if let Some((udp, request)) = b.fallback.take().map(|f| *f) {
            if let Ok(msg) = Message::parse(request) {
                b.client = ClientTransaction::new(now, msg, reliability(udp), cfg.timers);
                b.dest = udp;
                self.pump(now, cfg, out);
                return;
            }
        }
        b.client.on_transport_error();
        let status = if dest.protocol.is_websocket() {
            430
        } else {
            503
        };
        if !self.fail_over(now, cfg, index, status) {
            self.branch_final(now, cfg, index, Err(status), out);
        }
        self.pump(now, cfg, out);
    }

    /// CANCEL from upstream (§16.10): cancel every pending branch, try no further targets.
    pub(crate) fn cancel(&mut self, now: Instant, cfg: &ProxyConfig, out: &mut Vec<Command>) {
        self.cancelled = true;
        self.pending.clear();
        for i in 0..self.branches.len() {
            self.cancel_branch(now, cfg, i);
        }
        self.pump(now, cfg, out);
        self.finish_if_done(now, cfg, out);
    }

    fn cancel_branch(&mut self, now: Instant, cfg: &ProxyConfig, i: usize) {
        let b = &mut self.branches[i];
        // §9.1: only an INVITE is cancelled; other requests are answered at once, and their
        // transactions end on their own (timer F).
        if !self.invite || b.status.is_some() || b.cancel.is_some() {
            return;
        }
        if !b.provisional {
            // §9.1: no CANCEL before a provisional response; send it when one arrives.
            b.cancel_wanted = true;
            return;
        }
        let Some(invite) = b.client.request() else {
            return;
        };
        if let Ok(m) = Message::parse(build_cancel(&invite)) {
            b.cancel = Some(Box::new(ClientTransaction::new(
                now,
                m,
                reliability(b.dest),
                cfg.timers,
            )));
            b.give_up = Some(now + cfg.timers.timeout());
        }
    }

    /// Fires due timers, timer C included.
    pub(crate) fn on_timeout(&mut self, now: Instant, cfg: &ProxyConfig, out: &mut Vec<Command>) {
        self.server.handle_timeout(now);
        if self.park_until.is_some_and(|t| t <= now) {
            self.give_up_waiting(now, cfg, out);
        }
        if self.trying_at.is_some_and(|t| t <= now) {
            self.send_trying(now, cfg);
        }
        for i in 0..self.branches.len() {
            self.branch_timeout(now, cfg, i, out);
        }
        self.pump(now, cfg, out);
    }

    /// Fires the due timers of branch `i`: its transactions', timer C, and the end of the
    /// wait for a final response after its CANCEL.
    fn branch_timeout(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        i: usize,
        out: &mut Vec<Command>,
    ) {
        let b = &mut self.branches[i];
        b.client.handle_timeout(now);
        if let Some(c) = b.cancel.as_mut() {
            c.handle_timeout(now);
        }
        if b.timer_c.is_some_and(|t| t <= now) && b.status.is_none() {
            b.timer_c = None;
            if b.provisional {
                b.timer_c_fired = true;
                self.cancel_branch(now, cfg, i);
            } else {
                // §16.8: with no provisional response, the client transaction ends and the
                // branch counts as answered 408. Left running, a late 1xx would keep it in
                // Proceeding, which has no timer of its own, for ever.
                b.client.abandon();
                self.branch_final(now, cfg, i, Err(408), out);
            }
        }
        let b = &mut self.branches[i];
        if b.give_up.is_some_and(|t| t <= now) && b.status.is_none() {
            // §9.1: the CANCEL brought no final response; the INVITE transaction goes.
            b.client.abandon();
            let code = if self.cancelled { 487 } else { 408 };
            self.branch_final(now, cfg, i, Err(code), out);
        }
    }

    /// When [`on_timeout`](Self::on_timeout) is next needed.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let branches = self.branches.iter().flat_map(|b| {
            [
                b.client.poll_timeout(),
                b.timer_c.filter(|_| b.status.is_none()),
                b.give_up.filter(|_| b.status.is_none()),
                b.cancel
                    .as_deref()
                    .and_then(ClientTransaction::poll_timeout),
            ]
        });
        [self.server.poll_timeout(), self.trying_at, self.park_until]
            .into_iter()
            .chain(branches)
            .flatten()
            .min()
    }

    /// True when the request went to a next hop (or waits to).
    pub(crate) fn has_branches(&self) -> bool {
        !self.branches.is_empty() || !self.pending.is_empty()
    }

    /// True once the request has its final answer upstream.
    pub(crate) fn is_answered(&self) -> bool {
        self.answered
    }

    /// True when every transaction of the context has ended. A REGISTER answered here (no
    /// branch) ends with its final answer, a challenge or the 200 after its write alike: a
    /// retransmission is processed again and answered alike (a 401 with a fresh nonce), as
    /// Kamailio's stateless answers are. Kept for timer J, each would hold its context for
    /// 32 s on the busiest path of a registrar.
    pub(crate) fn is_done(&self) -> bool {
        if self.register && self.answered && !self.has_branches() {
            return true;
        }
        self.server.state() == ServerState::Terminated
            && self.branches.iter().all(|b| {
                b.client.state() == ClientState::Terminated
                    && b.cancel
                        .as_ref()
                        .is_none_or(|c| c.state() == ClientState::Terminated)
            })
    }

    /// What stays of it once only its last timers run ([`Linger`]): an INVITE whose 2xx went
    /// upstream through its one branch; a non-INVITE answered whose branches all have
    /// their final answer. `None` while anything else may still happen here: a branch to
    /// ACK again, a reply route or a relayed call's media to apply to a 2xx, a target
    /// refresh to note, a NAT to fix a callee's Contact for, or anything waiting.
    pub(crate) fn linger(&self) -> Option<Linger> {
        let state = self.server.state();
        let accepted = self.invite && state == ServerState::Accepted;
        if !(accepted || (!self.invite && state == ServerState::Completed)) {
            return None;
        }
        // A non-INVITE transaction that completed only absorbs its final response again,
        // as the linger drops it; an INVITE's that completed ACKs it again: not yet.
        let ended = |c: &ClientTransaction, invite: bool| match c.state() {
            ClientState::Terminated => true,
            ClientState::Completed => !invite,
            ClientState::Accepted => accepted,
            _ => false,
        };
        let settled = self.branches.iter().all(|b| {
            let cancel = b.cancel.as_deref().is_none_or(|c| ended(c, false));
            ended(&b.client, self.invite) && cancel && b.status.is_some() && b.nat.is_none()
        });
        // A reply route (the script's, or the transaction's) runs for each reply, with the
        // transaction's state: the context stays.
        let replies = self
            .routing
            .as_ref()
            .is_some_and(|r| r.tx.on_reply.is_some() || r.script.has_reply_route());
        let waiting = self.parked.is_some() || self.trying_at.is_some() || self.failure_due;
        // An INVITE forked: which branch a later 2xx comes from is the context's to tell.
        let forked = self.invite && self.branches.len() != 1;
        if !settled
            || forked
            || replies
            || waiting
            || !self.pending.is_empty()
            || !self.noted.is_empty()
            || self.media.is_some()
            || self.refresh_key.is_some()
        {
            return None;
        }
        let until = self.server.poll_timeout()?;
        if accepted {
            let b = self.branches.first()?;
            let call = match self.dialog.as_deref() {
                Some(Followed::Invite(key)) => Some(key.clone()),
                _ => None,
            };
            let accepted = Accepted {
                upstream: self.upstream,
                hop: b.dest,
                issued: b.issued,
                call,
            };
            return Some(Linger::accepted(self.key, until, accepted));
        }
        let data = self.server.last_response()?.clone();
        Some(Linger::completed(self.key, until, self.upstream, data))
    }

    /// Moves every queued transaction output to `out` and reacts to responses.
    fn pump(&mut self, now: Instant, cfg: &ProxyConfig, out: &mut Vec<Command>) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.server.poll_output() {
                progressed = true;
                if let Output::Transmit(data) = o {
                    out.push(Command::Send {
                        dest: self.upstream,
                        data,
                    });
                }
            }
            for i in 0..self.branches.len() {
                while let Some(o) = self.branches[i].client.poll_output() {
                    progressed = true;
                    match o {
                        Output::Transmit(data) => out.push(Command::Send {
                            dest: self.branches[i].dest,
                            data,
                        }),
                        Output::Response(r) => self.branch_response(now, cfg, i, *r, out),
                        Output::Timeout if self.fail_over(now, cfg, i, 408) => {}
                        Output::Timeout => self.branch_final(now, cfg, i, Err(408), out),
                        Output::Terminated => {}
                    }
                }
                let dest = self.branches[i].dest;
                if let Some(c) = self.branches[i].cancel.as_mut() {
                    while let Some(o) = c.poll_output() {
                        progressed = true;
                        if let Output::Transmit(data) = o {
                            out.push(Command::Send { dest, data });
                        }
                    }
                }
            }
            if !progressed {
                if self.answered && self.branches.iter().all(|b| b.status.is_some()) {
                    // Everything is final: the request is not needed while the context lingers.
                    self.request = None;
                }
                return;
            }
        }
    }

    fn branch_response(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        i: usize,
        resp: Message,
        out: &mut Vec<Command>,
    ) {
        let Some(code) = resp.status() else { return };
        // A 503 from the callee itself moves on to another address of a name, not to
        // another flow of the same client (RFC 5626 §5.3: after 430 or a transport error
        // only); a flow is a connection.
        let next_is_flow = self.branches[i]
            .alternatives
            .as_ref()
            .and_then(|a| a.last())
            .is_some_and(|(d, _)| d.connection.is_some());
        let moves_on = code == 430 || (code == 503 && !next_is_flow);
        if moves_on && self.fail_over(now, cfg, i, code) {
            return;
        }
        match code {
            100..=199 => {
                // Any provisional response, 100 included, allows the CANCEL (§9.1); only
                // 101-199 go upstream (§16.7 step 2) and restart timer C, which only an
                // INVITE has (§16.6 step 11).
                let b = &mut self.branches[i];
                b.provisional = true;
                if code > 100 && self.invite {
                    b.timer_c = Some(now + cfg.timer_c);
                }
                if b.cancel_wanted {
                    self.cancel_branch(now, cfg, i);
                }
                if code > 100 && !self.answered {
                    self.note_answer(code, &resp, i);
                    let issued = self.branches[i].issued.as_ref();
                    let (data, pair) = route_key::for_caller(&resp, issued, self.branches[i].nat);
                    self.noted.extend(pair.map(Noted::Pair));
                    let source = self.branches[i].dest.addr.ip();
                    self.upstream(now, Held::new(code, data, false, source), out);
                }
            }
            200..=299 => {
                self.note_answer(code, &resp, i);
                self.branches[i].status = Some(code);
                self.answered = true;
                let b = &self.branches[i];
                let (data, pair) = route_key::for_caller(&resp, b.issued.as_ref(), b.nat);
                let source = b.dest.addr.ip();
                self.noted.extend(pair.map(Noted::Pair));
                self.upstream(now, Held::new(code, data, true, source), out);
                self.pending.clear();
                for j in 0..self.branches.len() {
                    self.cancel_branch(now, cfg, j);
                }
            }
            _ => self.branch_final(now, cfg, i, Ok(resp), out),
        }
    }

    /// Sends a provisional or 2xx response upstream, unless its SDP goes to the media relay
    /// first or others wait for it (`rtp_relay()`).
    fn upstream(&mut self, now: Instant, item: Held, out: &mut Vec<Command>) {
        let id = self.id;
        let item = match self.media.as_deref_mut() {
            None => item,
            Some(m) => match m.held.hold(&m.call, item) {
                Hold::Go(item) => item,
                Hold::Wait(request) => {
                    out.extend(request.map(|request| Command::Media {
                        request,
                        then: Some(crate::suspend::Resume { context: id }),
                    }));
                    return;
                }
            },
        };
        self.send_up(now, item, out);
    }

    fn send_up(&mut self, now: Instant, item: Held, out: &mut Vec<Command>) {
        match item.two_xx {
            true => self.forward_2xx(now, item.code, item.data, out),
            false => self.respond(now, item.code, item.data),
        }
    }

    /// The media relay answered for the oldest response held: it goes upstream (with `sdp`
    /// for its body), then those after it until one must wait for the relay in turn.
    pub(crate) fn media_answered(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        sdp: Option<Vec<u8>>,
        out: &mut Vec<Command>,
    ) {
        let id = self.id;
        let mut next = self
            .media
            .as_deref_mut()
            .and_then(|m| m.held.answered(sdp))
            .map(Ok);
        while let Some(step) = next {
            match step {
                Ok(item) => self.send_up(now, item, out),
                Err(request) => {
                    out.push(Command::Media {
                        request,
                        then: Some(crate::suspend::Resume { context: id }),
                    });
                    break;
                }
            }
            next = self.media.as_deref_mut().and_then(|m| m.held.next(&m.call));
        }
        self.pump(now, cfg, out);
    }

    /// Sends a 2xx upstream at once, every one of them (RFC 6026): through the server
    /// transaction, or statelessly once it has sent a failure and would swallow the 2xx
    /// (§16.7 step 5).
    fn forward_2xx(&mut self, now: Instant, code: u16, data: Bytes, out: &mut Vec<Command>) {
        match self.server.state() {
            ServerState::Completed | ServerState::Confirmed | ServerState::Terminated
                if self.invite || std::mem::take(&mut self.unanswered) =>
            {
                out.push(Command::Send {
                    dest: self.upstream,
                    data,
                });
            }
            _ => self.respond(now, code, data),
        }
    }

    /// Branch `i` ended with `status` (a response, or ours) before any provisional response:
    /// when that is a reason to and its target has another address, the same request goes
    /// there in a new transaction (RFC 3263 §4.3), and the address that failed is noted.
    /// False when the branch ends.
    fn fail_over(&mut self, now: Instant, cfg: &ProxyConfig, i: usize, status: u16) -> bool {
        let b = &self.branches[i];
        // Not once the branch was heard from, is being cancelled, or the call is answered:
        // the new attempt could not be cancelled with it.
        let settled = b.provisional || b.cancel.is_some() || b.cancel_wanted || b.timer_c_fired;
        if !fails_over(status) || self.cancelled || self.answered || b.status.is_some() || settled {
            return false;
        }
        // A 430 says a flow failed, not the hop that said so (an edge proxy).
        if status != 430 {
            self.noted.push(Noted::Failed(b.dest));
        }
        let timer_c = self.is_invite().then(|| now + cfg.timer_c);
        let b = &mut self.branches[i];
        let Some((dest, request)) = b.alternatives.as_mut().and_then(|a| a.pop()) else {
            return false;
        };
        b.client =
            ClientTransaction::for_bytes(now, self.invite, request, reliability(dest), cfg.timers);
        b.dest = dest;
        b.attempt += 1;
        b.provisional = false;
        b.fallback = None;
        b.timer_c = timer_c;
        true
    }

    /// A branch ended without success: with this response, or with none (`Err` with the
    /// status it counts as: 408 for a timeout or timer C, 503 for a transport error).
    fn branch_final(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        i: usize,
        resp: Result<Message, u16>,
        out: &mut Vec<Command>,
    ) {
        if self.branches[i].status.is_some() {
            return;
        }
        // A ringing branch timer C ended was not answered: 408, not the 487 its CANCEL
        // brought (a failure route tells "no answer" from a caller's CANCEL).
        let resp = match resp {
            Ok(r) if self.branches[i].timer_c_fired && r.status() == Some(487) => Err(408),
            other => other,
        };
        let timeout = resp.is_err();
        let (code, upstream) = match resp {
            // (A callee that echoes Record-Route in a failure gets no key of ours back to
            // the caller.)
            Ok(r) => {
                let b = &self.branches[i];
                let data = route_key::for_caller(&r, b.issued.as_ref(), b.nat).0;
                (r.status().unwrap_or(500), Some(data))
            }
            // RFC 4320 §4.2: a timeout is no answer to a non-INVITE, not even a 408.
            Err(408) if !self.invite => (408, None),
            Err(code) => (code, self.own_response(cfg, code)),
        };
        self.branches[i].status = Some(code);
        if let Some(upstream) = upstream {
            let better = |(b, _): &(u16, Bytes)| class_rank(code) < class_rank(*b);
            if self.best.as_ref().is_none_or(better) {
                self.best = Some((code, upstream));
                self.best_timed_out = timeout && code == 408;
            }
        } else if self.request.is_none() {
            return; // let go already
        }
        if code >= 600 {
            self.pending.clear();
            for j in 0..self.branches.len() {
                self.cancel_branch(now, cfg, j);
            }
        }
        self.finish_if_done(now, cfg, out);
    }

    /// When every branch has a final response: try the next group, or send the best upstream.
    fn finish_if_done(&mut self, now: Instant, cfg: &ProxyConfig, out: &mut Vec<Command>) {
        if self.answered || self.branches.iter().any(|b| b.status.is_none()) {
            return;
        }
        if !self.pending.is_empty() && !self.cancelled {
            self.start_next_group(now, cfg);
            self.pump(now, cfg, out);
            return;
        }
        let armed = self
            .routing
            .as_ref()
            .is_some_and(|r| r.tx.on_failure.is_some());
        if armed && self.request.is_some() {
            // Also after a CANCEL, as Kamailio's: the route sees 487 and `t_is_canceled()`,
            // and can start no new branch.
            self.failure_due = true;
            return;
        }
        self.send_best(now, cfg, out);
    }

    /// The failure route to run now, if one is due: its routing state (taken; give it back
    /// with [`after_failure`](Self::after_failure)), the request, and the best reply so far.
    pub(crate) fn take_failure(&mut self) -> Option<(Box<TxRouting>, Message, FailureStatus)> {
        if !std::mem::take(&mut self.failure_due) {
            return None;
        }
        let routing = self.routing.take()?;
        let request = Message::clone(self.request.as_deref()?);
        let status = self.failure_status()?;
        Some((routing, request, status))
    }

    /// True when a failure route is due.
    pub(crate) fn failure_is_due(&self) -> bool {
        self.failure_due
    }

    /// What a failure route sees: the index of the next branch, and the best reply so far
    /// (487 after a CANCEL, 408 when there is none). `None` once the request was let go.
    pub(crate) fn failure_status(&self) -> Option<FailureStatus> {
        self.request.as_ref()?;
        let (status, reason) = match &self.best {
            Some((code, data)) => {
                let reason = Message::parse(data.clone())
                    .ok()
                    .and_then(|m| m.reason().map(str::to_owned))
                    .unwrap_or_default();
                (*code, reason)
            }
            None if self.cancelled => (487, reason(487).to_owned()),
            None => (408, reason(408).to_owned()),
        };
        Some(FailureStatus {
            next_branch: self.next_branch(),
            status,
            reason,
            canceled: self.cancelled,
            timed_out: !self.cancelled && (self.best.is_none() || self.best_timed_out),
        })
    }

    /// What the reply routes of this context need, when it has any (`global`: the current
    /// script has a global reply route).
    pub(crate) fn reply_route_input(&self, global: bool) -> Option<ReplyInput> {
        let routing = self.routing.as_deref();
        let on_reply = routing.and_then(|r| r.tx.on_reply);
        let has_global = routing.map_or(global, |r| r.script.has_reply_route());
        if !has_global && on_reply.is_none() {
            return None;
        }
        Some(ReplyInput {
            script: routing.map(|r| r.script.clone()),
            tx: routing.map(|r| r.tx.clone()).unwrap_or_default(),
            request: self.request.as_deref().cloned(),
            on_reply,
        })
    }

    /// Keeps the script state a reply route left.
    pub(crate) fn set_tx(&mut self, tx: TxScript) {
        if let Some(r) = self.routing.as_mut() {
            r.tx = tx;
        }
    }

    /// A failure route's `t_relay` that waited for a DNS answer goes on with these branch
    /// groups (none: the names did not resolve, the best reply goes upstream), unless the
    /// transaction was answered meanwhile (a CANCEL).
    pub(crate) fn resume_failure(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        groups: Vec<Vec<Prepared>>,
        out: &mut Vec<Command>,
    ) {
        if self.answered {
            return;
        }
        if groups.is_empty() || self.cancelled {
            return self.send_best(now, cfg, out);
        }
        self.pending.extend(groups);
        self.start_next_group(now, cfg);
        self.pump(now, cfg, out);
        self.finish_if_done(now, cfg, out);
    }

    /// Index of the next branch to be created.
    pub(crate) fn next_branch(&self) -> usize {
        self.branches.len() + self.pending.iter().map(Vec::len).sum::<usize>()
    }

    /// Ends a failure route: new branch groups to try, a final answer of the script's own,
    /// or (neither) the best reply received goes upstream.
    pub(crate) fn after_failure(
        &mut self,
        now: Instant,
        cfg: &ProxyConfig,
        routing: Box<TxRouting>,
        effects: Effects,
        out: &mut Vec<Command>,
    ) {
        self.routing = Some(routing);
        if self.answered || self.parked.is_some() {
            // Answered while the route ran (a CANCEL), or waiting for a DNS answer.
            return;
        }
        if self.cancelled {
            // A cancelled transaction ends with its 487: no new branch, no other answer.
            return self.send_best(now, cfg, out);
        }
        if let Some((code, data)) = effects.reply {
            self.answered = true;
            self.respond(now, code, data);
            self.pump(now, cfg, out);
        } else if !effects.groups.is_empty() {
            self.pending.extend(effects.groups);
            self.start_next_group(now, cfg);
            self.pump(now, cfg, out);
            self.finish_if_done(now, cfg, out);
        } else {
            self.send_best(now, cfg, out);
        }
    }

    /// Sends the best final response upstream (§16.7 step 6).
    fn send_best(&mut self, now: Instant, cfg: &ProxyConfig, out: &mut Vec<Command>) {
        self.answered = true;
        let (code, data) = match self.best.take() {
            // §16.7: a 503 from downstream becomes 500 upstream.
            Some((503, _)) => (500, self.own_response(cfg, 500)),
            // 430 tells a proxy that a flow failed (RFC 5626 §5.3); for a new request,
            // every flow of the callee failed, and its caller hears it is unavailable. A
            // request of a dialog whose flow is gone keeps its 430.
            Some((430, _)) if !self.in_dialog() => (480, self.own_response(cfg, 480)),
            Some((code, data)) => (code, Some(data)),
            None if self.cancelled => (487, self.own_response(cfg, 487)),
            None if self.invite => (408, self.own_response(cfg, 408)),
            None => {
                // Every branch of a non-INVITE timed out: no 408 (RFC 4320 §4.2).
                self.server.abandon(now);
                self.unanswered = true;
                return self.pump(now, cfg, out);
            }
        };
        if let Some(data) = data {
            self.respond(now, code, data);
        }
        if let Some(delete) = self.media.as_ref().and_then(|m| m.call.delete()) {
            // A failed or cancelled call: its media session goes.
            out.push(Command::Media {
                request: delete,
                then: None,
            });
        }
        self.pump(now, cfg, out);
    }
}
