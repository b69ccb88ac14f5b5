//! The calls the script asked to follow (`dlg_manage()`, `dlg_limit()`), fed with what the
//! proxy relays: their INVITE, the responses that go to the caller and the requests inside
//! their dialogs ([`dialog::Calls`], sharded by Call-ID); the records of those that ended,
//! the changes for the store, the BYEs of the server's own, and the calls a restart brings
//! back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use dialog::{Answer, Bye, CallKey, Calls, Cdr, Change, InDialog, Invite, Limits, Saved};
use sip_message::{HeaderName, Message, Method};

use crate::dialog_read::{contact_of, leg, session_expires, tag_of, uri_and_tag};
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
    /// The calls' progress is noted (someone watches users' calls or presence).
    noting: AtomicBool,
    /// Progress waits in a shard.
    pending: AtomicBool,
}

/// A shard, locked: on release, tells whether progress waits in it.
pub(crate) struct Shard<'a> {
    calls: MutexGuard<'a, Calls>,
    pending: &'a AtomicBool,
}

impl std::ops::Deref for Shard<'_> {
    type Target = Calls;
    fn deref(&self) -> &Calls {
        &self.calls
    }
}

impl std::ops::DerefMut for Shard<'_> {
    fn deref_mut(&mut self) -> &mut Calls {
        &mut self.calls
    }
}

impl Drop for Shard<'_> {
    fn drop(&mut self) {
        if self.calls.has_progress() {
            self.pending.store(true, Ordering::Relaxed);
        }
    }
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
            noting: AtomicBool::new(false),
            pending: AtomicBool::new(false),
        }
    }

    fn shard(&self, call_id: &str) -> Shard<'_> {
        self.lock(self.hasher.hash_one(call_id) as usize % SHARDS)
    }

    fn lock(&self, i: usize) -> Shard<'_> {
        Shard {
            calls: self.shards[i].lock().unwrap_or_else(|p| p.into_inner()),
            pending: &self.pending,
        }
    }

    /// Notes the calls' progress from now on ([`Dialogs::take_progress`]).
    pub(crate) fn note_progress(&self) {
        if !self.noting.swap(true, Ordering::Relaxed) {
            for i in 0..SHARDS {
                self.lock(i).note_progress();
            }
        }
    }

    /// Whether progress waits to be taken.
    pub(crate) fn progress_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// The calls' progress since the last time (in order per call).
    pub(crate) fn take_progress(&self) -> Vec<dialog::Progress> {
        if !self.pending.swap(false, Ordering::Relaxed) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for i in 0..SHARDS {
            let mut shard = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
            all.append(&mut shard.take_progress());
        }
        all
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
        let (call_id, from, cseq) = ids(msg)?;
        let (caller, from_tag) = uri_and_tag(from)?;
        let (dialled, _) = uri_and_tag(msg.header(HeaderName::To)?.value)?;
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
            // (For busy lamps alone: kept while someone watches.)
            target: match self.noting.load(Ordering::Relaxed) {
                true => msg.request_uri_str().unwrap_or(dialled).to_owned(),
                false => String::new(),
            },
            caller_leg: leg(contact_of(msg), &route, upstream, cseq),
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
            from_tag: tag_of(from.value)?.to_owned(),
        };
        Some(self.used.load(Ordering::Relaxed) && self.shard(call_id).is_followed(&key))
    }

    /// Calls in progress counted under `profile` (`dlg_limit()`).
    pub(crate) fn profile_size(&self, profile: &str) -> u32 {
        if !self.used.load(Ordering::Relaxed) {
            return 0;
        }
        (0..SHARDS)
            .map(|i| self.lock(i).profile_size(profile))
            .sum()
    }

    /// A request inside a dialog relayed (its To tag as the script read it; at the time
    /// `now_ms` reads, once a call was ever followed): its CSeq noted, a re-INVITE or UPDATE refreshes its session, and a
    /// BYE of a followed dialog is noted until its answer: its dialog then.
    pub(crate) fn request(
        &self,
        now_ms: impl FnOnce() -> u64,
        msg: &Message,
        to_tag: Option<&str>,
    ) -> Option<ByeOf> {
        // Not inside a dialog (no To tag), or an ACK, which changes nothing (its CSeq is its
        // INVITE's).
        let to_tag = to_tag?;
        if !self.used.load(Ordering::Relaxed) || msg.method() == Some(Method::Ack) {
            return None;
        }
        let sent = in_dialog(msg, to_tag)?;
        let bye = self.shard(sent.call_id).request(now_ms(), sent);
        bye.then(|| ByeOf {
            call_id: sent.call_id.to_owned(),
            from_tag: sent.from_tag.to_owned(),
            to_tag: sent.to_tag.to_owned(),
        })
    }

    /// The final answer to a BYE [`Dialogs::request`] noted: its dialog ends when the BYE
    /// came if the other side took it (2xx, 481, 408).
    pub(crate) fn bye_answered(&self, bye: &ByeOf, status: u16) {
        let sent = InDialog {
            call_id: &bye.call_id,
            from_tag: &bye.from_tag,
            to_tag: &bye.to_tag,
            cseq: 0,
            bye: true,
            refresh: false,
            session_s: None,
        };
        self.shard(&bye.call_id).bye_answered(sent, status);
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
        for i in 0..SHARDS {
            all.extend(self.lock(i).active());
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
        for i in 0..SHARDS {
            let mut calls = self.lock(i);
            t.byes.append(&mut calls.expire(now_ms));
            t.records.append(&mut calls.take_records());
            let saved_by = if last { u64::MAX } else { now_ms };
            t.changes.append(&mut calls.take_changes(saved_by));
        }
        t
    }
}

/// A BYE that waits for its answer to end its dialog ([`Dialogs::bye_answered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ByeOf {
    call_id: String,
    from_tag: String,
    to_tag: String,
}

/// A request inside a dialog as the tracker reads it.
fn in_dialog<'a>(msg: &'a Message, to_tag: &'a str) -> Option<InDialog<'a>> {
    let method = msg.method();
    let (call_id, from, cseq) = ids(msg)?;
    let refresh = matches!(method, Some(Method::Invite | Method::Update));
    Some(InDialog {
        call_id,
        from_tag: tag_of(from)?,
        to_tag,
        cseq,
        bye: method == Some(Method::Bye),
        refresh,
        session_s: refresh.then(|| session_expires(msg)).flatten(),
    })
}

/// A request's Call-ID, From value and CSeq number.
fn ids(msg: &Message) -> Option<(&str, &str, u32)> {
    let from = msg.header(HeaderName::From)?.value;
    Some((msg.call_id().ok()?, from, msg.cseq().ok()?.seq))
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
