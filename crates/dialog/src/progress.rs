//! A call's progress as busy lamps show it (RFC 4235): trying, early, confirmed and
//! terminated, each at most once and in that order, noted for a proxy that asks.

use crate::call::{Call, CallKey};
use crate::calls::Calls;

/// How far a call has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Its INVITE was relayed.
    Trying,
    /// A provisional response with a To tag came: it rings.
    Early,
    /// It was answered.
    Confirmed,
    /// It is over.
    Terminated,
}

/// A call that moved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Its Call-ID.
    pub call_id: String,
    /// The caller's tag.
    pub caller_tag: String,
    /// The callee's tag, once a response had one.
    pub callee_tag: Option<String>,
    /// The caller: the From URI.
    pub caller: String,
    /// The callee as dialled: the To URI.
    pub dialled: String,
    /// The Request-URI the INVITE came with.
    pub target: String,
    /// Where it is now.
    pub phase: Phase,
}

impl Calls {
    /// Notes the progress of calls from now on (for [`Calls::take_progress`]).
    pub fn note_progress(&mut self) {
        self.progress.get_or_insert_with(Vec::new);
    }

    /// The progress noted since the last time, in order.
    pub fn take_progress(&mut self) -> Vec<Progress> {
        self.progress
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether progress waits to be taken.
    pub fn has_progress(&self) -> bool {
        self.progress.as_ref().is_some_and(|p| !p.is_empty())
    }

    /// The call of `key` reached `phase` (with the callee's tag, when known): noted when
    /// that is further than it was.
    pub(crate) fn progressed(&mut self, key: &CallKey, phase: Phase, callee_tag: Option<&str>) {
        let (Some(progress), Some(call)) = (self.progress.as_mut(), self.calls.get_mut(key)) else {
            return;
        };
        if phase <= call.phase {
            return;
        }
        call.phase = phase;
        progress.push(of(call, phase, callee_tag));
    }

    /// A call that is over and gone: its last progress.
    pub(crate) fn gone(&mut self, call: &Call) {
        if let Some(progress) = self.progress.as_mut() {
            let tag = call
                .dialogs
                .iter()
                .find(|d| d.answered_ms.is_some())
                .map(|d| d.to_tag.as_str());
            progress.push(of(call, Phase::Terminated, tag));
        }
    }
}

pub(crate) fn of(call: &Call, phase: Phase, callee_tag: Option<&str>) -> Progress {
    Progress {
        call_id: call.invite.key.call_id.clone(),
        caller_tag: call.invite.key.from_tag.clone(),
        callee_tag: callee_tag.map(str::to_owned),
        caller: call.invite.caller.clone(),
        dialled: call.invite.dialled.clone(),
        target: call.invite.target.clone(),
        phase,
    }
}
