//! A simulated UDP network around the proxy core, for the property tests in `props`: user
//! agents built on sip-transaction's state machines (UACs that send one request each, UASes
//! that answer when told to), a clock moved by hand, and a plan that decides the fate of
//! every datagram (delivered, lost, late, duplicated) and of every binding write.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use registrar::Location;
use sip_message::header::Contact;
use sip_message::{HeaderName, Message, Method, Protocol, RequestBuilder, ResponseBuilder};
use sip_transaction::{
    build_cancel, ClientState, ClientTransaction, Output, Reliability, Role, ServerState,
    ServerTransaction, TimerConfig, TransactionKey,
};

use crate::reply::reason;
use crate::{Command, Core, Destination, ProxyConfig, Resume, Written};

/// T1 of the proxy and of every user agent: 64·T1 is 6.4 s.
pub(crate) const T1: Duration = Duration::from_millis(100);

/// The test configuration (`tests::config`) with T1 = [`T1`] and this timer C.
pub(crate) fn config(timer_c: Duration) -> ProxyConfig {
    let mut cfg = ProxyConfig {
        timer_c,
        ..crate::tests::config()
    };
    cfg.timers.t1 = T1;
    cfg
}

/// What the network does with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Deliver,
    Lose,
    /// Delivered this many quarters of T1 late (less than a round trip).
    Late(u8),
    /// Delivered at once, and again this many quarters of T1 later.
    Twice(u8),
}

/// What storage does with one binding write: answers after `delay`, written or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteFate {
    pub(crate) delay: Duration,
    pub(crate) stored: bool,
}

/// A node of the network, each at its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    /// The core, at 192.0.2.1:5060.
    Proxy,
    /// User agent client `k`, at 192.0.2.(10+k):5060 (UAC 0 is `tests::CALLER`).
    Uac(usize),
    /// User agent server `i`, at 192.0.2.(20+i):5060.
    Uas(usize),
}

impl Node {
    pub(crate) fn addr(self) -> SocketAddr {
        let host = match self {
            Node::Proxy => 1,
            Node::Uac(k) => 10 + k,
            Node::Uas(i) => 20 + i,
        };
        SocketAddr::from(([192, 0, 2, host as u8], 5060))
    }

    fn of(addr: SocketAddr) -> Node {
        let [.., host] = match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.octets(),
            ip => panic!("no node at {ip}"),
        };
        match host {
            1 => Node::Proxy,
            10..=19 => Node::Uac(usize::from(host) - 10),
            20..=29 => Node::Uas(usize::from(host) - 20),
            _ => panic!("no node at {addr}"),
        }
    }
}

/// A message the proxy received or sent (sent: before the network decided its fate).
#[derive(Debug)]
pub(crate) struct Hop {
    pub(crate) at: Instant,
    pub(crate) from: Node,
    pub(crate) to: Node,
    pub(crate) msg: Message,
    /// Whether the context of UAC 0's request existed when the proxy got the message or
    /// timer this hop came from (false: it was handled without it, statelessly).
    pub(crate) in_context: bool,
}

/// A binding write the core asked for.
#[derive(Debug)]
pub(crate) struct Write {
    /// The Call-ID of the REGISTER that caused it.
    pub(crate) call_id: String,
    /// When storage answers.
    pub(crate) due: Instant,
    pub(crate) stored: bool,
    /// How many hops the proxy had made when the write was asked for, and when answered.
    pub(crate) asked: usize,
    pub(crate) answered: Option<usize>,
    /// What waits for it, until answered.
    then: Option<Resume>,
    pub(crate) changes: Vec<registrar::Change>,
}

/// The network, its nodes and the clock.
pub(crate) struct Sim {
    pub(crate) core: Core,
    t0: Instant,
    pub(crate) now: Instant,
    timers: TimerConfig,
    fates: Vec<Fate>,
    write_fates: Vec<WriteFate>,
    /// Datagrams sent so far (the index of the next one's fate).
    datagrams: usize,
    /// Datagrams on their way, by arrival time and order of sending.
    in_flight: BTreeMap<(Instant, usize), (Node, Node, Bytes)>,
    pub(crate) writes: Vec<Write>,
    pub(crate) uacs: Vec<Uac>,
    pub(crate) uases: Vec<Uas>,
    /// Everything the proxy received and sent, in order.
    pub(crate) hops: Vec<Hop>,
    /// When the core reported a timer due that firing did not clear (the simulation stops).
    pub(crate) stuck: Option<Duration>,
    trace: Vec<String>,
}

impl Sim {
    /// A network around a core with this configuration; datagram `n` meets `fates[n]`
    /// (delivered past the end), binding write `n` meets `write_fates[n]` (stored at once
    /// past the end).
    pub(crate) fn new(cfg: ProxyConfig, fates: Vec<Fate>, write_fates: Vec<WriteFate>) -> Sim {
        let now = Instant::now();
        Sim {
            timers: cfg.timers,
            core: Core::new(cfg, Arc::new(Location::new())),
            t0: now,
            now,
            fates,
            write_fates,
            datagrams: 0,
            in_flight: BTreeMap::new(),
            writes: Vec::new(),
            uacs: Vec::new(),
            uases: Vec::new(),
            hops: Vec::new(),
            stuck: None,
            trace: Vec::new(),
        }
    }

    /// Adds a UAC that will send `request` (its Via must name the UAC's address).
    pub(crate) fn add_uac(&mut self, request: Message, retransmits: bool) {
        self.uacs.push(Uac {
            node: Node::Uac(self.uacs.len()),
            timers: self.timers,
            request,
            retransmits,
            tx: None,
            cancel: None,
        });
    }

    /// Adds a UAS; unless it `obeys_cancel`, it ignores CANCEL requests.
    pub(crate) fn add_uas(&mut self, retransmits: bool, obeys_cancel: bool) {
        let i = self.uases.len();
        self.uases.push(Uas {
            node: Node::Uas(i),
            timers: self.timers,
            tag: format!("uas{i}"),
            retransmits,
            obeys_cancel,
            transactions: 0,
            call: None,
        });
    }

    /// Registers UAS `i` as a contact of `user`@example.com with this q, outside the
    /// network: its write is stored at once and the 200 goes nowhere.
    pub(crate) fn register_uas(&mut self, i: usize, user: &str, q: &str) {
        let addr = Node::Uas(i).addr();
        let register = crate::tests::msg(&format!(
            "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKreg{i}\n\
From: <sip:{user}@example.com>;tag=r{i}\nTo: <sip:{user}@example.com>\nCall-ID: reg-{i}\n\
CSeq: 1 REGISTER\nContact: <sip:{user}@{addr}>;q={q}\nContent-Length: 0\n\n"
        ));
        let cmds = self
            .core
            .handle_message(self.now, register, udp(Node::Uas(i)));
        let then = cmds.iter().find_map(|c| match c {
            Command::Persist { then, .. } => *then,
            _ => None,
        });
        self.core
            .persisted(self.now, then.expect("a binding write"), Written::Stored);
        self.note(format!("uas{i} registered as {user} with q={q}"));
    }

    /// UAC `k` sends its request.
    pub(crate) fn start(&mut self, k: usize) {
        self.note(format!("uac{k} starts"));
        let mut out = Vec::new();
        self.uacs[k].start(self.now, &mut out);
        self.send_all(Node::Uac(k), out);
    }

    /// UAC `k` cancels its INVITE, if it has no final response yet.
    pub(crate) fn cancel(&mut self, k: usize) {
        self.note(format!("uac{k} cancels"));
        let mut out = Vec::new();
        self.uacs[k].cancel(self.now, &mut out);
        self.send_all(Node::Uac(k), out);
    }

    /// UAS `i` answers its request with `code`.
    pub(crate) fn respond(&mut self, i: usize, code: u16) {
        self.note(format!("uas{i} answers {code}"));
        let mut out = Vec::new();
        self.uases[i].respond(self.now, code, &mut out);
        self.send_all(Node::Uas(i), out);
    }

    /// A node resends its last message now, where RFC 3261 lets it (a UAC its request
    /// while no response came, a UAS its last response while it may).
    pub(crate) fn resend(&mut self, node: Node) {
        self.note(format!("{node:?} resends"));
        let mut out = Vec::new();
        match node {
            Node::Uac(k) => self.uacs[k].resend(&mut out),
            Node::Uas(i) => self.uases[i].resend(&mut out),
            Node::Proxy => unreachable!("the proxy resends on its own"),
        }
        self.send_all(node, out);
    }

    /// Lets `d` pass.
    pub(crate) fn wait(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs the network, the storage and every node's timers until `end`, then sets the
    /// clock to `end`; stops for good once a round at the same instant repeats too often.
    pub(crate) fn run_until(&mut self, end: Instant) {
        let mut rounds_at_once = 0;
        while let Some(t) = self.next_event().filter(|&t| t <= end) {
            if self.stuck.is_some() {
                return;
            }
            if t <= self.now {
                rounds_at_once += 1;
                if rounds_at_once == 1_000 {
                    self.stuck = Some(self.now - self.t0);
                }
            } else {
                rounds_at_once = 0;
                self.now = t;
            }
            self.round();
        }
        self.now = self.now.max(end);
    }

    fn next_event(&self) -> Option<Instant> {
        let arrival = self.in_flight.keys().next().map(|&(t, _)| t);
        let write = self
            .writes
            .iter()
            .filter(|w| w.then.is_some())
            .map(|w| w.due)
            .min();
        let uacs = self.uacs.iter().filter_map(Uac::next_timeout);
        let uases = self.uases.iter().filter_map(Uas::next_timeout);
        [arrival, write, self.core.next_timeout()]
            .into_iter()
            .flatten()
            .chain(uacs)
            .chain(uases)
            .min()
    }

    /// Does everything due now: deliveries, write answers, then the timers.
    fn round(&mut self) {
        let now = self.now;
        while let Some(e) = self.in_flight.first_entry().filter(|e| e.key().0 <= now) {
            let (from, to, data) = e.remove();
            self.deliver(from, to, data);
        }
        for w in 0..self.writes.len() {
            if self.writes[w].due > now {
                continue;
            }
            if let Some(then) = self.writes[w].then.take() {
                let stored = self.writes[w].stored;
                self.writes[w].answered = Some(self.hops.len());
                self.note(format!("storage answers write {w}: stored {stored}"));
                let live = self.tracked_context();
                let written = match stored {
                    true => Written::Stored,
                    false => Written::Failed(&self.writes[w].changes),
                };
                let cmds = self.core.persisted(now, then, written);
                self.commands(cmds, None, live);
            }
        }
        if self.core.next_timeout().is_some_and(|t| t <= now) {
            let live = self.tracked_context();
            let cmds = self.core.handle_timeouts(now);
            self.commands(cmds, None, live);
        }
        for k in 0..self.uacs.len() {
            if self.uacs[k].next_timeout().is_some_and(|t| t <= now) {
                let mut out = Vec::new();
                self.uacs[k].on_timeout(now, &mut out);
                self.send_all(Node::Uac(k), out);
            }
        }
        for i in 0..self.uases.len() {
            if self.uases[i].next_timeout().is_some_and(|t| t <= now) {
                let mut out = Vec::new();
                self.uases[i].on_timeout(now, &mut out);
                self.send_all(Node::Uas(i), out);
            }
        }
    }

    /// True while the proxy has a context for UAC 0's request.
    fn tracked_context(&self) -> bool {
        let Some(uac) = self.uacs.first() else {
            return false;
        };
        let key = TransactionKey::for_request(&uac.request, Role::Server).expect("key");
        let shards = self.core.shards();
        let digest = shards.digest(&key);
        shards
            .lock(crate::shard::Shards::for_digest(digest))
            .by_key
            .contains_key(&digest)
    }

    fn deliver(&mut self, from: Node, to: Node, data: Bytes) {
        let msg = Message::parse(data).expect("the simulation sends parsable messages");
        self.note(format!("{from:?} -> {to:?}: {}", summary(&msg)));
        let mut out = Vec::new();
        match to {
            Node::Proxy => {
                let live = self.tracked_context();
                self.hops.push(Hop {
                    at: self.now,
                    from,
                    to,
                    msg: msg.clone(),
                    in_context: live,
                });
                let call_id = msg.call_id().unwrap_or_default().to_owned();
                let cmds = self.core.handle_message(self.now, msg, udp(from));
                return self.commands(cmds, Some(call_id), live);
            }
            Node::Uac(k) => self.uacs[k].on_message(self.now, msg, &mut out),
            Node::Uas(i) => self.uases[i].on_message(self.now, msg, &mut out),
        }
        self.send_all(to, out);
    }

    /// Carries out the core's commands; `call_id` is that of the message that caused them.
    fn commands(&mut self, cmds: Vec<Command>, call_id: Option<String>, in_context: bool) {
        for c in cmds {
            match c {
                Command::Send { dest, data } => {
                    assert_eq!(dest.protocol, Protocol::Udp, "a UDP-only network");
                    let to = Node::of(dest.addr);
                    let msg =
                        Message::parse(data.clone()).expect("the proxy sends parsable messages");
                    self.hops.push(Hop {
                        at: self.now,
                        from: Node::Proxy,
                        to,
                        msg,
                        in_context,
                    });
                    self.send(Node::Proxy, to, data);
                }
                Command::Persist {
                    then: Some(then),
                    changes,
                } => {
                    let fate = self.write_fates.get(self.writes.len()).copied();
                    let fate = fate.unwrap_or(WriteFate {
                        delay: Duration::ZERO,
                        stored: true,
                    });
                    self.note(format!("write {}: {fate:?}", self.writes.len()));
                    self.writes.push(Write {
                        call_id: call_id.clone().expect("a write for a REGISTER"),
                        due: self.now + fate.delay,
                        stored: fate.stored,
                        asked: self.hops.len(),
                        answered: None,
                        then: Some(then),
                        changes,
                    });
                }
                Command::Persist { then: None, .. } => {}
                Command::Resolve { hosts, .. } => panic!("no names to resolve here: {hosts:?}"),
                Command::Media { request, .. } => panic!("no media relay here: {request:?}"),
                Command::KeepOpen { dest, .. } => panic!("no connections here: {dest:?}"),
                // (Kept messages are the message store's tests'.)
                Command::Messages(_) => {}
            }
        }
    }

    fn send_all(&mut self, from: Node, out: Vec<Bytes>) {
        for data in out {
            self.send(from, Node::Proxy, data);
        }
    }

    /// Puts a datagram on the network, which does with it what its fate says.
    fn send(&mut self, from: Node, to: Node, data: Bytes) {
        let fate = self
            .fates
            .get(self.datagrams)
            .copied()
            .unwrap_or(Fate::Deliver);
        let n = self.datagrams;
        self.datagrams += 1;
        if let Ok(m) = Message::parse(data.clone()) {
            self.note(format!(
                "  sent {from:?} -> {to:?}: {} [{fate:?}]",
                summary(&m)
            ));
        }
        let late = |q: u8| self.now + T1 * u32::from(q) / 4;
        let arrivals = match fate {
            Fate::Deliver => vec![self.now],
            Fate::Lose => vec![],
            Fate::Late(q) => vec![late(q)],
            Fate::Twice(q) => vec![self.now, late(q)],
        };
        for (j, at) in arrivals.into_iter().enumerate() {
            self.in_flight
                .insert((at, 2 * n + j), (from, to, data.clone()));
        }
    }

    fn note(&mut self, line: String) {
        let ms = (self.now - self.t0).as_millis();
        self.trace.push(format!("{ms:>7} ms  {line}"));
    }

    /// Everything that happened, one line each, for failure messages.
    pub(crate) fn trace(&self) -> String {
        self.trace.join("\n")
    }
}

fn udp(node: Node) -> Destination {
    Destination::new(Protocol::Udp, node.addr())
}

/// A message in a few words: method or status, CSeq method, and the end of the top branch.
pub(crate) fn summary(m: &Message) -> String {
    let what = m
        .method()
        .map_or_else(|| m.status().unwrap_or(0).to_string(), |x| x.to_string());
    let cseq = m.cseq().map(|c| c.method.to_string()).unwrap_or_default();
    let branch = top_branch(m);
    let tail = &branch[branch.len().saturating_sub(8)..];
    let tag = m.to().ok().and_then(|t| t.tag()).unwrap_or("-");
    format!("{what} ({cseq}) branch …{tail} to-tag {tag}")
}

/// The branch of the top Via.
pub(crate) fn top_branch(m: &Message) -> String {
    m.top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned))
        .unwrap_or_default()
}

fn is_invite_2xx(m: &Message) -> bool {
    m.status().is_some_and(|c| (200..300).contains(&c))
        && m.cseq().is_ok_and(|c| c.method == Method::Invite)
}

/// A user agent client: sends one request through the proxy and acts on what comes back as
/// RFC 3261 says (ACKs every 2xx to an INVITE, §13.2.2.4; its transactions ACK the rest).
pub(crate) struct Uac {
    node: Node,
    timers: TimerConfig,
    request: Message,
    /// Whether its timers resend requests (a UAC that does not still answers what it gets).
    retransmits: bool,
    tx: Option<ClientTransaction>,
    cancel: Option<ClientTransaction>,
}

impl Uac {
    fn start(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        if self.tx.is_none() {
            let (request, timers) = (self.request.clone(), self.timers);
            self.tx = Some(ClientTransaction::new(
                now,
                request,
                Reliability::Unreliable,
                timers,
            ));
            self.pump(false, out);
        }
    }

    /// Cancels a pending INVITE (RFC 3261 §9.1 would wait for a provisional response; a
    /// proxy copes with a UAC that does not).
    fn cancel(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        let pending = self
            .tx
            .as_ref()
            .is_some_and(|t| matches!(t.state(), ClientState::Calling | ClientState::Proceeding));
        if !pending || self.cancel.is_some() || self.request.method() != Some(Method::Invite) {
            return;
        }
        let Ok(cancel) = Message::parse(build_cancel(&self.request)) else {
            return;
        };
        let timers = self.timers;
        self.cancel = Some(ClientTransaction::new(
            now,
            cancel,
            Reliability::Unreliable,
            timers,
        ));
        self.pump(false, out);
    }

    fn resend(&self, out: &mut Vec<Bytes>) {
        let resends = |t: &ClientTransaction, invite: bool| match t.state() {
            ClientState::Calling => true,
            ClientState::Trying | ClientState::Proceeding => !invite,
            _ => false,
        };
        let invite = self.request.method() == Some(Method::Invite);
        if self.tx.as_ref().is_some_and(|t| resends(t, invite)) {
            out.push(self.request.to_bytes());
        }
        if let Some(c) = self.cancel.as_ref().filter(|c| resends(c, false)) {
            out.extend(c.request().map(|r| r.to_bytes()));
        }
    }

    fn on_message(&mut self, now: Instant, msg: Message, out: &mut Vec<Bytes>) {
        let Ok(cseq) = msg.cseq() else { return };
        if msg.is_request() {
            return;
        }
        if cseq.method == Method::Cancel {
            if let Some(c) = self.cancel.as_mut() {
                c.on_response(now, msg);
            }
        } else if let Some(tx) = self.tx.as_mut() {
            if tx.state() == ClientState::Terminated {
                // The transaction is over: the UA core still ACKs a 2xx (RFC 6026).
                if is_invite_2xx(&msg) {
                    out.extend(self.ack_2xx(&msg));
                }
                return;
            }
            tx.on_response(now, msg);
        }
        self.pump(false, out);
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        for t in [self.tx.as_mut(), self.cancel.as_mut()]
            .into_iter()
            .flatten()
        {
            if t.poll_timeout().is_some_and(|at| at <= now) {
                t.handle_timeout(now);
            }
        }
        self.pump(true, out);
    }

    fn next_timeout(&self) -> Option<Instant> {
        [self.tx.as_ref(), self.cancel.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(ClientTransaction::poll_timeout)
            .min()
    }

    /// Sends what the transactions want sent (`timer`: their timers fired, and this UAC may
    /// not retransmit) and ACKs the 2xx they deliver.
    fn pump(&mut self, timer: bool, out: &mut Vec<Bytes>) {
        let mut ok = Vec::new();
        for t in [self.tx.as_mut(), self.cancel.as_mut()]
            .into_iter()
            .flatten()
        {
            while let Some(o) = t.poll_output() {
                match o {
                    Output::Transmit(b) if !timer || self.retransmits => out.push(b),
                    Output::Response(r) if is_invite_2xx(&r) => ok.push(*r),
                    _ => {}
                }
            }
        }
        for r in ok {
            out.extend(self.ack_2xx(&r));
        }
    }

    /// The ACK of a 2xx (§13.2.2.4): to its Contact, through its Record-Route.
    fn ack_2xx(&self, ok: &Message) -> Option<Bytes> {
        let contact = ok.contacts().find_map(|c| match c.ok()? {
            Contact::Address(a) => Some(a.uri.as_str().to_owned()),
            Contact::Star => None,
        })?;
        let tag = ok.to().ok()?.tag()?;
        let req = &self.request;
        let via = format!("SIP/2.0/UDP {};branch=z9hG4bKack-{tag}", self.node.addr());
        let mut b = RequestBuilder::new("ACK", &contact).header("Via", &via);
        let routes: Vec<String> = ok
            .headers_named(HeaderName::RecordRoute)
            .map(|h| h.value_unfolded().into_owned())
            .collect();
        for r in routes.iter().rev() {
            b = b.header("Route", r);
        }
        let seq = req.cseq().ok()?.seq;
        Some(
            b.header("Max-Forwards", "70")
                .header("From", &req.header(HeaderName::From)?.value_unfolded())
                .header("To", &ok.header(HeaderName::To)?.value_unfolded())
                .header("Call-ID", req.call_id().ok()?)
                .header("CSeq", &format!("{seq} ACK"))
                .build(),
        )
    }
}

/// A user agent server: answers its request when told to (a 2xx to an INVITE resent until
/// ACKed, §13.3.1.4), and a CANCEL as §9.2 says, or not at all.
pub(crate) struct Uas {
    node: Node,
    timers: TimerConfig,
    tag: String,
    retransmits: bool,
    obeys_cancel: bool,
    /// Request transactions it got (a proxy forks to a contact once).
    pub(crate) transactions: usize,
    call: Option<Call>,
}

/// The request a UAS got and its answers.
struct Call {
    request: Message,
    key: TransactionKey,
    tx: ServerTransaction,
    /// The 2xx sent to an INVITE.
    ok: Option<Bytes>,
    /// When the 2xx goes again, the interval, and when the UAS stops waiting for its ACK.
    ok_timer: Option<(Instant, Duration, Instant)>,
}

impl Uas {
    fn on_message(&mut self, now: Instant, msg: Message, out: &mut Vec<Bytes>) {
        let Some(method) = msg.method() else { return };
        let Ok(key) = TransactionKey::for_request(&msg, Role::Server) else {
            return;
        };
        match method {
            Method::Ack => {
                if let Some(c) = self.call.as_mut() {
                    // The ACK of a non-2xx ends the transaction's wait; one of a 2xx comes
                    // in a transaction of its own and stops the 2xx.
                    if c.key != key || !c.tx.on_request(now, &msg) {
                        c.ok_timer = None;
                    }
                }
            }
            Method::Cancel if !self.obeys_cancel => {}
            Method::Cancel => {
                let target = TransactionKey::cancel_target(&msg).ok();
                let (node, tag) = (self.node, self.tag.as_str());
                let code = match self.call.as_mut() {
                    Some(c) if Some(&c.key) == target.as_ref() => {
                        if c.tx.state() == ServerState::Proceeding {
                            let terminated = uas_response(node, tag, &c.request, 487);
                            c.tx.send_response(now, 487, terminated);
                        }
                        200
                    }
                    _ => 481,
                };
                out.push(uas_response(node, tag, &msg, code));
            }
            _ => match self.call.as_mut() {
                Some(c) if c.key == key => {
                    c.tx.on_request(now, &msg);
                }
                _ => {
                    self.transactions += 1;
                    let tx = ServerTransaction::new(&msg, Reliability::Unreliable, self.timers);
                    self.call = Some(Call {
                        request: msg,
                        key,
                        tx,
                        ok: None,
                        ok_timer: None,
                    });
                }
            },
        }
        self.pump(false, out);
    }

    /// Answers the request: through its transaction, but a 2xx to an INVITE that failed
    /// already goes anyway (as a forking proxy downstream may send it), and one that
    /// succeeded is resent.
    fn respond(&mut self, now: Instant, code: u16, out: &mut Vec<Bytes>) {
        let (retransmits, t1, timeout) = (self.retransmits, self.timers.t1, self.timers.timeout());
        let Some(c) = self.call.as_mut() else { return };
        let bytes = uas_response(self.node, &self.tag, &c.request, code);
        let invite = c.request.method() == Some(Method::Invite);
        if invite && (200..300).contains(&code) {
            if c.tx.state() == ServerState::Proceeding {
                c.tx.send_response(now, code, bytes.clone());
                c.ok_timer = retransmits.then_some((now + t1, t1, now + timeout));
            } else if let Some(ok) = &c.ok {
                out.push(ok.clone());
                return;
            } else {
                out.push(bytes.clone());
            }
            c.ok = Some(bytes);
        } else {
            c.tx.send_response(now, code, bytes);
        }
        self.pump(false, out);
    }

    fn resend(&self, out: &mut Vec<Bytes>) {
        let Some(c) = &self.call else { return };
        let invite = c.request.method() == Some(Method::Invite);
        let may = match c.tx.state() {
            ServerState::Proceeding => invite, // §13.3.1.1: provisional responses again
            ServerState::Completed => invite,  // one more timer G
            _ => false,
        };
        if may {
            out.extend(c.tx.last_response().cloned());
        }
        if c.ok_timer.is_some() {
            out.extend(c.ok.clone());
        }
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Vec<Bytes>) {
        let t2 = self.timers.t2;
        let Some(c) = self.call.as_mut() else { return };
        if c.tx.poll_timeout().is_some_and(|at| at <= now) {
            c.tx.handle_timeout(now);
        }
        if let Some((at, interval, until)) = c.ok_timer.filter(|(at, ..)| *at <= now) {
            if at >= until {
                c.ok_timer = None;
            } else {
                out.extend(c.ok.clone());
                let next = (interval * 2).min(t2);
                c.ok_timer = Some((now + next, next, until));
            }
        }
        self.pump(true, out);
    }

    fn next_timeout(&self) -> Option<Instant> {
        let c = self.call.as_ref()?;
        [c.tx.poll_timeout(), c.ok_timer.map(|(at, ..)| at)]
            .into_iter()
            .flatten()
            .min()
    }

    fn pump(&mut self, timer: bool, out: &mut Vec<Bytes>) {
        let Some(c) = self.call.as_mut() else { return };
        while let Some(o) = c.tx.poll_output() {
            if let Output::Transmit(b) = o {
                if !timer || self.retransmits {
                    out.push(b);
                }
            }
        }
    }
}

/// The response of the UAS at `node` with To tag `tag` to `req` (a 2xx to an INVITE with its
/// Contact and the Record-Route).
fn uas_response(node: Node, tag: &str, req: &Message, code: u16) -> Bytes {
    let tag = (code > 100).then_some(tag);
    let mut b = ResponseBuilder::for_request(req, code, reason(code), tag);
    if (200..300).contains(&code) && req.method() == Some(Method::Invite) {
        b = b.header("Contact", &format!("<sip:bob@{}>", node.addr()));
        for rr in req.headers_named(HeaderName::RecordRoute) {
            b = b.header("Record-Route", &rr.value_unfolded());
        }
    }
    b.build()
}
