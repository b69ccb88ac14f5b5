//! What stays of a context whose work is done while its transactions' last timers run
//! (about 32 s over UDP): an INVITE answered 2xx (RFC 6026 Accepted, timer L) or a
//! non-INVITE answered and its branches ended (Completed, timer J). A full context is
//! over a kilobyte, most of it for work that is over; a call's two contexts lingering at
//! a few hundred calls a second were most of the proxy's memory, and the first writes to
//! that memory most of its page faults.
//!
//! The key stays (in its shard's `by_key`), so that retransmissions of the request are
//! absorbed as before: an INVITE's silently, a non-INVITE's with its final response again.
//! Responses to its branches (a 2xx retransmitted) find no context and go on as a late 2xx
//! does (§16.7, statelessly, if their branch vouches for the next Via).

use std::time::Instant;

use bytes::Bytes;
use sip_message::{Message, Method};

use crate::shard::Digest;
use crate::target::Destination;
use crate::Command;

/// A finished context's key, deadline and (a non-INVITE's) final response.
#[derive(Debug)]
pub(crate) struct Linger {
    pub(crate) key: Digest,
    /// Of an INVITE answered 2xx: its branches' 2xx still go upstream.
    invite: bool,
    /// When it ends: its server transaction's last timer.
    pub(crate) until: Instant,
    /// A non-INVITE's final response and where it went, sent again for each retransmission.
    answer: Option<Box<(Destination, Bytes)>>,
}

impl Linger {
    /// An INVITE's, whose 2xx went upstream.
    pub(crate) fn accepted(key: Digest, until: Instant) -> Self {
        Linger {
            key,
            invite: true,
            until,
            answer: None,
        }
    }

    /// A non-INVITE's, whose final response `data` went to `upstream`.
    pub(crate) fn completed(
        key: Digest,
        until: Instant,
        upstream: Destination,
        data: Bytes,
    ) -> Self {
        Linger {
            key,
            invite: false,
            until,
            answer: Some(Box::new((upstream, data))),
        }
    }

    /// True for a response to one of its branches that goes on upstream: a 2xx to its
    /// INVITE (RFC 6026: another 2xx, or one again). Any other is dropped, as its ended
    /// transactions would (§16.7 step 5: after a final response, only 2xx to INVITE go on).
    pub(crate) fn passes(&self, resp: &Message) -> bool {
        self.invite && resp.status().is_some_and(|s| (200..300).contains(&s))
    }

    /// A request with its key: true when absorbed here, as its server transaction would
    /// (an ACK is not: with the branch of an INVITE answered 2xx, it is the dialog's).
    pub(crate) fn on_request(&self, msg: &Message, out: &mut Vec<Command>) -> bool {
        if msg.method() == Some(Method::Ack) {
            return false;
        }
        if let Some(answer) = self.answer.as_deref() {
            out.push(Command::Send {
                dest: answer.0,
                data: answer.1.clone(),
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_message::Protocol;

    fn request(method: &str) -> Message {
        Message::parse(format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKl\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: l\r\n\
CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        ))
        .expect("request")
    }

    #[test]
    fn retransmissions_are_absorbed_and_a_non_invite_gets_its_answer_again() {
        let now = Instant::now();
        let up = Destination::new(Protocol::Udp, "192.0.2.1:5060".parse().expect("addr"));
        let mut out = Vec::new();
        let invite = Linger::accepted(1, now);
        assert!(invite.on_request(&request("INVITE"), &mut out));
        assert!(out.is_empty(), "an INVITE answered 2xx absorbs silently");
        assert!(
            !invite.on_request(&request("ACK"), &mut out),
            "ACK is the dialog's"
        );
        let bye = Linger::completed(2, now, up, Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"));
        assert!(bye.on_request(&request("BYE"), &mut out));
        let ok = |method: &str| {
            Message::parse(format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKl\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: l\r\n\
CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
            ))
            .expect("200")
        };
        assert!(invite.passes(&ok("INVITE")), "a 2xx to the INVITE goes on");
        assert!(
            !bye.passes(&ok("BYE")),
            "a non-INVITE's late answer does not"
        );
        assert!(
            matches!(&out[..], [Command::Send { dest, data }] if *dest == up && &data[..] == b"SIP/2.0 200 OK\r\n\r\n")
        );
    }
}
