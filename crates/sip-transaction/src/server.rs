//! Server transactions: INVITE (§17.2.1, RFC 6026 §7.1) and non-INVITE (§17.2.2).

use std::time::Instant;

use bytes::Bytes;
use sip_message::{Message, Method};

use crate::timers::{due, earliest, Retransmit, TimerConfig};
use crate::{Output, Outputs, Reliability};

/// States of a server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, no response yet.
    Trying,
    /// A provisional response was sent (INVITE starts here).
    Proceeding,
    /// A final response was sent (non-2xx for INVITE); retransmissions get it again.
    Completed,
    /// INVITE only: the ACK for the non-2xx arrived.
    Confirmed,
    /// INVITE only: a 2xx was sent; retransmitted INVITEs are absorbed (RFC 6026).
    Accepted,
    /// Over.
    Terminated,
}

/// A server transaction: absorbs request retransmissions and sends the user's responses.
#[derive(Debug)]
pub struct ServerTransaction {
    invite: bool,
    reliability: Reliability,
    timers: TimerConfig,
    state: ServerState,
    last_response: Option<Bytes>,
    /// Timer G (INVITE final response retransmission).
    retransmit: Option<Retransmit>,
    /// Timer H, I, J or L.
    deadline: Option<Instant>,
    /// The final response was our own ([`send_local_response`](Self::send_local_response)):
    /// no timer H, nothing reported when it ends unacknowledged.
    local: bool,
    out: Outputs,
}

impl ServerTransaction {
    /// Creates the transaction for a request that matched none; the request itself goes to
    /// the user, which answers through [`send_response`](Self::send_response).
    pub fn new(request: &Message, reliability: Reliability, timers: TimerConfig) -> Self {
        let invite = request.method() == Some(Method::Invite);
        ServerTransaction {
            invite,
            reliability,
            timers,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            last_response: None,
            retransmit: None,
            deadline: None,
            local: false,
            out: Outputs::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The last response sent, if any.
    pub fn last_response(&self) -> Option<&Bytes> {
        self.last_response.as_ref()
    }

    /// Feeds a request that matched this transaction: a retransmission, or the ACK of an
    /// INVITE's non-2xx final response. Returns true when the request was absorbed here (the
    /// user must not see it); an ACK for a 2xx is not absorbed, it belongs to the dialog.
    pub fn on_request(&mut self, now: Instant, request: &Message) -> bool {
        let is_ack = request.method() == Some(Method::Ack);
        match (self.state, is_ack) {
            (ServerState::Completed, true) if self.invite => {
                self.state = ServerState::Confirmed;
                self.retransmit = None;
                self.deadline = Some(now + self.timers.linger(self.reliability.is_reliable()));
                self.terminate_if_due(now);
                true
            }
            (ServerState::Confirmed, true) => true,
            (ServerState::Accepted, true) => false,
            (ServerState::Proceeding | ServerState::Completed, false) => {
                if let Some(r) = &self.last_response {
                    self.out.push(Output::Transmit(r.clone()));
                }
                true
            }
            (_, true) => false,
            (_, false) => true,
        }
    }

    /// Sends a response from the user. `status` is its code.
    pub fn send_response(&mut self, now: Instant, status: u16, response: Bytes) {
        use ServerState::*;
        let reliable = self.reliability.is_reliable();
        match (self.state, status) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.last_response = Some(response.clone());
            }
            (Proceeding, 200..=299) if self.invite => {
                self.state = Accepted;
                self.deadline = Some(now + self.timers.timeout());
                // Retransmitted INVITEs are absorbed in Accepted: the provisional response
                // is not sent again, and need not be kept for the 32 s.
                self.last_response = None;
            }
            // RFC 6026: 2xx retransmissions from the user pass through in Accepted.
            (Accepted, 200..=299) => {}
            (Proceeding, _) if self.invite => {
                self.state = Completed;
                self.last_response = Some(response.clone());
                self.retransmit = (!reliable).then(|| Retransmit::start(now, self.timers.t1));
                self.deadline = Some(now + self.timers.timeout());
            }
            (Trying | Proceeding, _) => {
                self.state = Completed;
                self.last_response = Some(response.clone());
                self.deadline = Some(
                    now + if reliable {
                        std::time::Duration::ZERO
                    } else {
                        self.timers.timeout()
                    },
                );
            }
            _ => return,
        }
        self.out.push(Output::Transmit(response));
        self.terminate_if_due(now);
    }

    /// Sends a final response of the server's own making (an error, a challenge, a
    /// registrar's answer), as a stateless server would (RFC 3261 §8.2.7, §26.3.2.4): it is
    /// sent again only when the request is retransmitted — no timer G, so a request with a
    /// spoofed source gets one answer — and the transaction is forgotten T4 after it over
    /// an unreliable transport (at once over a reliable one, but for an INVITE's failure:
    /// its ACK must still be absorbed), like Kamailio's wait timer. A non-final `status` is
    /// sent as by [`send_response`](Self::send_response).
    pub fn send_local_response(&mut self, now: Instant, status: u16, response: Bytes) {
        if status < 200 {
            return self.send_response(now, status, response);
        }
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            return;
        }
        self.state = ServerState::Completed;
        self.last_response = Some(response.clone());
        self.retransmit = None;
        let reliable = self.reliability.is_reliable() && !(self.invite && status >= 300);
        self.deadline = Some(now + self.timers.linger(reliable));
        self.local = true;
        self.out.push(Output::Transmit(response));
        self.terminate_if_due(now);
    }

    /// The user will send no final response (RFC 4320 §4.2: a non-INVITE request nothing
    /// answered in time gets no 408; its client has given up by then): the transaction
    /// ends without one, after absorbing for T4 the retransmissions still on their way (the
    /// client's last follows its timer F closely; taken for a new request, it would reach
    /// the callee again).
    pub fn abandon(&mut self, now: Instant) {
        if matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            self.state = ServerState::Completed;
            self.last_response = None;
            self.retransmit = None;
            self.deadline = Some(now + self.timers.t4);
        }
    }

    /// The transport failed to send a response: the transaction ends (§17.2.4).
    pub fn on_transport_error(&mut self) {
        if self.state != ServerState::Terminated {
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
            r.backoff(now, Some(self.timers.t2));
            if let Some(resp) = &self.last_response {
                self.out.push(Output::Transmit(resp.clone()));
            }
        }
        if due(self.deadline, now) {
            if self.state == ServerState::Completed && self.invite && !self.local {
                // Timer H: the ACK never came.
                self.out.push(Output::Timeout);
            }
            self.terminate();
        }
    }

    fn terminate_if_due(&mut self, now: Instant) {
        if due(self.deadline, now) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.retransmit = None;
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
    use crate::test_util::request;

    fn drain(t: &mut ServerTransaction) -> Vec<String> {
        std::iter::from_fn(|| t.poll_output())
            .map(|o| match o {
                Output::Transmit(b) => format!("send {}", String::from_utf8_lossy(&b)),
                Output::Response(_) => unreachable!("server transactions deliver no responses"),
                Output::Timeout => "timeout".into(),
                Output::Terminated => "terminated".into(),
            })
            .collect()
    }

    #[test]
    fn invite_non_2xx_retransmitted_with_g_until_ack() {
        let t0 = Instant::now();
        let inv = request("INVITE");
        let mut t = ServerTransaction::new(&inv, Reliability::Unreliable, TimerConfig::default());
        assert!(t.on_request(t0, &inv), "retransmission absorbed");
        assert_eq!(drain(&mut t), Vec::<String>::new(), "nothing to resend yet");
        t.send_response(t0, 100, Bytes::from_static(b"100"));
        assert!(t.on_request(t0, &inv));
        assert_eq!(drain(&mut t), ["send 100", "send 100"]);
        t.send_response(t0, 486, Bytes::from_static(b"486"));
        assert_eq!(drain(&mut t), ["send 486"]);
        let mut resent = vec![];
        while let Some(at) = t
            .poll_timeout()
            .filter(|&at| at < t0 + Duration::from_secs(10))
        {
            t.handle_timeout(at);
            drain(&mut t);
            resent.push((at - t0).as_millis());
        }
        assert_eq!(resent, [500, 1500, 3500, 7500]);
        assert!(t.on_request(t0 + Duration::from_secs(10), &inv));
        assert_eq!(drain(&mut t), ["send 486"]);
        assert!(t.on_request(t0 + Duration::from_secs(10), &request("ACK")));
        assert_eq!(t.state(), ServerState::Confirmed);
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_secs(15)),
            "timer I = T4"
        );
        t.handle_timeout(t0 + Duration::from_secs(15));
        assert_eq!(drain(&mut t), ["terminated"]);
    }

    #[test]
    fn an_accepted_invite_absorbs_retransmissions_and_keeps_no_response() {
        let t0 = Instant::now();
        let inv = request("INVITE");
        let mut t = ServerTransaction::new(&inv, Reliability::Unreliable, TimerConfig::default());
        t.send_response(t0, 180, Bytes::from_static(b"180"));
        assert_eq!(drain(&mut t), ["send 180"]);
        t.send_response(t0, 200, Bytes::from_static(b"200"));
        assert_eq!(drain(&mut t), ["send 200"]);
        assert_eq!(t.state(), ServerState::Accepted);
        assert!(
            t.last_response().is_none(),
            "the 180 is not kept for the 32 s"
        );
        assert!(t.on_request(t0, &inv), "a retransmitted INVITE is absorbed");
        assert!(drain(&mut t).is_empty(), "and answered with nothing");
    }

    #[test]
    fn an_abandoned_request_ends_without_a_response() {
        let t0 = Instant::now();
        let msg = request("MESSAGE");
        let mut t = ServerTransaction::new(&msg, Reliability::Unreliable, TimerConfig::default());
        t.abandon(t0);
        assert!(t.on_request(t0, &msg), "a retransmission is absorbed");
        assert!(drain(&mut t).is_empty(), "and answered with nothing");
        t.handle_timeout(t0 + TimerConfig::default().t4);
        assert_eq!(drain(&mut t), ["terminated"]);
        assert_eq!(t.state(), ServerState::Terminated);
        let mut answered =
            ServerTransaction::new(&msg, Reliability::Unreliable, TimerConfig::default());
        answered.send_response(t0, 404, Bytes::from_static(b"404"));
        answered.abandon(t0);
        assert_eq!(drain(&mut answered), ["send 404"], "a final answer stands");
        assert_eq!(answered.state(), ServerState::Completed);
    }

    #[test]
    fn a_local_answer_is_sent_once_resent_on_retransmission_and_kept_t4() {
        let t0 = Instant::now();
        let inv = request("INVITE");
        let mut t = ServerTransaction::new(&inv, Reliability::Unreliable, TimerConfig::default());
        t.send_local_response(t0, 407, Bytes::from_static(b"407"));
        assert_eq!(drain(&mut t), ["send 407"]);
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_secs(5)),
            "T4, no timer G"
        );
        assert!(t.on_request(t0 + Duration::from_secs(1), &inv));
        assert_eq!(drain(&mut t), ["send 407"], "again for a retransmission");
        t.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(drain(&mut t), ["terminated"], "no timeout reported");
        let mut acked =
            ServerTransaction::new(&inv, Reliability::Unreliable, TimerConfig::default());
        acked.send_local_response(t0, 404, Bytes::from_static(b"404"));
        assert!(acked.on_request(t0, &request("ACK")));
        assert_eq!(acked.state(), ServerState::Confirmed);
        // Over TCP the transaction waits for the ACK (T4 at most), and ends with it.
        let mut tcp = ServerTransaction::new(&inv, Reliability::Reliable, TimerConfig::default());
        tcp.send_local_response(t0, 404, Bytes::from_static(b"404"));
        assert_eq!(drain(&mut tcp), ["send 404"]);
        assert!(tcp.on_request(t0, &request("ACK")), "the ACK absorbed");
        assert_eq!(drain(&mut tcp), ["terminated"]);
        let msg = request("MESSAGE");
        let mut other = ServerTransaction::new(&msg, Reliability::Reliable, TimerConfig::default());
        other.send_local_response(t0, 404, Bytes::from_static(b"404"));
        assert_eq!(
            drain(&mut other),
            ["send 404", "terminated"],
            "no ACK to wait for"
        );
    }

    #[test]
    fn invite_timer_h_without_ack() {
        let t0 = Instant::now();
        let mut t = ServerTransaction::new(
            &request("INVITE"),
            Reliability::Reliable,
            TimerConfig::default(),
        );
        t.send_response(t0, 404, Bytes::from_static(b"404"));
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_secs(32)),
            "no timer G over TCP"
        );
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut t), ["send 404", "timeout", "terminated"]);
    }

    #[test]
    fn invite_2xx_accepted_absorbs_invite_and_passes_ack() {
        let t0 = Instant::now();
        let inv = request("INVITE");
        let mut t = ServerTransaction::new(&inv, Reliability::Unreliable, TimerConfig::default());
        t.send_response(t0, 200, Bytes::from_static(b"200"));
        t.send_response(t0 + Duration::from_secs(1), 200, Bytes::from_static(b"200"));
        assert_eq!(drain(&mut t), ["send 200", "send 200"]);
        assert!(t.on_request(t0, &inv), "retransmitted INVITE absorbed");
        assert_eq!(
            drain(&mut t),
            Vec::<String>::new(),
            "the transaction does not resend a 2xx"
        );
        assert!(
            !t.on_request(t0, &request("ACK")),
            "2xx ACK goes to the dialog"
        );
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut t), ["terminated"]);
    }

    #[test]
    fn non_invite_final_response_resent_then_timer_j() {
        let t0 = Instant::now();
        let reg = request("REGISTER");
        let mut t = ServerTransaction::new(&reg, Reliability::Unreliable, TimerConfig::default());
        assert_eq!(t.state(), ServerState::Trying);
        t.send_response(t0, 200, Bytes::from_static(b"200"));
        assert!(t.on_request(t0, &reg));
        assert_eq!(drain(&mut t), ["send 200", "send 200"]);
        t.send_response(t0, 500, Bytes::from_static(b"500"));
        assert_eq!(
            drain(&mut t),
            Vec::<String>::new(),
            "one final response only"
        );
        t.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut t), ["terminated"]);
        let mut tcp = ServerTransaction::new(&reg, Reliability::Reliable, TimerConfig::default());
        tcp.send_response(t0, 200, Bytes::from_static(b"200"));
        assert_eq!(drain(&mut tcp), ["send 200", "terminated"]);
    }
}
