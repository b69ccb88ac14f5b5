//! The table of calls: what the proxy relays goes in, records and calls to end come out.

use std::collections::HashMap;

use crate::bye::Bye;
use crate::call::{Answer, Call, CallKey, Dialog, DialogState, Invite};
use crate::cdr::{ActiveCall, Cdr, Ending};
use crate::saved::Change;

/// Bounds on what the table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most calls tracked at once; past it a new call is not tracked.
    pub max_calls: usize,
    /// Dialogs answered longer ago than this are ended by the server (none: no limit).
    pub max_duration_ms: Option<u64>,
    /// A call still unanswered and unsettled after this is dropped (a proxy settles every
    /// INVITE within timer C; this is a floor under lost events).
    pub max_setup_ms: u64,
    /// A dialog still confirmed this long after its answer has its record closed as
    /// [`Ending::Expired`] and is forgotten (its BYE went another way, or never came).
    pub max_followed_ms: u64,
    /// An answered dialog is stored once it has lasted this long: a crash loses the calls
    /// answered within it, and calls shorter than it never reach the store.
    pub save_after_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_calls: 100_000,
            max_duration_ms: None,
            max_setup_ms: 10 * 60 * 1000,
            max_followed_ms: 24 * 3600 * 1000,
            save_after_ms: 10_000,
        }
    }
}

/// How long a BYE's answer is waited for (a transaction's time, 64·T1): past it the BYE
/// counts as taken (it was relayed without state, or its answer went another way).
const BYE_WAIT_MS: u64 = 32_000;

/// A request inside a dialog, as [`Calls::request`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct InDialog<'a> {
    /// Its Call-ID.
    pub call_id: &'a str,
    /// Its From tag (the sender's).
    pub from_tag: &'a str,
    /// Its To tag.
    pub to_tag: &'a str,
    /// Its CSeq number.
    pub cseq: u32,
    /// It is a BYE.
    pub bye: bool,
    /// It refreshes the session (a re-INVITE or an UPDATE, RFC 4028).
    pub refresh: bool,
    /// Its Session-Expires, in seconds.
    pub session_s: Option<u32>,
}

/// The calls a proxy relays, and the records of those that ended. Events for calls it does
/// not know (never tracked, or over) change nothing: retransmissions and late answers
/// never make a second record.
#[derive(Debug)]
pub struct Calls {
    pub(crate) calls: HashMap<CallKey, Call, ahash::RandomState>,
    pub(crate) limits: Limits,
    records: Vec<Cdr>,
    /// Dialogs the store holds that ended since it last learnt.
    ended: Vec<Change>,
    /// Calls with a dialog answered or changed since then (saved when taken, unless
    /// ended by then: a short call never reaches the store).
    dirty: Vec<CallKey>,
    /// Calls in progress per profile.
    pub(crate) profiles: HashMap<String, u32, ahash::RandomState>,
    /// The calls' progress, when noted ([`Calls::note_progress`]).
    pub(crate) progress: Option<Vec<crate::Progress>>,
}

impl Calls {
    /// An empty table.
    pub fn new(limits: Limits) -> Calls {
        Calls {
            calls: HashMap::default(),
            limits,
            records: Vec::new(),
            ended: Vec::new(),
            dirty: Vec::new(),
            profiles: HashMap::default(),
            progress: None,
        }
    }

    /// An initial INVITE relayed at `now_ms` (milliseconds since the Unix epoch): true
    /// when it starts a call followed from now on. False for a call already followed (the
    /// same INVITE again, or one that spirals back through the proxy: its first pass alone
    /// follows it) and when the table is full.
    pub fn invite(&mut self, now_ms: u64, invite: Invite) -> bool {
        if self.calls.contains_key(&invite.key) {
            return false;
        }
        if self.calls.len() >= self.limits.max_calls {
            return false;
        }
        let call = Call {
            started_ms: now_ms,
            dialogs: Vec::new(),
            settled: false,
            phase: crate::Phase::Trying,
            invite,
        };
        self.count(&call.invite.profiles, true);
        let key = call.invite.key.clone();
        if let Some(progress) = self.progress.as_mut() {
            progress.push(crate::progress::of(&call, crate::Phase::Trying, None));
        }
        self.calls.insert(key, call);
        true
    }

    /// A response to the INVITE of `key` relayed to the caller: a provisional one with a To
    /// tag makes that dialog early; a 2xx confirms it (the first 2xx of a dialog is its
    /// answer, and ends the other early dialogs) and tells how the callee is reached; a
    /// final failure ends the call's early dialogs, and when none was answered records a
    /// call nobody answered.
    pub fn response(
        &mut self,
        now_ms: u64,
        key: &CallKey,
        to_tag: Option<&str>,
        status: u16,
        answer: Option<Answer>,
    ) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        match status {
            // A provisional response makes its dialog early, before the call is settled
            // (and never takes a dialog back).
            101..=199 if !call.settled => {
                if let Some(tag) = to_tag {
                    if call.dialog(tag).is_some() {
                        self.progressed(key, crate::Phase::Early, Some(tag));
                    }
                }
            }
            200..=299 => {
                let Some(tag) = to_tag else { return };
                let answered = call.dialogs.iter().filter(|d| d.answered_ms.is_some());
                if answered.count() >= crate::call::MAX_ANSWERED {
                    return;
                }
                let Some(d) = call.dialog(tag) else { return };
                let ended = d.state == DialogState::Terminated && !d.superseded;
                if d.answered_ms.is_some() || ended {
                    return; // a retransmission, or too late
                }
                d.state = DialogState::Confirmed;
                d.answered_ms = Some(now_ms);
                d.refreshed_ms = now_ms;
                d.session_ms = session_ms(answer.as_ref().and_then(|a| a.session_s));
                d.callee = answer.map(|a| a.callee);
                d.dirty = true;
                self.dirty.push(key.clone());
                call.settled = true;
                for other in call.dialogs.iter_mut().filter(|o| o.to_tag != tag) {
                    if other.state == DialogState::Early {
                        other.state = DialogState::Terminated;
                        other.superseded = true;
                    }
                }
                self.progressed(key, crate::Phase::Confirmed, Some(tag));
            }
            300.. => {
                if call.settled {
                    return;
                }
                call.settled = true;
                for d in call.dialogs.iter_mut() {
                    if d.state == DialogState::Early {
                        d.state = DialogState::Terminated;
                    }
                }
                // A redirect, a challenge or a session interval too small (RFC 4028) is
                // no missed call: the caller goes on with a new INVITE, a call of its own.
                let goes_on = matches!(status, 300..=399 | 401 | 407 | 422);
                if !call.answered() && !goes_on {
                    let record = unanswered(call, now_ms, status);
                    self.records.push(record);
                }
                self.forget_if_over(key);
            }
            _ => {}
        }
    }

    /// A request inside a dialog relayed, with the tags of its From and To and its CSeq
    /// number: the sender's CSeq is noted (the server's own BYE must be higher). A BYE of
    /// a talking dialog is noted, with who hung up (whose tag is in From), until its answer
    /// ([`Calls::bye_answered`]); true for it.
    pub fn request(&mut self, now_ms: u64, sent: InDialog<'_>) -> bool {
        let (key, dialog_tag, by_caller) = self.which(&sent);
        if sent.bye {
            let ending = match by_caller {
                true => Ending::CallerHungUp,
                false => Ending::CalleeHungUp,
            };
            let d = self
                .calls
                .get_mut(&key)
                .and_then(|c| c.dialogs.iter_mut().find(|d| d.to_tag == dialog_tag));
            match d {
                Some(d) if d.state == DialogState::Confirmed => {
                    d.ending.get_or_insert((now_ms, ending));
                    return true;
                }
                Some(_) => self.end(now_ms, &key, dialog_tag, ending),
                None => {}
            }
            return false;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let Some(d) = call.dialogs.iter_mut().find(|d| d.to_tag == dialog_tag) else {
            return false;
        };
        let seen = match by_caller {
            true => &mut d.caller_cseq,
            false => &mut d.callee_cseq,
        };
        let changed = sent.cseq > *seen;
        *seen = sent.cseq.max(*seen);
        // A new refresh (not a retransmission or a stale one) restarts the session, with
        // the interval it asks for, or none: a refresh without Session-Expires turns the
        // timer off (RFC 4028 §7.4), which never ends a call early.
        if changed && sent.refresh && d.state == DialogState::Confirmed {
            d.refreshed_ms = now_ms;
            d.session_ms = session_ms(sent.session_s);
        }
        if changed && d.state == DialogState::Confirmed && !d.dirty {
            d.dirty = true;
            self.dirty.push(key);
        }
        false
    }

    /// The final answer to a BYE that [`Calls::request`] noted: a 2xx, 481 (no such dialog
    /// over there) or 408 (nobody answered) ends the dialog when the BYE came; another
    /// refusal leaves the call going (a BYE the other side refused hung nothing up).
    pub fn bye_answered(&mut self, sent: InDialog<'_>, status: u16) {
        let (key, dialog_tag, _) = self.which(&sent);
        let d = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.dialogs.iter_mut().find(|d| d.to_tag == dialog_tag));
        let Some(d) = d else { return };
        let Some((at, ending)) = d.ending else { return };
        match status {
            200..=299 | 408 | 481 => self.end(at, &key, dialog_tag, ending),
            300.. => d.ending = None,
            _ => {}
        }
    }

    /// The call a request inside a dialog belongs to, its dialog's To tag, and whether the
    /// caller sent it.
    fn which<'a>(&self, sent: &InDialog<'a>) -> (CallKey, &'a str, bool) {
        let key_of = |tag: &str| CallKey {
            call_id: sent.call_id.to_owned(),
            from_tag: tag.to_owned(),
        };
        let caller = key_of(sent.from_tag);
        match self.calls.contains_key(&caller) {
            true => (caller, sent.to_tag, true),
            false => (key_of(sent.to_tag), sent.from_tag, false),
        }
    }

    /// Ends the dialogs answered longer ago than the longest duration, recording them as
    /// ended by the server; drops calls unsettled for longer than `max_setup_ms`. The
    /// BYEs the proxy sends to both sides of each dialog ended.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Bye> {
        let mut due = Vec::new();
        let mut stale = Vec::new();
        let mut lost = Vec::new();
        let mut unanswered_byes = Vec::new();
        for (key, call) in &self.calls {
            if !call.settled && now_ms.saturating_sub(call.started_ms) > self.limits.max_setup_ms {
                stale.push(key.clone());
            }
            // (A session timer ends its dialog first, however long it is refreshed.)
            let long = |d: &&Dialog| {
                d.state == DialogState::Confirmed
                    && d.session_ms.is_none()
                    && d.answered_ms
                        .is_some_and(|a| now_ms.saturating_sub(a) >= self.limits.max_followed_ms)
            };
            lost.extend(
                call.dialogs
                    .iter()
                    .filter(long)
                    .map(|d| (key.clone(), d.to_tag.clone())),
            );
            // A BYE whose answer never came through us: taken as answered.
            for d in &call.dialogs {
                if let Some((at, ending)) = d.ending {
                    if now_ms.saturating_sub(at) >= BYE_WAIT_MS {
                        unanswered_byes.push((key.clone(), d.to_tag.clone(), at, ending));
                    }
                }
            }
            let Some(max) = self.limits.max_duration_ms else {
                continue;
            };
            let talking = call
                .dialogs
                .iter()
                .filter(|d| d.state == DialogState::Confirmed);
            for d in talking {
                if d.answered_ms
                    .is_some_and(|a| now_ms.saturating_sub(a) >= max)
                {
                    due.push((key.clone(), d.to_tag.clone()));
                }
            }
        }
        for key in stale {
            if let Some(call) = self.calls.get_mut(&key) {
                call.settled = true;
                for d in call.dialogs.iter_mut() {
                    d.state = DialogState::Terminated;
                }
                if !call.answered() {
                    let record = unanswered(call, now_ms, 408);
                    self.records.push(record);
                }
            }
            self.forget_if_over(&key);
        }
        let mut byes = Vec::new();
        for (key, tag) in &due {
            byes.extend(self.end_by_server(now_ms, key, tag));
        }
        // A session that expired is over (its parties send their own BYE; a proxy must
        // not, RFC 4028 §8.3): recorded, and forgotten.
        for (key, tag, at) in self.sessions_over(now_ms) {
            self.end(at, &key, &tag, Ending::Expired);
        }
        for (key, tag, at, ending) in &unanswered_byes {
            self.end(*at, key, tag, *ending);
        }
        for (key, tag) in &lost {
            self.end(now_ms, key, tag, Ending::Expired);
        }
        byes
    }

    /// Ends every answered dialog of the calls of `call_id` (an operator's `calls end`),
    /// recording them as ended by the server: the BYEs to send to both sides of each.
    pub fn end_call(&mut self, now_ms: u64, call_id: &str) -> Vec<Bye> {
        let talking: Vec<(CallKey, String)> = self
            .calls
            .iter()
            .filter(|(k, _)| k.call_id == call_id)
            .flat_map(|(k, c)| {
                c.dialogs
                    .iter()
                    .filter(|d| d.state == DialogState::Confirmed)
                    .map(|d| (k.clone(), d.to_tag.clone()))
            })
            .collect();
        let mut byes = Vec::new();
        for (key, tag) in &talking {
            byes.extend(self.end_by_server(now_ms, key, tag));
        }
        byes
    }

    /// What the store has not been told yet by `now_ms`: the dialogs it holds that ended,
    /// then the dialogs answered at least `save_after_ms` ago, or changed since they were
    /// stored (a dialog answered and ended in between is in neither).
    pub fn take_changes(&mut self, now_ms: u64) -> Vec<Change> {
        let mut changes = std::mem::take(&mut self.ended);
        let mut later = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            let mut wait = false;
            for i in 0..call.dialogs.len() {
                let d = &mut call.dialogs[i];
                if !d.dirty || d.state != DialogState::Confirmed {
                    d.dirty = false;
                    continue;
                }
                let young = d
                    .answered_ms
                    .is_some_and(|a| now_ms.saturating_sub(a) < self.limits.save_after_ms);
                if !d.stored && young {
                    wait = true;
                    continue;
                }
                d.dirty = false;
                let change = match std::mem::replace(&mut d.stored, true) {
                    true => Change::Saved,
                    false => Change::Added,
                };
                let tag = d.to_tag.clone();
                changes.extend(crate::saved::saved(call, &tag).map(change));
            }
            if wait {
                later.push(key);
            }
        }
        self.dirty = later;
        changes
    }

    /// Ends the confirmed dialog `to_tag` of `key` from the server: its BYEs. One whose
    /// sides cannot be reached (their messages said too little) goes on.
    fn end_by_server(&mut self, now_ms: u64, key: &CallKey, to_tag: &str) -> Vec<Bye> {
        let byes = self
            .calls
            .get(key)
            .map(|c| crate::bye::byes(c, to_tag))
            .unwrap_or_default();
        if !byes.is_empty() {
            self.end(now_ms, key, to_tag, Ending::EndedByServer);
        }
        byes
    }

    /// The state of the dialog of `key` with `to_tag`, while its call is tracked.
    pub fn state(&self, key: &CallKey, to_tag: &str) -> Option<DialogState> {
        let call = self.calls.get(key)?;
        call.dialogs
            .iter()
            .find(|d| d.to_tag == to_tag)
            .map(|d| d.state)
    }

    /// The records made since the last time they were taken.
    pub fn take_records(&mut self) -> Vec<Cdr> {
        std::mem::take(&mut self.records)
    }

    /// The calls in progress: ringing, or talking in a dialog not ended yet.
    pub fn active(&self) -> Vec<ActiveCall> {
        let live = |c: &&Call| !c.over();
        let talking = |c: &Call| {
            c.dialogs
                .iter()
                .filter(|d| d.state == DialogState::Confirmed)
                .filter_map(|d| d.answered_ms)
                .min()
        };
        self.calls
            .values()
            .filter(live)
            .map(|c| ActiveCall {
                call_id: c.invite.key.call_id.clone(),
                caller: c.invite.caller.clone(),
                dialled: c.invite.dialled.clone(),
                started_ms: c.started_ms,
                answered_ms: talking(c),
            })
            .collect()
    }

    /// True when the call `key` is followed.
    pub fn is_followed(&self, key: &CallKey) -> bool {
        self.calls.contains_key(key)
    }

    /// True when no new call can be tracked.
    pub fn is_full(&self) -> bool {
        self.calls.len() >= self.limits.max_calls
    }

    /// Calls tracked.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when no call is tracked.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Ends the confirmed dialog `to_tag` of `key` the way `ending` says, recording it.
    fn end(&mut self, now_ms: u64, key: &CallKey, to_tag: &str, ending: Ending) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        let Some(d) = call.dialogs.iter_mut().find(|d| d.to_tag == to_tag) else {
            return;
        };
        if d.state == DialogState::Terminated {
            return; // a retransmission, or the other side's BYE after ours
        }
        d.state = DialogState::Terminated;
        d.dirty = false;
        let (was_answered, stored) = (d.answered_ms.is_some(), std::mem::take(&mut d.stored));
        if was_answered {
            let record = answered(call, to_tag, now_ms, ending);
            self.records.push(record);
        }
        if stored {
            self.ended.push(Change::Ended {
                key: key.clone(),
                to_tag: to_tag.to_owned(),
            });
        }
        self.forget_if_over(key);
    }

    pub(crate) fn forget_if_over(&mut self, key: &CallKey) {
        if self.calls.get(key).is_some_and(Call::over) {
            if let Some(call) = self.calls.remove(key) {
                self.count(&call.invite.profiles, false);
                self.gone(&call);
            }
        }
    }
}

/// A session interval in milliseconds: none below RFC 4028's floor of 90 s (a party asking
/// for less cannot have the server end its call sooner).
fn session_ms(s: Option<u32>) -> Option<u64> {
    s.filter(|&s| s >= 90).map(|s| u64::from(s) * 1000)
}

/// The record of a call nobody answered.
fn unanswered(call: &Call, now_ms: u64, status: u16) -> Cdr {
    Cdr {
        call_id: call.invite.key.call_id.clone(),
        caller: call.invite.caller.clone(),
        dialled: call.invite.dialled.clone(),
        reached: None,
        started_ms: call.started_ms,
        answered_ms: None,
        ended_ms: now_ms.max(call.started_ms),
        status,
        ending: Ending::NotAnswered,
    }
}

/// The record of the answered dialog `to_tag` of `call`, ended at `now_ms`.
fn answered(call: &Call, to_tag: &str, now_ms: u64, ending: Ending) -> Cdr {
    let d: Option<&Dialog> = call.dialogs.iter().find(|d| d.to_tag == to_tag);
    let answered_ms = d.and_then(|d| d.answered_ms);
    Cdr {
        call_id: call.invite.key.call_id.clone(),
        caller: call.invite.caller.clone(),
        dialled: call.invite.dialled.clone(),
        reached: d.and_then(Dialog::reached),
        started_ms: call.started_ms,
        answered_ms,
        ended_ms: now_ms.max(answered_ms.unwrap_or(call.started_ms)),
        status: 200,
        ending,
    }
}
