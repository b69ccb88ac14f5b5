//! What stays of a context whose work is done while its transactions' last timers run
//! (about 32 s over UDP): an INVITE answered 2xx (RFC 6026 Accepted, timer L) or a
//! non-INVITE answered (Completed, timer J). A full context is over a kilobyte, most of it
//! for work that is over; a call's two contexts lingering at a few hundred calls a second
//! were most of the proxy's memory, and the first writes to that memory most of its page
//! faults.
//!
//! The key stays (in its shard's `by_key`), so that retransmissions of the request are
//! absorbed as before: an INVITE's silently, a non-INVITE's with its final response again.
//! A 2xx to the INVITE (its callee's again, or another's from a fork further on) goes
//! upstream as the first went, and is noted for its call; any other response is dropped,
//! as its ended transactions would (§16.7 step 5).

use std::time::Instant;

use bytes::Bytes;
use sip_message::{HeaderName, Message, Method};

use crate::core::Core;
use crate::route_key::{self, Issued};
use crate::shard::{Digest, Shards};
use crate::target::Destination;
use crate::Command;

/// A finished context's key, deadline and what its answers need.
#[derive(Debug)]
pub(crate) struct Linger {
    pub(crate) key: Digest,
    /// When it ends: its server transaction's last timer.
    pub(crate) until: Instant,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// An INVITE answered 2xx through its one branch.
    Accepted(Box<Accepted>),
    /// A non-INVITE's final response and where it went, sent again for each retransmission.
    Completed(Box<(Destination, Bytes)>),
}

/// What a 2xx to a lingering INVITE needs to go upstream as the first went.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// Where the caller's responses go (its connection included).
    pub(crate) upstream: Destination,
    /// The branch's next hop, and the key of our Record-Route entries in its request.
    pub(crate) hop: Destination,
    pub(crate) issued: Option<Issued>,
    /// Its call, when followed (`dlg_manage()`).
    pub(crate) call: Option<dialog::CallKey>,
}

impl Linger {
    /// An INVITE's, whose 2xx went upstream.
    pub(crate) fn accepted(key: Digest, until: Instant, accepted: Accepted) -> Self {
        let kind = Kind::Accepted(Box::new(accepted));
        Linger { key, until, kind }
    }

    /// A non-INVITE's, whose final response `data` went to `upstream`.
    pub(crate) fn completed(
        key: Digest,
        until: Instant,
        upstream: Destination,
        data: Bytes,
    ) -> Self {
        let kind = Kind::Completed(Box::new((upstream, data)));
        Linger { key, until, kind }
    }

    /// A request with its key: true when absorbed here, as its server transaction would
    /// (an ACK is not: with the branch of an INVITE answered 2xx, it is the dialog's).
    pub(crate) fn on_request(&self, msg: &Message, out: &mut Vec<Command>) -> bool {
        if msg.method() == Some(Method::Ack) {
            return false;
        }
        if let Kind::Completed(answer) = &self.kind {
            out.push(Command::Send {
                dest: answer.0,
                data: answer.1.clone(),
            });
        }
        true
    }

    /// What a response to one of its branches needs to go upstream: only a 2xx to its
    /// INVITE goes.
    fn passing(&self, resp: &Message) -> Option<&Accepted> {
        let Kind::Accepted(accepted) = &self.kind else {
            return None;
        };
        let two_xx = resp.status().is_some_and(|s| (200..300).contains(&s));
        let to_invite = resp.cseq().is_ok_and(|c| c.method == Method::Invite);
        (two_xx && to_invite).then_some(accepted)
    }
}

impl Core {
    /// A response to a branch of context `id` that lingers: a 2xx to its INVITE goes
    /// upstream as the first went (its Record-Route key for the caller, its connection),
    /// noted for its call; any other is dropped. Gives the response back when `id` does
    /// not linger.
    pub(crate) fn to_linger(
        &self,
        now: Instant,
        id: u64,
        resp: Message,
        out: &mut Vec<Command>,
    ) -> Option<Message> {
        let shard = self.shards().lock(Shards::of(id));
        let Some(linger) = shard.lingering.get(&id) else {
            return Some(resp);
        };
        let a = linger.passing(&resp)?;
        let (data, pair) = route_key::for_caller(&resp, a.issued.as_ref(), None);
        out.push(Command::Send {
            dest: a.upstream,
            data,
        });
        let (call, issued, hop) = (a.call.clone(), a.issued, a.hop);
        drop(shard);
        if let Some((a, b)) = pair {
            self.refreshed.pair(a, b);
        }
        if let (Some(call), Some(code)) = (call, resp.status()) {
            let to = resp.header(HeaderName::To);
            let to_tag = to.and_then(|t| crate::dialog_read::tag_of(t.value));
            let ours = issued.as_ref().map(Issued::text);
            let answer = crate::dialog_read::answer(&resp, ours, hop);
            let at = self.unix_ms(now);
            self.dialogs.response(at, &call, code, to_tag, Some(answer));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_message::Protocol;

    fn message(first: &str, method: &str) -> Message {
        Message::parse(format!(
            "{first}\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKl\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: l\r\n\
CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        ))
        .expect("message")
    }

    fn request(method: &str) -> Message {
        message(&format!("{method} sip:bob@example.com SIP/2.0"), method)
    }

    #[test]
    fn retransmissions_are_absorbed_and_a_non_invite_gets_its_answer_again() {
        let now = Instant::now();
        let up = Destination::new(Protocol::Udp, "192.0.2.1:5060".parse().expect("addr"));
        let mut out = Vec::new();
        let accepted = Accepted {
            upstream: up,
            hop: up,
            issued: None,
            call: None,
        };
        let invite = Linger::accepted(1, now, accepted);
        assert!(invite.on_request(&request("INVITE"), &mut out));
        assert!(out.is_empty(), "an INVITE answered 2xx absorbs silently");
        assert!(
            !invite.on_request(&request("ACK"), &mut out),
            "ACK is the dialog's"
        );
        let bye = Linger::completed(2, now, up, Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"));
        assert!(bye.on_request(&request("BYE"), &mut out));
        assert!(
            matches!(&out[..], [Command::Send { dest, data }] if *dest == up && &data[..] == b"SIP/2.0 200 OK\r\n\r\n")
        );
        let ok = |method| message("SIP/2.0 200 OK", method);
        assert!(
            invite.passing(&ok("INVITE")).is_some(),
            "a 2xx to the INVITE goes on"
        );
        assert!(invite.passing(&ok("CANCEL")).is_none(), "not the CANCEL's");
        assert!(invite
            .passing(&message("SIP/2.0 180 Ringing", "INVITE"))
            .is_none());
        assert!(
            bye.passing(&ok("BYE")).is_none(),
            "a non-INVITE's late answer does not"
        );
    }
}
