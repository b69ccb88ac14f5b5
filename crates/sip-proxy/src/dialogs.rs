//! The calls the script asked to follow (`dlg_manage()`), fed with what the proxy relays:
//! their INVITE, the responses that go to the caller and their BYEs ([`dialog::Calls`],
//! sharded by Call-ID), and the call detail records of those that ended.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use dialog::{CallKey, Calls, Cdr, Invite, Limits};
use sip_message::Message;

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

impl Default for Dialogs {
    fn default() -> Self {
        let limits = Limits {
            max_calls: Limits::default().max_calls / SHARDS,
            ..Limits::default()
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
}

impl Dialogs {
    fn shard(&self, call_id: &str) -> MutexGuard<'_, Calls> {
        self.shards[self.hasher.hash_one(call_id) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// An initial INVITE relayed at `now_ms` (Unix milliseconds): its call's key, or none
    /// when it is not followed (no From tag, followed already: a spiral, or the table
    /// full, which is logged).
    pub(crate) fn invite(&self, now_ms: u64, msg: &Message) -> Option<CallKey> {
        let (Ok(call_id), Ok(from), Ok(to)) = (msg.call_id(), msg.from(), msg.to()) else {
            return None;
        };
        let from_tag = from.tag()?;
        let invite = Invite {
            key: CallKey {
                call_id: call_id.to_owned(),
                from_tag: from_tag.to_owned(),
            },
            caller: from.uri.as_str().to_owned(),
            dialled: to.uri.as_str().to_owned(),
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
    /// (a 2xx's) Contact URI.
    pub(crate) fn response(
        &self,
        now_ms: u64,
        key: &CallKey,
        status: u16,
        to_tag: Option<&str>,
        contact: Option<&str>,
    ) {
        let mut calls = self.shard(&key.call_id);
        calls.response(now_ms, key, to_tag, status, contact);
    }

    /// A BYE relayed: the end of its dialog, if followed.
    pub(crate) fn bye(&self, now_ms: u64, msg: &Message) {
        if !self.used.load(Ordering::Relaxed) {
            return;
        }
        let (Ok(call_id), Ok(from), Ok(to)) = (msg.call_id(), msg.from(), msg.to()) else {
            return;
        };
        if let (Some(from_tag), Some(to_tag)) = (from.tag(), to.tag()) {
            self.shard(call_id).bye(now_ms, call_id, from_tag, to_tag);
        }
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

    /// The records of the calls that ended since the last time, after dropping the calls
    /// that never settled (lost events: they are recorded unanswered, 408).
    pub(crate) fn take_records(&self, now_ms: u64) -> Vec<Cdr> {
        let mut all = Vec::new();
        for s in &self.shards {
            let mut calls = s.lock().unwrap_or_else(|p| p.into_inner());
            calls.expire(now_ms);
            all.append(&mut calls.take_records());
        }
        all
    }
}
