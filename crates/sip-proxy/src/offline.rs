//! Messages for users who are offline (`m_store()`, `m_dump()`): kept in memory and in the
//! store ([`Command::Messages`]), delivered one at a time, oldest first, once their
//! recipient registers, as requests of the core's own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use message_store::{Delivery, Mailboxes, NewMessage, Refused, Stored};
use sip_message::{HeaderName, Message, Uri};

use crate::originate::{Answer, OnAnswer};
use crate::{Command, Core, Destination};

/// What the store must do with kept messages, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageWrite {
    /// Keep this message.
    Keep(Box<Stored>),
    /// These were delivered or expired: remove them.
    Remove(Vec<u64>),
}

/// The mailboxes, behind one lock (only messages for users offline reach them), and how
/// many messages they hold, read without it (a REGISTER asks).
#[derive(Debug)]
pub(crate) struct Offline {
    boxes: Mutex<Mailboxes>,
    kept: AtomicUsize,
}

impl Offline {
    pub(crate) fn new(limits: message_store::Limits) -> Offline {
        Offline {
            boxes: Mutex::new(Mailboxes::new(limits, 0)),
            kept: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the mailboxes.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Mailboxes) -> R) -> R {
        let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut boxes);
        self.kept.store(boxes.len(), Ordering::Relaxed);
        r
    }
}

impl Core {
    /// `m_store()`: keeps the MESSAGE `msg` for the user its Request-URI names (one of
    /// ours), to deliver when it registers: the write for the store, or why not.
    pub(crate) fn store_message(&self, now: Instant, msg: &Message) -> Result<Command, Refused> {
        let bad = |reason| Refused { code: 400, reason };
        let recipient = msg
            .request_uri()
            .as_ref()
            .and_then(registrar::aor_of)
            .ok_or(bad("Bad Request (no user to keep it for)"))?;
        if !self.is_user(&recipient) {
            return Err(Refused {
                code: 404,
                reason: "Not Found",
            });
        }
        let header = |n: HeaderName| msg.header(n).map(|h| h.value);
        let body = msg.body();
        let m = NewMessage {
            recipient: &recipient,
            from: header(HeaderName::From).ok_or(bad("Bad Request (From)"))?,
            to: header(HeaderName::To).ok_or(bad("Bad Request (To)"))?,
            content_type: header(HeaderName::ContentType).unwrap_or("text/plain"),
            body: &body,
            auto_submitted: msg.header_str("Auto-Submitted").map(|h| h.value),
        };
        let kept = self.offline.with(|b| b.keep(self.unix_ms(now), m))?;
        Ok(Command::Messages(MessageWrite::Keep(Box::new(kept))))
    }

    /// `m_dump()` for a REGISTER: its user's kept messages go to it (each second, see
    /// [`Core::deliver_messages`]).
    pub(crate) fn wake_mailbox(&self, aor: &str) {
        self.offline.with(|b| b.wake(aor));
    }

    /// Sends the next kept message of each user that registered, and drops those past
    /// their time; the removals the store must learn.
    pub fn deliver_messages(&self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        let due = {
            self.offline.with(|b| {
                b.expire(self.unix_ms(now));
                b.due()
            })
        };
        for aor in due {
            self.deliver_next(now, &aor, &mut out);
        }
        self.message_removals(&mut out);
        out
    }

    /// How many messages are kept for users offline.
    pub fn messages_kept(&self) -> usize {
        self.offline.kept.load(Ordering::Relaxed)
    }

    /// Takes back the messages the store kept; how many.
    pub fn restore_messages(&self, stored: Vec<Stored>) -> usize {
        self.offline.with(|b| b.restore(stored))
    }

    fn message_removals(&self, out: &mut Vec<Command>) {
        let removed: Vec<u64> = self
            .offline
            .with(Mailboxes::take_changes)
            .into_iter()
            .map(|message_store::Change::Removed(id)| id)
            .collect();
        if !removed.is_empty() {
            out.push(Command::Messages(MessageWrite::Remove(removed)));
        }
    }

    /// Sends `aor`'s next message to its best device, if one is registered.
    fn deliver_next(&self, now: Instant, aor: &str, out: &mut Vec<Command>) {
        let Some(m) = self.offline.with(|b| b.next(aor)) else {
            return;
        };
        let binding = self.lookup(now, aor).into_iter().next();
        let request = binding.as_ref().and_then(|b| delivery(&m, b));
        let Some((request, dest)) = request else {
            self.offline
                .with(|b| b.delivered(aor, m.id, Delivery::Failed));
            return;
        };
        let (aor, id) = (aor.to_owned(), m.id);
        let on_answer: OnAnswer = Box::new(move |core: &Core, now, answer, out| {
            let status = match &answer {
                Answer::Response(r) => r.status(),
                Answer::Timeout | Answer::Unreachable => None,
            };
            let outcome = Delivery::of(status);
            core.offline.with(|b| b.delivered(&aor, id, outcome));
            if outcome != Delivery::Failed {
                core.deliver_next(now, &aor, out);
            }
            core.message_removals(out);
        });
        out.extend(self.send_request(now, request, dest, on_answer));
    }
}

/// The MESSAGE that delivers `m` to device `b`, and where it goes first (none: its Route,
/// the Path the device registered through).
fn delivery(m: &Stored, b: &registrar::Binding) -> Option<(Message, Option<Destination>)> {
    Uri::parse(&b.contact).ok()?;
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut text = format!("MESSAGE {} SIP/2.0\r\n", clean(&b.contact));
    let dest = match b.path.is_empty() {
        true => {
            let (protocol, addr) = b.source_addr()?;
            Some(Destination {
                protocol,
                addr,
                connection: protocol.is_reliable().then_some(addr),
                name: None,
            })
        }
        false => {
            text.push_str(&format!("Route: {}\r\n", clean(&b.path.join(", "))));
            None
        }
    };
    let date = httpdate(m.received_ms / 1000);
    text.push_str(&format!(
        "Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: stored-{}-{}\r\nCSeq: 1 MESSAGE\r\n\
         Date: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        clean(&m.from),
        clean(&m.to),
        m.id,
        m.received_ms,
        clean(&m.content_type),
        m.body.len()
    ));
    let mut data = text.into_bytes();
    data.extend_from_slice(&m.body);
    Some((Message::parse(data).ok()?, dest))
}

/// An RFC 1123 date (the Date header, RFC 3261 §20.17) of Unix time `secs`.
fn httpdate(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let (h, mi, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_written_as_rfc_1123() {
        assert_eq!(super::httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            super::httpdate(1_796_601_600),
            "Mon, 07 Dec 2026 00:00:00 GMT"
        );
        assert_eq!(
            super::httpdate(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }
}
