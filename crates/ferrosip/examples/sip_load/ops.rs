//! The operations of a load run, each a small state machine: the requests it sends, the
//! responses it takes, its retransmissions (RFC 3261 §17.1: T1 doubling up to T2, given up
//! after 64·T1), and the callee's side of each call.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_message::header::{AuthHeader, Contact};
use sip_message::{HeaderName, Message};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const GIVE_UP: Duration = Duration::from_secs(32);

/// What each operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Register,
    Auth,
    Call,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Register => "register",
            Mode::Auth => "auth",
            Mode::Call => "call",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The REGISTER (or the INVITE) is out.
    First,
    /// The REGISTER with credentials is out.
    Authenticated,
    /// The ACK and BYE are out.
    Bye,
    Done,
    /// Ended by this status (0: no answer within 32 s).
    Failed(u16),
}

struct Op {
    stage: Stage,
    started: Instant,
    /// The request in flight, its last sending, and the wait before the next.
    data: Vec<u8>,
    sent: Instant,
    interval: Duration,
    /// A provisional response came: no more retransmissions (INVITE).
    provisional: bool,
    /// The ACK, sent again for a 200 retransmitted.
    ack: Vec<u8>,
}

/// The callee's 200 to an INVITE, sent again until its ACK.
struct Pending {
    data: Vec<u8>,
    sent: Instant,
    interval: Duration,
}

/// What a run gives.
pub(crate) struct Report {
    pub(crate) completed: usize,
    pub(crate) failed: usize,
    pub(crate) retrans: usize,
    pub(crate) server_retrans: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// How many failed with each status (0: no answer), as `status:count,…`.
    pub(crate) failures: String,
}

/// Every operation of the run.
pub(crate) struct Ops {
    mode: Mode,
    users: usize,
    password: String,
    domain: String,
    uac: SocketAddr,
    uas: SocketAddr,
    tag: u32,
    ops: Vec<Op>,
    inflight: Vec<usize>,
    callee: HashMap<usize, Pending>,
    latencies: Vec<Duration>,
    retrans: usize,
    server_retrans: usize,
}

impl Ops {
    pub(crate) fn new(
        mode: Mode,
        count: usize,
        users: usize,
        password: String,
        domain: String,
        uac: SocketAddr,
        uas: SocketAddr,
    ) -> Ops {
        Ops {
            mode,
            users: users.max(1),
            password,
            domain,
            uac,
            uas,
            tag: std::process::id(),
            ops: Vec::with_capacity(count),
            inflight: Vec::new(),
            callee: HashMap::new(),
            latencies: Vec::with_capacity(count),
            retrans: 0,
            server_retrans: 0,
        }
    }

    fn call_id(&self, i: usize) -> String {
        format!("{i}-{}-load", self.tag)
    }

    fn index(&self, m: &Message) -> Option<usize> {
        let id = m.call_id().ok()?;
        id.split_once('-')?
            .0
            .parse()
            .ok()
            .filter(|&i| i < self.ops.len())
    }

    fn register(&self, i: usize, cseq: u32, authorization: &str) -> Vec<u8> {
        let (user, d, uac) = (format!("u{}", i % self.users), &self.domain, self.uac);
        format!(
            "REGISTER sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK-{}-{i}-{cseq};rport\r\n\
             From: <sip:{user}@{d}>;tag={i}\r\nTo: <sip:{user}@{d}>\r\nCall-ID: {}\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{uac}>\r\n{authorization}\
             Max-Forwards: 70\r\nExpires: 3600\r\nUser-Agent: sip_load\r\nContent-Length: 0\r\n\r\n",
            self.tag,
            self.call_id(i),
        )
        .into_bytes()
    }

    /// The callee's REGISTER (sent from its own socket).
    pub(crate) fn callee_register(&self) -> Vec<u8> {
        let (d, uas) = (&self.domain, self.uas);
        format!(
            "REGISTER sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP {uas};branch=z9hG4bK-{}-callee;rport\r\n\
             From: <sip:bob@{d}>;tag=callee\r\nTo: <sip:bob@{d}>\r\nCall-ID: callee-{}-load\r\n\
             CSeq: 1 REGISTER\r\nContact: <sip:bob@{uas}>\r\nMax-Forwards: 70\r\nExpires: 3600\r\n\
             Content-Length: 0\r\n\r\n",
            self.tag, self.tag,
        )
        .into_bytes()
    }

    /// True for the 200 to the callee's REGISTER.
    pub(crate) fn callee_registered(&self, data: &[u8]) -> bool {
        Message::parse(data.to_vec()).is_ok_and(|m| m.status() == Some(200))
    }

    fn invite(&self, i: usize) -> Vec<u8> {
        let (d, uac) = (&self.domain, self.uac);
        let sdp = format!(
            "v=0\r\no=caller {i} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 0\r\n",
            ip = uac.ip()
        );
        format!(
            "INVITE sip:bob@{d} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK-{}-{i}-1;rport\r\n\
             From: <sip:caller@{d}>;tag={i}\r\nTo: <sip:bob@{d}>\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{uac}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            self.tag,
            self.call_id(i),
            sdp.len(),
        )
        .into_bytes()
    }

    /// An in-dialog request of the caller, after the 200 `ok`.
    fn in_dialog(&self, i: usize, ok: &Message, method: &str, cseq: u32) -> Option<Vec<u8>> {
        let target = match ok.contacts().next()?.ok()? {
            Contact::Address(a) => a.uri.as_str().to_owned(),
            Contact::Star => return None,
        };
        let to = ok.header(HeaderName::To)?.value;
        let mut routes: Vec<&str> = ok
            .headers_named(HeaderName::RecordRoute)
            .flat_map(|h| h.values())
            .collect();
        routes.reverse();
        let mut out = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-{}-{i}-{method};rport\r\n\
             From: <sip:caller@{}>;tag={i}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            self.uac,
            self.tag,
            self.domain,
            self.call_id(i),
        );
        for r in routes {
            let _ = write!(out, "Route: {r}\r\n");
        }
        out.push_str("Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
        Some(out.into_bytes())
    }

    /// Operation `i` starts now: its first request.
    pub(crate) fn start(&mut self, i: usize, now: Instant) -> Vec<u8> {
        let data = match self.mode {
            Mode::Register | Mode::Auth => self.register(i, 1, ""),
            Mode::Call => self.invite(i),
        };
        self.ops.push(Op {
            stage: Stage::First,
            started: now,
            data: data.clone(),
            sent: now,
            interval: T1,
            provisional: false,
            ack: Vec::new(),
        });
        self.inflight.push(i);
        data
    }

    /// A datagram on the caller's socket (`callee` false) or the callee's; what to send
    /// back to where it came from.
    pub(crate) fn receive(&mut self, data: &[u8], callee: bool, now: Instant) -> Vec<Vec<u8>> {
        let Ok(m) = Message::parse(data.to_vec()) else {
            return Vec::new();
        };
        match (callee, m.is_request()) {
            (true, true) => self.callee_request(&m, now),
            (false, false) => self.response(&m, now),
            _ => Vec::new(),
        }
    }

    fn response(&mut self, m: &Message, now: Instant) -> Vec<Vec<u8>> {
        let (Some(i), Some(status), Ok(cseq)) = (self.index(m), m.status(), m.cseq()) else {
            return Vec::new();
        };
        let method = cseq.method.as_str();
        let stage = self.ops[i].stage;
        // The transaction in flight: its method and CSeq.
        let expected = match (stage, self.mode) {
            (Stage::First, Mode::Call) => ("INVITE", 1),
            (Stage::First, _) => ("REGISTER", 1),
            (Stage::Authenticated, _) => ("REGISTER", 2),
            (Stage::Bye, _) => ("BYE", 2),
            (Stage::Done | Stage::Failed(_), _) => ("", 0),
        };
        if (method, cseq.seq) != expected {
            // A 2xx to the INVITE again: the server did not see our ACK. Anything else is
            // an answer to a retransmission of ours, or came twice.
            if method == "INVITE" && (200..300).contains(&status) && !self.ops[i].ack.is_empty() {
                self.server_retrans += 1;
                return vec![self.ops[i].ack.clone()];
            }
            return Vec::new();
        }
        if status < 200 {
            self.ops[i].provisional |= method == "INVITE";
            return Vec::new();
        }
        match (status, stage) {
            (401, Stage::First) if self.mode == Mode::Auth => {
                if let Some(auth) = self.authorization(i, m) {
                    let data = self.register(i, 2, &auth);
                    self.resend(i, Stage::Authenticated, data.clone(), now);
                    return vec![data];
                }
            }
            (200..=299, Stage::First) if self.mode == Mode::Call => {
                let ack = self.in_dialog(i, m, "ACK", 1);
                if let (Some(ack), Some(bye)) = (ack, self.in_dialog(i, m, "BYE", 2)) {
                    self.ops[i].ack = ack.clone();
                    self.resend(i, Stage::Bye, bye.clone(), now);
                    return vec![ack, bye];
                }
            }
            (200..=299, _) => {
                let op = &mut self.ops[i];
                op.stage = Stage::Done;
                op.data = Vec::new();
                self.latencies.push(now - op.started);
                return Vec::new();
            }
            _ => {}
        }
        self.ops[i].stage = Stage::Failed(status);
        Vec::new()
    }

    /// Sends `data` as operation `i`'s new transaction.
    fn resend(&mut self, i: usize, stage: Stage, data: Vec<u8>, now: Instant) {
        let op = &mut self.ops[i];
        op.stage = stage;
        op.data = data;
        op.sent = now;
        op.interval = T1;
        op.provisional = false;
    }

    fn authorization(&self, i: usize, m: &Message) -> Option<String> {
        let challenge = m
            .headers_named(HeaderName::WwwAuthenticate)
            .filter_map(|h| AuthHeader::parse(h.value).ok())
            .find(|c| {
                c.is_digest()
                    && c.get("algorithm")
                        .is_none_or(|a| a.eq_ignore_ascii_case("MD5"))
            })?;
        let (realm, nonce) = (challenge.get("realm")?, challenge.get("nonce")?);
        let qop = challenge
            .get("qop")
            .is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"));
        let user = format!("u{}", i % self.users);
        let uri = format!("sip:{}", self.domain);
        let credentials = auth::Credentials {
            username: user.clone(),
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            uri: uri.clone(),
            response: String::new(),
            algorithm: auth::Algorithm::Md5,
            qop: qop.then(|| auth::QopAuth {
                nc: 1,
                nc_text: "00000001".into(),
                cnonce: format!("{i:x}"),
            }),
        };
        let ha1 = auth::ha1(auth::Algorithm::Md5, &user, &realm, &self.password);
        let response = auth::expected_response(&ha1, "REGISTER", &credentials);
        let mut h = format!(
            "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
             uri=\"{uri}\", response=\"{response}\", algorithm=MD5"
        );
        if qop {
            let _ = write!(h, ", qop=auth, nc=00000001, cnonce=\"{i:x}\"");
        }
        h.push_str("\r\n");
        Some(h)
    }

    /// A request reaching the callee: INVITE answered 180 and 200, ACK taken, BYE answered.
    fn callee_request(&mut self, m: &Message, now: Instant) -> Vec<Vec<u8>> {
        let Some(i) = self.index(m) else {
            return Vec::new();
        };
        match m.method_token() {
            Some("INVITE") => {
                if let Some(p) = self.callee.get(&i) {
                    self.server_retrans += 1;
                    return vec![p.data.clone()];
                }
                let ringing = self.answer(m, 180, "Ringing", "");
                let sdp = format!(
                    "v=0\r\no=callee {i} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
                     m=audio 40002 RTP/AVP 0\r\n",
                    ip = self.uas.ip()
                );
                let ok = self.answer(m, 200, "OK", &sdp);
                let pending = Pending {
                    data: ok.clone(),
                    sent: now,
                    interval: T1,
                };
                self.callee.insert(i, pending);
                vec![ringing, ok]
            }
            Some("ACK") => {
                self.callee.remove(&i);
                Vec::new()
            }
            Some("BYE") => vec![self.answer(m, 200, "OK", "")],
            _ => Vec::new(),
        }
    }

    /// The callee's response to `m` (its To tag `b<i>`, its Record-Route copied).
    fn answer(&self, m: &Message, status: u16, reason: &str, sdp: &str) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {status} {reason}\r\n");
        for h in m.headers() {
            match h.name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::RecordRoute => {
                    let _ = write!(out, "{}: {}\r\n", h.raw_name, h.value);
                }
                HeaderName::To if m.to().is_ok_and(|t| t.tag().is_none()) => {
                    let _ = write!(out, "To: {};tag=b{}\r\n", h.value, self.tag);
                }
                HeaderName::To => {
                    let _ = write!(out, "To: {}\r\n", h.value);
                }
                _ => {}
            }
        }
        let _ = write!(out, "Contact: <sip:bob@{}>\r\n", self.uas);
        if !sdp.is_empty() {
            out.push_str("Content-Type: application/sdp\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n{sdp}", sdp.len());
        out.into_bytes()
    }

    /// Retransmissions due now (the request, and whether the callee sends it); operations
    /// unanswered for 32 s fail.
    pub(crate) fn timers(&mut self, now: Instant) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let ops = &mut self.ops;
        let retrans = &mut self.retrans;
        self.inflight.retain(|&i| {
            let op = &mut ops[i];
            if matches!(op.stage, Stage::Done | Stage::Failed(_)) {
                return false;
            }
            if now - op.started > GIVE_UP {
                op.stage = Stage::Failed(0);
                return false;
            }
            if !op.provisional && now >= op.sent + op.interval {
                out.push((op.data.clone(), false));
                *retrans += 1;
                op.sent = now;
                op.interval = (op.interval * 2).min(T2);
            }
            true
        });
        for p in self.callee.values_mut() {
            if now >= p.sent + p.interval {
                out.push((p.data.clone(), true));
                self.retrans += 1;
                p.sent = now;
                p.interval = (p.interval * 2).min(T2);
            }
        }
        out
    }

    /// True once every operation started has ended.
    pub(crate) fn all_done(&self) -> bool {
        self.inflight.is_empty()
    }

    pub(crate) fn report(&mut self) -> Report {
        self.latencies.sort_unstable();
        let at = |q: f64| {
            let n = self.latencies.len();
            if n == 0 {
                return f64::NAN;
            }
            let i = ((n as f64 * q) as usize).min(n - 1);
            self.latencies[i].as_secs_f64() * 1e3
        };
        let mut failures = std::collections::BTreeMap::new();
        for o in &self.ops {
            if let Stage::Failed(status) = o.stage {
                *failures.entry(status).or_insert(0) += 1;
            }
        }
        Report {
            completed: self.latencies.len(),
            failed: failures.values().sum(),
            failures: failures
                .iter()
                .map(|(s, n)| format!("{s}:{n}"))
                .collect::<Vec<_>>()
                .join(","),
            retrans: self.retrans,
            server_retrans: self.server_retrans,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }
}
