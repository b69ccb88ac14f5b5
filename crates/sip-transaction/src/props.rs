//! Property tests: random sequences of events on client and server transactions (INVITE and
//! non-INVITE, over reliable and unreliable transports): responses of every class in any
//! order, retransmissions, ACKs, transport errors, the user giving up, and timers fired on
//! time or at arbitrary moments. A lost message is an input that never comes, so losses are
//! the sequences that leave inputs out.
//!
//! After every event: nothing comes out of a terminated transaction, `poll_timeout()` is
//! `None` exactly when the transaction is terminated or waits for its user (an INVITE client
//! in Proceeding waits for timer C, a server for a response) and otherwise lies in the future,
//! and the user and the peer see consistent outcomes (one final answer, no provisional after
//! it). Once the inputs stop, the transaction terminates within its longest timer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sip_message::Message;

use crate::test_util::{request, response};
use crate::{
    ClientState, ClientTransaction, Output, Reliability, ServerState, ServerTransaction,
    TimerConfig,
};

/// T1 = 100 ms (64·T1 = 6.4 s); T2, T4 and timer D as by default.
fn timers() -> TimerConfig {
    TimerConfig {
        t1: Duration::from_millis(100),
        ..TimerConfig::default()
    }
}

/// Status codes of every class, with the ones a transaction treats apart.
const CODES: &[u16] = &[100, 180, 183, 200, 202, 302, 404, 486, 487, 503, 603];

/// One thing that happens to a transaction.
#[derive(Debug, Clone)]
enum Event {
    /// Client: a response with this status arrives. Server: the user sends one.
    Response(u16),
    /// Server: the request arrives again.
    Retransmission,
    /// Server: an ACK arrives.
    Ack,
    /// The transport fails to send.
    TransportError,
    /// Client: the user gives up (timer C and 64·T1 after its CANCEL).
    Abandon,
    /// This many milliseconds pass; every timer fires when due.
    Wait(u64),
    /// This many milliseconds pass; then `handle_timeout` is called once, whatever is due.
    Tick(u64),
}

fn wait() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0u64..2_000).prop_map(Event::Wait),
        (0u64..40_000).prop_map(Event::Wait),
        (0u64..40_000).prop_map(Event::Tick),
    ]
}

fn client_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => prop::sample::select(CODES).prop_map(Event::Response),
        4 => wait(),
        1 => Just(Event::TransportError),
        1 => Just(Event::Abandon),
    ]
}

fn server_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        5 => prop::sample::select(CODES).prop_map(Event::Response),
        3 => Just(Event::Retransmission),
        2 => Just(Event::Ack),
        4 => wait(),
        1 => Just(Event::TransportError),
    ]
}

fn reliability() -> impl Strategy<Value = Reliability> {
    prop_oneof![Just(Reliability::Unreliable), Just(Reliability::Reliable)]
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["INVITE", "OPTIONS"][..])
}

/// The status of a response, or the method of a request, in `bytes`.
fn describe(bytes: &Bytes) -> String {
    let m = Message::parse(bytes.clone()).expect("transactions send parsable messages");
    m.method()
        .map_or_else(|| m.status().unwrap_or(0).to_string(), |x| x.to_string())
}

/// A client transaction under test, with what its user and its peer have seen.
struct Client {
    t: ClientTransaction,
    invite: bool,
    now: Instant,
    /// The creation or the last input: the transaction must end within its bound of it.
    last_input: Instant,
    /// Everything that came out, for the failure message.
    log: Vec<String>,
    terminated: bool,
    /// A final response (or a timeout) reached the user.
    finished: bool,
    non_2xx: usize,
}

impl Client {
    fn new(method: &str, reliability: Reliability) -> Client {
        let now = Instant::now();
        let t = ClientTransaction::new(now, request(method), reliability, timers());
        Client {
            t,
            invite: method == "INVITE",
            now,
            last_input: now,
            log: Vec::new(),
            terminated: false,
            finished: false,
            non_2xx: 0,
        }
    }

    fn apply(&mut self, e: &Event) {
        self.log.push(format!("{:?} -> {e:?}", self.t.state()));
        match *e {
            Event::Response(code) => {
                self.last_input = self.now;
                let method = if self.invite { "INVITE" } else { "OPTIONS" };
                self.t.on_response(self.now, response(code, method));
            }
            Event::TransportError => {
                self.last_input = self.now;
                self.t.on_transport_error();
            }
            Event::Abandon => {
                self.last_input = self.now;
                self.t.abandon();
            }
            Event::Wait(ms) => return self.wait_until(self.now + Duration::from_millis(ms)),
            Event::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                self.t.handle_timeout(self.now);
            }
            Event::Retransmission | Event::Ack => unreachable!("server events"),
        }
        self.check();
    }

    /// Fires every timer due up to `end`, each when due.
    fn wait_until(&mut self, end: Instant) {
        while let Some(at) = self.t.poll_timeout().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.t.handle_timeout(self.now);
            self.check();
        }
        self.now = self.now.max(end);
    }

    /// Drains the outputs and checks them and the state.
    fn check(&mut self) {
        let state = self.t.state();
        let mut acked = false;
        while let Some(o) = self.t.poll_output() {
            assert!(
                !self.terminated,
                "output after Terminated: {o:?}\n{:#?}",
                self.log
            );
            let label = match o {
                Output::Transmit(b) => {
                    let what = describe(&b);
                    let is_ack = what == "ACK";
                    assert!(
                        is_ack || !self.finished,
                        "request resent after the outcome\n{:#?}",
                        self.log
                    );
                    acked |= is_ack;
                    format!("send {what}")
                }
                Output::Response(r) => {
                    let code = r.status().expect("a response");
                    match code {
                        100..=199 => assert!(
                            !self.finished,
                            "provisional after the outcome\n{:#?}",
                            self.log
                        ),
                        // RFC 6026: every 2xx reaches the user, even after a failure.
                        200..=299 if self.invite => {}
                        _ => {
                            assert!(
                                !self.finished,
                                "a second final response for the user\n{:#?}",
                                self.log
                            );
                            self.non_2xx += 1;
                        }
                    }
                    self.finished |= code >= 200;
                    format!("user gets {code}")
                }
                Output::Timeout => {
                    assert!(
                        !self.finished,
                        "timeout reported after the outcome\n{:#?}",
                        self.log
                    );
                    self.finished = true;
                    "user gets timeout".into()
                }
                Output::Terminated => {
                    self.terminated = true;
                    "terminated".into()
                }
            };
            self.log.push(format!("  {label}"));
        }
        assert!(
            !acked || (self.invite && self.non_2xx > 0),
            "ACK without a non-2xx final response\n{:#?}",
            self.log
        );
        assert_eq!(
            self.terminated,
            state == ClientState::Terminated,
            "Terminated output iff state\n{:#?}",
            self.log
        );
        let waits_for_user = self.invite && state == ClientState::Proceeding;
        assert_eq!(
            self.t.poll_timeout().is_none(),
            self.terminated || waits_for_user,
            "poll_timeout in {state:?}\n{:#?}",
            self.log
        );
        if let Some(at) = self.t.poll_timeout() {
            assert!(at > self.now, "a timer left in the past\n{:#?}", self.log);
        }
    }

    /// No more inputs: the transaction ends within its longest timer, once the user gives
    /// up on an INVITE in Proceeding (its timer C).
    fn settle(mut self, reliability: Reliability) {
        if self.t.state() == ClientState::Proceeding && self.invite {
            self.apply(&Event::Abandon);
        }
        let reliable = reliability == Reliability::Reliable;
        let t = timers();
        let bound = t.timeout().max(t.timer_d(reliable)).max(t.linger(reliable));
        self.wait_until(self.last_input + bound);
        assert!(
            self.terminated,
            "not terminated {bound:?} after the last input\n{:#?}",
            self.log
        );
    }
}

/// A server transaction under test, with what its peer has seen.
struct Server {
    t: ServerTransaction,
    invite: bool,
    now: Instant,
    /// The last input: the transaction must end within its bound of it.
    last_input: Instant,
    log: Vec<String>,
    terminated: bool,
    /// Responses the user handed over, numbered so that each is distinct.
    given: usize,
    /// The distinct final responses transmitted, in order.
    finals: Vec<Bytes>,
    /// The ACK of a non-2xx final response arrived.
    acked: bool,
}

impl Server {
    fn new(method: &str, reliability: Reliability) -> Server {
        let now = Instant::now();
        Server {
            t: ServerTransaction::new(&request(method), reliability, timers()),
            invite: method == "INVITE",
            now,
            last_input: now,
            log: Vec::new(),
            terminated: false,
            given: 0,
            finals: Vec::new(),
            acked: false,
        }
    }

    fn apply(&mut self, e: &Event) {
        self.log.push(format!("{:?} -> {e:?}", self.t.state()));
        match *e {
            Event::Response(code) => {
                self.last_input = self.now;
                self.given += 1;
                let bytes = Bytes::from(format!("SIP/2.0 {code} n{}\r\n", self.given));
                self.t.send_response(self.now, code, bytes);
            }
            Event::Retransmission => {
                self.last_input = self.now;
                let method = if self.invite { "INVITE" } else { "OPTIONS" };
                assert!(
                    self.t.on_request(self.now, &request(method)),
                    "a retransmission is always absorbed"
                );
            }
            Event::Ack => {
                self.last_input = self.now;
                let before = self.t.state();
                let absorbed = self.t.on_request(self.now, &request("ACK"));
                let ours = self.invite
                    && matches!(before, ServerState::Completed | ServerState::Confirmed);
                assert_eq!(
                    absorbed, ours,
                    "ACK in {before:?}: absorbed only for a non-2xx"
                );
                self.acked |= ours;
            }
            Event::TransportError => {
                self.last_input = self.now;
                self.t.on_transport_error();
            }
            Event::Wait(ms) => return self.wait_until(self.now + Duration::from_millis(ms)),
            Event::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                self.t.handle_timeout(self.now);
            }
            Event::Abandon => unreachable!("a client event"),
        }
        self.check();
    }

    fn wait_until(&mut self, end: Instant) {
        while let Some(at) = self.t.poll_timeout().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.t.handle_timeout(self.now);
            self.check();
        }
        self.now = self.now.max(end);
    }

    fn check(&mut self) {
        let state = self.t.state();
        while let Some(o) = self.t.poll_output() {
            assert!(
                !self.terminated,
                "output after Terminated: {o:?}\n{:#?}",
                self.log
            );
            let label = match o {
                Output::Transmit(b) => {
                    let code: u16 = std::str::from_utf8(&b[8..11]).unwrap().parse().unwrap();
                    if code < 200 {
                        assert!(
                            self.finals.is_empty(),
                            "provisional after a final response\n{:#?}",
                            self.log
                        );
                    } else if !self.finals.contains(&b) {
                        self.finals.push(b.clone());
                    }
                    format!("send {}", String::from_utf8_lossy(&b).trim_end())
                }
                Output::Timeout => {
                    assert!(
                        self.invite && !self.acked && !self.finals.is_empty(),
                        "timer H without an unacknowledged final response\n{:#?}",
                        self.log
                    );
                    "timeout".into()
                }
                Output::Terminated => {
                    self.terminated = true;
                    "terminated".into()
                }
                Output::Response(_) => panic!("a server transaction delivers no response"),
            };
            self.log.push(format!("  {label}"));
        }
        let is_2xx = |b: &Bytes| b.starts_with(b"SIP/2.0 2");
        let all_2xx = self.finals.iter().all(is_2xx);
        assert!(
            self.finals.len() <= 1 || (self.invite && all_2xx),
            "distinct final responses sent: only 2xx may follow a final (RFC 6026)\n{:#?}",
            self.log
        );
        assert_eq!(
            self.terminated,
            state == ServerState::Terminated,
            "Terminated output iff state\n{:#?}",
            self.log
        );
        let waits_for_user = matches!(state, ServerState::Trying | ServerState::Proceeding);
        assert_eq!(
            self.t.poll_timeout().is_none(),
            self.terminated || waits_for_user,
            "poll_timeout in {state:?}\n{:#?}",
            self.log
        );
        if let Some(at) = self.t.poll_timeout() {
            assert!(at > self.now, "a timer left in the past\n{:#?}", self.log);
        }
    }

    /// No more inputs (the user answers if it has not): the transaction ends within its
    /// longest timer.
    fn settle(mut self, reliability: Reliability) {
        if matches!(
            self.t.state(),
            ServerState::Trying | ServerState::Proceeding
        ) {
            self.apply(&Event::Response(500));
        }
        let reliable = reliability == Reliability::Reliable;
        let t = timers();
        let bound = t.timeout().max(t.linger(reliable));
        self.wait_until(self.last_input + bound);
        assert!(
            self.terminated,
            "not terminated {bound:?} after the last input\n{:#?}",
            self.log
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn client_transactions_end_and_report_one_outcome(
        method in method(),
        reliability in reliability(),
        events in prop::collection::vec(client_event(), 0..24),
    ) {
        let mut c = Client::new(method, reliability);
        c.check();
        for e in &events {
            c.apply(e);
        }
        c.settle(reliability);
    }

    #[test]
    fn server_transactions_end_and_send_one_final_response(
        method in method(),
        reliability in reliability(),
        events in prop::collection::vec(server_event(), 0..24),
    ) {
        let mut s = Server::new(method, reliability);
        s.check();
        for e in &events {
            s.apply(e);
        }
        s.settle(reliability);
    }
}
