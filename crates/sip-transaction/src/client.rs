//! Client transactions: INVITE (§17.1.1, RFC 6026 §7.2) and non-INVITE (§17.1.2).

use std::time::Instant;

use bytes::Bytes;
use sip_message::{Message, Method};

use crate::ack::build_ack;
use crate::timers::{due, earliest, Retransmit, TimerConfig};
use crate::{Output, Outputs, Reliability};

/// States of a client transaction; INVITE and non-INVITE share the names they have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, nothing heard yet.
    Calling,
    /// Non-INVITE sent, nothing heard yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (non-2xx for INVITE); absorbing retransmissions.
    Completed,
    /// A 2xx to INVITE arrived; further 2xx go to the user (RFC 6026).
    Accepted,
    /// Over.
    Terminated,
}

/// A client transaction: sends a request and delivers the responses to its user.
#[derive(Debug)]
pub struct ClientTransaction {
    /// The request as sent, kept while it may be retransmitted, ACKed or cancelled.
    request: Option<Bytes>,
    invite: bool,
    reliability: Reliability,
    timers: TimerConfig,
    state: ClientState,
    /// Timer A (INVITE) or E (non-INVITE).
    retransmit: Option<Retransmit>,
    /// Timer B/F (timeout), then D/K/M (end of Completed or Accepted).
    deadline: Option<Instant>,
    /// The ACK sent for a non-2xx final response, resent on its retransmissions.
    ack: Option<Bytes>,
    out: Outputs,
}

impl ClientTransaction {
    /// Starts a transaction for `request` (already carrying its Via branch); the first
    /// output is the request to transmit.
    pub fn new(
        now: Instant,
        request: Message,
        reliability: Reliability,
        timers: TimerConfig,
    ) -> Self {
        let invite = request.method() == Some(Method::Invite);
        ClientTransaction::for_bytes(now, invite, request.to_bytes(), reliability, timers)
    }

    /// [`ClientTransaction::new`] for a request we wrote ourselves (an INVITE when `invite`),
    /// as it goes on the wire: not parsed again.
    pub fn for_bytes(
        now: Instant,
        invite: bool,
        bytes: Bytes,
        reliability: Reliability,
        timers: TimerConfig,
    ) -> Self {
        let mut t = ClientTransaction {
            invite,
            reliability,
            timers,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            retransmit: (!reliability.is_reliable()).then(|| Retransmit::start(now, timers.t1)),
            deadline: Some(now + timers.timeout()),
            ack: None,
            out: Outputs::new(),
            request: Some(bytes.clone()),
        };
        t.out.push(Output::Transmit(bytes));
        t
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The request this transaction sent, while it is still pending (parsed again: it is
    /// only needed to build a CANCEL).
    pub fn request(&self) -> Option<Message> {
        self.request.clone().and_then(|b| Message::parse(b).ok())
    }

    /// Feeds a response that matched this transaction.
    pub fn on_response(&mut self, now: Instant, response: Message) {
        let Some(code) = response.status() else {
            return;
        };
        use ClientState::*;
        match (self.state, code) {
            (Calling | Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                if self.invite {
                    // Timer A stops once a provisional response arrives; B keeps running
                    // only in Calling, so the user's timer C takes over.
                    self.retransmit = None;
                    self.deadline = None;
                }
                self.out.push(Output::Response(Box::new(response)));
            }
            (Calling | Proceeding, 200..=299) if self.invite => {
                self.state = Accepted;
                self.retransmit = None;
                self.request = None;
                self.deadline = Some(now + self.timers.timeout());
                self.out.push(Output::Response(Box::new(response)));
            }
            (Accepted, 200..=299) => self.out.push(Output::Response(Box::new(response))),
            (Calling | Proceeding, _) if self.invite => {
                if let Some(invite) = self.request() {
                    let ack = build_ack(&invite, &response);
                    self.out.push(Output::Transmit(ack.clone()));
                    self.ack = Some(ack);
                }
                self.complete(now, self.timers.timer_d(self.reliability.is_reliable()));
                self.out.push(Output::Response(Box::new(response)));
            }
            (Trying | Proceeding, _) => {
                self.complete(now, self.timers.linger(self.reliability.is_reliable()));
                self.out.push(Output::Response(Box::new(response)));
            }
            // A 2xx after a non-2xx is no retransmission: not ours to ACK, the user's to
            // forward (RFC 6026).
            (Completed, 200..=299) if self.invite => {
                self.out.push(Output::Response(Box::new(response)));
            }
            (Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    self.out.push(Output::Transmit(ack.clone()));
                }
            }
            _ => {}
        }
        self.terminate_if_due(now);
    }

    fn complete(&mut self, now: Instant, linger: std::time::Duration) {
        self.state = ClientState::Completed;
        self.retransmit = None;
        self.request = None;
        self.deadline = Some(now + linger);
    }

    /// The transport could not send the request (or an ACK): the transaction ends
    /// (§17.1.4). The user hears of it as of a timeout only while it still waits for a
    /// final response: one it already has stays its outcome.
    pub fn on_transport_error(&mut self) {
        use ClientState::*;
        match self.state {
            Terminated => {}
            Calling | Trying | Proceeding => {
                self.out.push(Output::Timeout);
                self.terminate();
            }
            Completed | Accepted => self.terminate(),
        }
    }

    /// The user gives up waiting for a final response (RFC 3261 §9.1: none came 64·T1
    /// after its CANCEL): the transaction ends at once, without reporting a timeout.
    pub fn abandon(&mut self) {
        if self.state != ClientState::Terminated {
            self.terminate();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.retransmit.map(|r| r.at), self.deadline])
    }

    /// Fires the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(r) = self.retransmit.as_mut().filter(|r| r.at <= now) {
            let cap = match (self.invite, self.state) {
                (true, _) => None,
                (false, ClientState::Proceeding) => {
                    // Timer E fires every T2 once a provisional response arrived.
                    r.interval = self.timers.t2 / 2;
                    Some(self.timers.t2)
                }
                (false, _) => Some(self.timers.t2),
            };
            r.backoff(now, cap);
            if let Some(request) = &self.request {
                self.out.push(Output::Transmit(request.clone()));
            }
        }
        if due(self.deadline, now) {
            match self.state {
                ClientState::Calling | ClientState::Trying | ClientState::Proceeding => {
                    self.out.push(Output::Timeout);
                }
                _ => {}
            }
            self.terminate();
        }
    }

    fn terminate_if_due(&mut self, now: Instant) {
        if self.state == ClientState::Completed && due(self.deadline, now) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.retransmit = None;
        self.request = None;
        self.deadline = None;
        self.out.push(Output::Terminated);
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        crate::next_output(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_util::{request, response};

    /// Drains outputs into short labels.
    fn drain(t: &mut ClientTransaction) -> Vec<String> {
        std::iter::from_fn(|| t.poll_output())
            .map(|o| match o {
                Output::Transmit(b) => {
                    let m = Message::parse(b).unwrap();
                    format!("send {}", m.method().unwrap())
                }
                Output::Response(r) => format!("resp {}", r.status().unwrap()),
                Output::Timeout => "timeout".into(),
                Output::Terminated => "terminated".into(),
            })
            .collect()
    }

    /// Fires timers until `end`; returns the outputs with their times in ms since `t0`.
    fn run_until(t: &mut ClientTransaction, t0: Instant, end: Instant) -> Vec<(u128, String)> {
        let mut log = vec![];
        while let Some(at) = t.poll_timeout().filter(|&at| at <= end) {
            t.handle_timeout(at);
            for o in drain(t) {
                log.push(((at - t0).as_millis(), o));
            }
        }
        log
    }

    #[test]
    fn invite_retransmits_with_timer_a_then_times_out_with_b() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("INVITE"),
            Reliability::Unreliable,
            TimerConfig::default(),
        );
        assert_eq!(drain(&mut t), ["send INVITE"]);
        let log = run_until(&mut t, t0, t0 + Duration::from_secs(3600));
        let sends: Vec<u128> = log
            .iter()
            .filter(|(_, o)| o == "send INVITE")
            .map(|(ms, _)| *ms)
            .collect();
        // A fires at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
        assert_eq!(sends, [500, 1500, 3500, 7500, 15500, 31500]);
        let tail: Vec<(u128, &str)> = log
            .iter()
            .rev()
            .take(2)
            .map(|(ms, o)| (*ms, o.as_str()))
            .collect();
        assert_eq!(tail, [(32_000, "terminated"), (32_000, "timeout")]);
        assert_eq!(t.state(), ClientState::Terminated);
    }

    #[test]
    fn invite_non_2xx_is_acked_and_retransmissions_reacked() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("INVITE"),
            Reliability::Unreliable,
            TimerConfig::default(),
        );
        drain(&mut t);
        t.on_response(t0, response(180, "INVITE"));
        assert_eq!(drain(&mut t), ["resp 180"]);
        assert_eq!(
            t.poll_timeout(),
            None,
            "no retransmission nor timer B in Proceeding"
        );
        t.on_response(t0, response(486, "INVITE"));
        assert_eq!(drain(&mut t), ["send ACK", "resp 486"]);
        t.on_response(t0, response(486, "INVITE"));
        assert_eq!(drain(&mut t), ["send ACK"]);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut t), ["terminated"]);
    }

    #[test]
    fn invite_2xx_goes_to_accepted_and_passes_retransmissions() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("INVITE"),
            Reliability::Reliable,
            TimerConfig::default(),
        );
        drain(&mut t);
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_secs(32)),
            "only timer B over TCP"
        );
        t.on_response(t0, response(200, "INVITE"));
        t.on_response(t0, response(200, "INVITE"));
        assert_eq!(drain(&mut t), ["resp 200", "resp 200"]);
        assert_eq!(t.state(), ClientState::Accepted);
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut t), ["terminated"]);
    }

    #[test]
    fn invite_2xx_after_non_2xx_goes_to_the_user_unacked() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("INVITE"),
            Reliability::Unreliable,
            TimerConfig::default(),
        );
        drain(&mut t);
        t.on_response(t0, response(486, "INVITE"));
        assert_eq!(drain(&mut t), ["send ACK", "resp 486"]);
        t.on_response(t0, response(200, "INVITE"));
        t.on_response(t0, response(200, "INVITE"));
        assert_eq!(drain(&mut t), ["resp 200", "resp 200"], "no ACK for a 2xx");
        t.on_response(t0, response(486, "INVITE"));
        assert_eq!(drain(&mut t), ["send ACK"]);
        assert_eq!(t.state(), ClientState::Completed);
    }

    #[test]
    fn abandoned_invite_ends_without_a_timeout() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("INVITE"),
            Reliability::Unreliable,
            TimerConfig::default(),
        );
        drain(&mut t);
        t.on_response(t0, response(180, "INVITE"));
        assert_eq!(drain(&mut t), ["resp 180"]);
        t.abandon();
        assert_eq!(drain(&mut t), ["terminated"]);
        assert_eq!(t.state(), ClientState::Terminated);
        assert_eq!(t.poll_timeout(), None);
        assert!(t.request().is_none());
        t.on_response(t0, response(487, "INVITE"));
        t.abandon();
        assert_eq!(drain(&mut t), Vec::<String>::new(), "over: nothing more");
    }

    #[test]
    fn non_invite_timer_e_caps_at_t2_and_k_ends_it() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("OPTIONS"),
            Reliability::Unreliable,
            TimerConfig::default(),
        );
        drain(&mut t);
        let mut sends = vec![];
        while let Some(at) = t
            .poll_timeout()
            .filter(|&at| at < t0 + Duration::from_secs(10))
        {
            t.handle_timeout(at);
            if drain(&mut t).iter().any(|o| o == "send OPTIONS") {
                sends.push((at - t0).as_millis());
            }
        }
        assert_eq!(sends, [500, 1500, 3500, 7500]);
        t.on_response(t0 + Duration::from_secs(10), response(100, "OPTIONS"));
        assert_eq!(drain(&mut t), ["resp 100"]);
        t.handle_timeout(t0 + Duration::from_millis(11_500));
        assert_eq!(drain(&mut t), ["send OPTIONS"]);
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_millis(15_500)),
            "E = T2 in Proceeding"
        );
        t.on_response(t0 + Duration::from_secs(12), response(200, "OPTIONS"));
        assert_eq!(drain(&mut t), ["resp 200"]);
        assert_eq!(t.state(), ClientState::Completed);
        t.handle_timeout(t0 + Duration::from_secs(17));
        assert_eq!(drain(&mut t), ["terminated"]);
    }

    #[test]
    fn reliable_non_invite_terminates_on_final_response() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("REGISTER"),
            Reliability::Reliable,
            TimerConfig::default(),
        );
        drain(&mut t);
        t.on_response(t0, response(200, "REGISTER"));
        assert_eq!(drain(&mut t), ["resp 200", "terminated"]);
    }

    #[test]
    fn transport_error_times_out() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(
            t0,
            request("INVITE"),
            Reliability::Unreliable,
            TimerConfig::default(),
        );
        drain(&mut t);
        t.on_transport_error();
        assert_eq!(drain(&mut t), ["timeout", "terminated"]);
    }

    #[test]
    fn transport_error_after_a_final_response_reports_no_timeout() {
        // §17.1.4 ends the transaction; its user already has its final response, and a
        // timeout (acted on as a 408) would be a second outcome.
        for code in [200, 486] {
            let t0 = Instant::now();
            let mut t = ClientTransaction::new(
                t0,
                request("INVITE"),
                Reliability::Unreliable,
                TimerConfig::default(),
            );
            drain(&mut t);
            t.on_response(t0, response(code, "INVITE"));
            drain(&mut t);
            t.on_transport_error();
            assert_eq!(drain(&mut t), ["terminated"], "{code}");
            assert_eq!(t.state(), ClientState::Terminated);
        }
    }
}
