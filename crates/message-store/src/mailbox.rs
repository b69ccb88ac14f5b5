//! The mailboxes of the users who have messages waiting.

use std::collections::{HashMap, VecDeque};

/// A message kept for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its number (rising in the order messages came; unique in the store).
    pub id: u64,
    /// Whose: `sip:user@domain`.
    pub recipient: String,
    /// The sender's From, as it came (name, URI and tag).
    pub from: String,
    /// The To it came with.
    pub to: String,
    /// Its Content-Type.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
    /// When it came (Unix milliseconds).
    pub received_ms: u64,
    /// When it is dropped undelivered.
    pub expires_ms: u64,
}

/// A MESSAGE to keep.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// Whose: `sip:user@domain`.
    pub recipient: &'a str,
    /// Its From and To headers' values.
    pub from: &'a str,
    /// Its To.
    pub to: &'a str,
    /// Its Content-Type.
    pub content_type: &'a str,
    /// Its body.
    pub body: &'a [u8],
    /// Its Auto-Submitted header (RFC 3834), if any.
    pub auto_submitted: Option<&'a str>,
}

/// Why a message is not kept: the status and reason to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The status code.
    pub code: u16,
    /// Its reason phrase.
    pub reason: &'static str,
}

/// Bounds on what strangers can make the server keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most messages kept for one user.
    pub per_user: usize,
    /// Most bytes of bodies kept for one user.
    pub per_user_bytes: usize,
    /// Largest body kept.
    pub max_body: usize,
    /// Most messages kept in all.
    pub total: usize,
    /// How long a message is kept undelivered, in milliseconds.
    pub keep_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_user: 100,
            per_user_bytes: 64 * 1024,
            max_body: 4096,
            total: 20_000,
            keep_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The device took it (2xx): removed, and the next may go.
    Taken,
    /// The device refuses it for good (a final 4xx–6xx but 408 and 480: a type it does
    /// not take, too large…): dropped, lest it block the mailbox; the next may go.
    Refused,
    /// No answer, or unavailable: it stays, and the rest wait for the next registration.
    Failed,
}

impl Delivery {
    /// How a delivery that got `status` (none: no answer) ended.
    pub fn of(status: Option<u16>) -> Delivery {
        match status {
            Some(200..=299) => Delivery::Taken,
            Some(408 | 480) | None => Delivery::Failed,
            Some(400..) => Delivery::Refused,
            Some(_) => Delivery::Failed,
        }
    }
}

/// A change the store must learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A message was delivered or expired: removed.
    Removed(u64),
}

#[derive(Debug, Default)]
struct Mailbox {
    queue: VecDeque<Stored>,
    bytes: usize,
    /// The message on its way to the user, if any.
    in_flight: Option<u64>,
    /// The user registered: its messages go out.
    wanted: bool,
}

/// The mailboxes of the users who have messages waiting.
#[derive(Debug)]
pub struct Mailboxes {
    limits: Limits,
    boxes: HashMap<String, Mailbox, ahash::RandomState>,
    total: usize,
    next_id: u64,
    changes: Vec<Change>,
}

impl Mailboxes {
    /// Empty mailboxes; new messages are numbered from `first_id` on (past any stored).
    pub fn new(limits: Limits, first_id: u64) -> Mailboxes {
        Mailboxes {
            limits,
            boxes: HashMap::default(),
            total: 0,
            next_id: first_id,
            changes: Vec::new(),
        }
    }

    /// Keeps a MESSAGE at `now_ms` for its recipient: the message as kept (for the store),
    /// or why not (413 too large, 480 an
    /// automatic message, 486 the recipient's mailbox full, 503 all full).
    pub fn keep(&mut self, now_ms: u64, m: NewMessage<'_>) -> Result<Stored, Refused> {
        if m.auto_submitted
            .is_some_and(|a| !a.trim().eq_ignore_ascii_case("no"))
        {
            return Err(Refused {
                code: 480,
                reason: "Temporarily Unavailable (automatic messages are not kept)",
            });
        }
        if m.body.len() > self.limits.max_body {
            return Err(Refused {
                code: 413,
                reason: "Request Entity Too Large",
            });
        }
        if self.total >= self.limits.total {
            return Err(Refused {
                code: 503,
                reason: "Service Unavailable (message store full)",
            });
        }
        let limits = self.limits;
        let b = self.boxes.entry(m.recipient.to_owned()).or_default();
        if b.queue.len() >= limits.per_user || b.bytes + m.body.len() > limits.per_user_bytes {
            return Err(Refused {
                code: 486,
                reason: "Busy Here (mailbox full)",
            });
        }
        self.next_id += 1;
        let stored = Stored {
            id: self.next_id,
            recipient: m.recipient.to_owned(),
            from: m.from.to_owned(),
            to: m.to.to_owned(),
            content_type: m.content_type.to_owned(),
            body: m.body.to_vec(),
            received_ms: now_ms,
            expires_ms: now_ms + limits.keep_ms,
        };
        b.bytes += stored.body.len();
        b.queue.push_back(stored.clone());
        self.total += 1;
        Ok(stored)
    }

    /// `recipient` registered: its messages go to it ([`Mailboxes::next`]).
    pub fn wake(&mut self, recipient: &str) {
        if let Some(b) = self.boxes.get_mut(recipient) {
            b.wanted = true;
        }
    }

    /// The users whose messages wait to go out now.
    pub fn due(&self) -> Vec<String> {
        self.boxes
            .iter()
            .filter(|(_, b)| b.wanted && b.in_flight.is_none() && !b.queue.is_empty())
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The next message to deliver to `recipient`, oldest first, once the one before is
    /// taken: none while one is on its way, or when nothing waits.
    pub fn next(&mut self, recipient: &str) -> Option<Stored> {
        let b = self.boxes.get_mut(recipient)?;
        if b.in_flight.is_some() || !b.wanted {
            return None;
        }
        let first = b.queue.front()?.clone();
        b.in_flight = Some(first.id);
        Some(first)
    }

    /// How the delivery of `id` to `recipient` ended (see [`Delivery`]).
    pub fn delivered(&mut self, recipient: &str, id: u64, outcome: Delivery) {
        let Some(b) = self.boxes.get_mut(recipient) else {
            return;
        };
        if b.in_flight == Some(id) {
            b.in_flight = None;
        }
        match outcome {
            Delivery::Taken | Delivery::Refused => {
                self.remove(recipient, id);
                self.changes.push(Change::Removed(id));
            }
            Delivery::Failed => b.wanted = false,
        }
    }

    /// Drops the messages kept past their time.
    pub fn expire(&mut self, now_ms: u64) {
        let old: Vec<(String, u64)> = self
            .boxes
            .iter()
            .flat_map(|(r, b)| {
                b.queue
                    .iter()
                    .filter(|m| m.expires_ms <= now_ms && b.in_flight != Some(m.id))
                    .map(move |m| (r.clone(), m.id))
            })
            .collect();
        for (r, id) in old {
            self.remove(&r, id);
            self.changes.push(Change::Removed(id));
        }
    }

    /// Takes back messages stored before a restart, in the order they came. How many were
    /// taken (past the limits, the rest are left in the store until they expire).
    pub fn restore(&mut self, mut stored: Vec<Stored>) -> usize {
        stored.sort_by_key(|m| m.id);
        let mut taken = 0;
        for m in stored {
            self.next_id = self.next_id.max(m.id);
            if self.total >= self.limits.total {
                continue;
            }
            let b = self.boxes.entry(m.recipient.clone()).or_default();
            b.bytes += m.body.len();
            b.queue.push_back(m);
            self.total += 1;
            taken += 1;
        }
        taken
    }

    /// What the store must learn, since the last time.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// How many messages are kept.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The messages kept for `recipient`, oldest first.
    pub fn of(&self, recipient: &str) -> Vec<Stored> {
        self.boxes
            .get(recipient)
            .map(|b| b.queue.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn remove(&mut self, recipient: &str, id: u64) {
        let Some(b) = self.boxes.get_mut(recipient) else {
            return;
        };
        if let Some(i) = b.queue.iter().position(|m| m.id == id) {
            let m = b.queue.remove(i).expect("found");
            b.bytes -= m.body.len();
            self.total -= 1;
        }
        if b.queue.is_empty() && b.in_flight.is_none() {
            self.boxes.remove(recipient);
        }
    }
}
