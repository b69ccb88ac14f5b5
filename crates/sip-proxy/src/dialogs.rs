//! The calls the script asked to follow (`dlg_manage()`), fed with what the proxy relays:
//! their INVITE, the responses that go to the caller and their BYEs ([`dialog::Calls`],
//! sharded by Call-ID), and the call detail records of those that ended.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use dialog::{Answer, Bye, CallKey, Calls, Cdr, Change, InDialog, Invite, Leg, Limits, Saved};
use sip_message::header::NameAddr;
use sip_message::{HeaderName, Message, Method};

use crate::route_key::{addr_uri, scanned_tag};
use crate::target::Destination;

const SHARDS: usize = 16;

/// The calls followed.
#[derive(Debug)]
pub(crate) struct Dialogs {
    shards: Vec<Mutex<Calls>>,
    /// Spreads Call-IDs over the shards, with a random key.
    hasher: ahash::RandomState,
    /// A call was ever followed: until then a BYE is not looked for (a script without
    /// `dlg_manage()` pays nothing).
    used: AtomicBool,
    /// When a full table was last logged (the Unix minute): once a minute at most.
    full_logged: AtomicU64,
}

impl Dialogs {
    /// An empty table within `limits` (its calls spread over the shards).
    pub(crate) fn new(limits: Limits) -> Dialogs {
        let limits = Limits {
            max_calls: limits.max_calls.div_ceil(SHARDS),
            ..limits
        };
        Dialogs {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Calls::new(limits)))
                .collect(),
            hasher: ahash::RandomState::new(),
            used: AtomicBool::new(false),
            full_logged: AtomicU64::new(0),
        }
    }

    fn shard(&self, call_id: &str) -> MutexGuard<'_, Calls> {
        self.shards[self.hasher.hash_one(call_id) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// An initial INVITE relayed at `now_ms` (Unix milliseconds), which came from
    /// `upstream` (the caller, or the proxy before us), counting under `profiles`: its
    /// call's key, or none when it is not followed (no From tag, followed already: a
    /// spiral, or the table full, which is logged).
    pub(crate) fn invite(
        &self,
        now_ms: u64,
        msg: &Message,
        upstream: Destination,
        profiles: Vec<String>,
    ) -> Option<CallKey> {
        let (Ok(call_id), Some(from), Some(to), Ok(cseq)) = (
            msg.call_id(),
            msg.header(HeaderName::From),
            msg.header(HeaderName::To),
            msg.cseq(),
        ) else {
            return None;
        };
        let (caller, from_tag) = uri_and_tag(from.value)?;
        let (dialled, _) = uri_and_tag(to.value)?;
        // Towards the caller: the proxies that record-routed the INVITE before us, nearest
        // first, as it lists them.
        let route: Vec<&str> = msg
            .headers_named(HeaderName::RecordRoute)
            .flat_map(|h| h.values())
            .collect();
        let invite = Invite {
            key: CallKey {
                call_id: call_id.to_owned(),
                from_tag: from_tag?.to_owned(),
            },
            caller: caller.to_owned(),
            dialled: dialled.to_owned(),
            caller_leg: leg(contact_of(msg), &route, upstream, cseq.seq),
            profiles,
        };
        self.used.store(true, Ordering::Relaxed);
        let key = invite.key.clone();
        let mut calls = self.shard(call_id);
        let full = calls.is_full();
        let followed = calls.invite(now_ms, invite).then_some(key);
        drop(calls);
        let minute = now_ms / 60_000;
        if full && self.full_logged.swap(minute, Ordering::Relaxed) != minute {
            tracing::warn!("too many calls followed at once: new calls go without records");
        }
        followed
    }

    /// A response of the followed call `key` relayed to the caller: its status, To tag and
    /// (a 2xx's) callee.
    pub(crate) fn response(
        &self,
        now_ms: u64,
        key: &CallKey,
        status: u16,
        to_tag: Option<&str>,
        answer: Option<Answer>,
    ) {
        let mut calls = self.shard(&key.call_id);
        calls.response(now_ms, key, to_tag, status, answer);
    }

    /// True when the call of this INVITE (its Call-ID and From tag) is followed already.
    pub(crate) fn is_followed(&self, msg: &Message) -> Option<bool> {
        let (Ok(call_id), Some(from)) = (msg.call_id(), msg.header(HeaderName::From)) else {
            return None;
        };
        let key = CallKey {
            call_id: call_id.to_owned(),
            from_tag: uri_and_tag(from.value)?.1?.to_owned(),
        };
        Some(self.used.load(Ordering::Relaxed) && self.shard(call_id).is_followed(&key))
    }

    /// Calls in progress counted under `profile` (`dlg_limit()`).
    pub(crate) fn profile_size(&self, profile: &str) -> u32 {
        if !self.used.load(Ordering::Relaxed) {
            return 0;
        }
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .profile_size(profile)
            })
            .sum()
    }

    /// A request inside a dialog relayed (at the time `now_ms` reads, once a call was
    /// ever followed): its CSeq noted, a re-INVITE or UPDATE refreshes its session, and a
    /// BYE ends its dialog, if followed.
    pub(crate) fn request(&self, now_ms: impl FnOnce() -> u64, msg: &Message) {
        if !self.used.load(Ordering::Relaxed) {
            return;
        }
        // An ACK changes nothing: its CSeq is its INVITE's.
        let method = msg.method();
        if method == Some(Method::Ack) {
            return;
        }
        let (Ok(call_id), Some(from), Some(to), Ok(cseq)) = (
            msg.call_id(),
            msg.header(HeaderName::From),
            msg.header(HeaderName::To),
            msg.cseq(),
        ) else {
            return;
        };
        let (Some((_, from_tag)), Some((_, to_tag))) =
            (uri_and_tag(from.value), uri_and_tag(to.value))
        else {
            return;
        };
        if let (Some(from_tag), Some(to_tag)) = (from_tag, to_tag) {
            let sent = InDialog {
                call_id,
                from_tag,
                to_tag,
                cseq: cseq.seq,
                bye: method == Some(Method::Bye),
                refresh: matches!(method, Some(Method::Invite | Method::Update)),
                session_s: session_expires(msg),
            };
            self.shard(call_id).request(now_ms(), sent);
        }
    }

    /// Ends the answered dialogs of the calls of `call_id` from the server: the BYEs to
    /// send.
    pub(crate) fn end_call(&self, now_ms: u64, call_id: &str) -> Vec<Bye> {
        self.shard(call_id).end_call(now_ms, call_id)
    }

    /// Follows again dialogs kept from before a restart; how many the table took.
    pub(crate) fn restore(&self, saved: Vec<Saved>) -> usize {
        if !saved.is_empty() {
            self.used.store(true, Ordering::Relaxed);
        }
        saved
            .into_iter()
            .filter(|s| self.shard(&s.key.call_id).restore(s.clone()))
            .count()
    }

    /// The calls in progress, oldest first.
    pub(crate) fn active(&self) -> Vec<dialog::ActiveCall> {
        let mut all = Vec::new();
        for s in &self.shards {
            all.extend(s.lock().unwrap_or_else(|p| p.into_inner()).active());
        }
        all.sort_by_key(|c| c.started_ms);
        all
    }

    /// What happened since the last time: the calls past their longest duration ended
    /// and the calls that never settled dropped (lost events: recorded unanswered, 408)
    /// first.
    /// At exit (`last`), every answered dialog goes to the store, however young.
    pub(crate) fn tick(&self, now_ms: u64, last: bool) -> Tick {
        let mut t = Tick::default();
        for s in &self.shards {
            let mut calls = s.lock().unwrap_or_else(|p| p.into_inner());
            t.byes.append(&mut calls.expire(now_ms));
            t.records.append(&mut calls.take_records());
            let saved_by = if last { u64::MAX } else { now_ms };
            t.changes.append(&mut calls.take_changes(saved_by));
        }
        t
    }
}

/// What [`Dialogs::tick`] found.
#[derive(Debug, Default)]
pub(crate) struct Tick {
    /// The records of the calls that ended.
    pub(crate) records: Vec<Cdr>,
    /// What the store must learn of the dialogs in progress.
    pub(crate) changes: Vec<Change>,
    /// BYEs of the server's own to send.
    pub(crate) byes: Vec<Bye>,
}

/// What a 2xx to an INVITE says of its dialog: how its callee is reached ([`callee_leg`])
/// and its session interval.
pub(crate) fn answer(resp: &Message, ours: Option<&[u8]>, hop: Destination) -> Answer {
    Answer {
        callee: callee_leg(resp, ours, hop),
        session_s: session_expires(resp),
    }
}

/// A message's Session-Expires (RFC 4028), in seconds.
fn session_expires(msg: &Message) -> Option<u32> {
    let value = msg.header(HeaderName::SessionExpires)?.value;
    let delta = value.split(';').next().unwrap_or_default();
    sip_message::header::parse_delta_seconds(delta).filter(|&s| s > 0)
}

/// How the callee of a 2xx is reached: its Contact, through `hop` (where the INVITE went)
/// and the proxies that record-routed after us (the entries above `ours`, nearest first).
fn callee_leg(resp: &Message, ours: Option<&[u8]>, hop: Destination) -> Leg {
    let mut above: Vec<&str> = Vec::new();
    let values = resp
        .headers_named(HeaderName::RecordRoute)
        .flat_map(|h| h.values());
    let mut found = false;
    for v in values {
        if ours.is_some_and(|k| memchr::memmem::find(v.as_bytes(), k).is_some()) {
            found = true;
            break;
        }
        above.push(v);
    }
    // Without our entry, nothing tells which entries are past us.
    if !found {
        above.clear();
    }
    above.reverse();
    leg(contact_of(resp), &above, hop, 0)
}

/// Most bytes of a Contact URI, and of a route set, a followed call keeps for each side:
/// past them (or with a control character, or a Contact that is no SIP URI) the side is
/// not kept, and the server cannot end the call itself.
const MAX_CONTACT: usize = 512;
const MAX_ROUTE: usize = 2048;

/// How a side is reached, when what its message says can be kept (see [`MAX_CONTACT`]).
fn leg(contact: Option<&str>, route: &[&str], hop: Destination, cseq: u32) -> Leg {
    let route = route.join(", ");
    let contact = contact.unwrap_or_default();
    let sip = contact
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("sip:"))
        || contact
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    if !sip
        || contact.len() > MAX_CONTACT
        || route.len() > MAX_ROUTE
        || !plain(contact)
        || !plain(&route)
    {
        return Leg::default();
    }
    Leg {
        contact: contact.to_owned(),
        route,
        hop: hop.to_text(),
        cseq,
    }
}

/// No control characters (a response is not checked whole when it comes).
fn plain(s: &str) -> bool {
    !s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// A From or To value's URI and tag: found by scans, or by the parser when the value holds
/// a quoted string (in one, `>`, `;` and `,` mean nothing, and a scan could take them).
pub(crate) fn uri_and_tag(value: &str) -> Option<(&str, Option<&str>)> {
    let (uri, tag) = match value.contains('"') {
        true => {
            let na = NameAddr::parse(value).ok()?;
            (na.uri.as_str(), na.tag())
        }
        false => (addr_uri(value)?, scanned_tag(value)),
    };
    Some((uri, tag.filter(|t| plain(t))))
}

/// The URI of a message's first Contact (parsed when it holds a quoted string).
fn contact_of(msg: &Message) -> Option<&str> {
    let value = msg.header(HeaderName::Contact)?.value;
    if !value.contains('"') {
        return addr_uri(value);
    }
    match msg.contacts().next()?.ok()? {
        sip_message::header::Contact::Address(na) => Some(na.uri.as_str()),
        sip_message::header::Contact::Star => None,
    }
}
