//! What the store keeps of the dialogs in progress, so that a restart (or a crash) does not
//! lose their records: each answered dialog, saved when answered or changed and removed
//! when it ends, and loaded back at start.

use crate::call::{Call, CallKey, Dialog, DialogState, Invite, Leg};
use crate::calls::Calls;

/// An answered dialog, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Its call.
    pub key: CallKey,
    /// Its To tag.
    pub to_tag: String,
    /// The caller (From URI).
    pub caller: String,
    /// The callee as dialled (To URI).
    pub dialled: String,
    /// When the INVITE came (Unix milliseconds).
    pub started_ms: u64,
    /// When it was answered.
    pub answered_ms: u64,
    /// How the caller is reached (its CSeq: its highest in this dialog).
    pub caller_leg: Leg,
    /// How the callee is reached (its Contact: the callee as reached).
    pub callee_leg: Leg,
    /// Its session interval (RFC 4028), in milliseconds.
    pub session_ms: Option<u64>,
    /// When its session was last refreshed.
    pub refreshed_ms: u64,
    /// The profiles its call counts under.
    pub profiles: Vec<String>,
}

/// A change the store must learn, in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A dialog answered (and lasted long enough): stored.
    Added(Box<Saved>),
    /// A stored dialog changed (its CSeq moved, its session was refreshed): stored again,
    /// replacing what was.
    Saved(Box<Saved>),
    /// A dialog ended (its record made): removed.
    Ended {
        /// Its call.
        key: CallKey,
        /// Its To tag.
        to_tag: String,
    },
}

/// The dialog `to_tag` of `call` as stored, if answered.
pub(crate) fn saved(call: &Call, to_tag: &str) -> Option<Box<Saved>> {
    let d = call.dialogs.iter().find(|d| d.to_tag == to_tag)?;
    let invite = &call.invite;
    Some(Box::new(Saved {
        key: invite.key.clone(),
        to_tag: to_tag.to_owned(),
        caller: invite.caller.clone(),
        dialled: invite.dialled.clone(),
        started_ms: call.started_ms,
        answered_ms: d.answered_ms?,
        caller_leg: Leg {
            cseq: d.caller_cseq,
            ..invite.caller_leg.clone()
        },
        callee_leg: Leg {
            cseq: d.callee_cseq,
            ..d.callee.clone().unwrap_or_default()
        },
        session_ms: d.session_ms,
        refreshed_ms: d.refreshed_ms,
        profiles: invite.profiles.clone(),
    }))
}

impl Calls {
    /// A dialog the store kept from before a restart, followed again as if never lost
    /// (its BYE records it, the longest duration ends it). False when the table is full.
    pub fn restore(&mut self, s: Saved) -> bool {
        let dialog = Dialog {
            to_tag: s.to_tag,
            state: DialogState::Confirmed,
            superseded: false,
            answered_ms: Some(s.answered_ms),
            caller_cseq: s.caller_leg.cseq,
            callee_cseq: s.callee_leg.cseq,
            callee: Some(s.callee_leg),
            session_ms: s.session_ms,
            refreshed_ms: s.refreshed_ms,
            ending: None,
            stored: true,
            dirty: false,
        };
        if let Some(call) = self.calls.get_mut(&s.key) {
            if call.dialogs.iter().all(|d| d.to_tag != dialog.to_tag) {
                call.dialogs.push(dialog);
            }
            return true;
        }
        if self.is_full() {
            return false;
        }
        let call = Call {
            invite: Invite {
                key: s.key.clone(),
                caller: s.caller,
                target: s.dialled.clone(),
                dialled: s.dialled,
                caller_leg: s.caller_leg,
                profiles: s.profiles,
            },
            started_ms: s.started_ms,
            dialogs: vec![dialog],
            settled: true,
            phase: crate::Phase::Confirmed,
        };
        self.count(&call.invite.profiles, true);
        self.calls.insert(s.key, call);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ending, InDialog, Limits};

    fn key() -> CallKey {
        CallKey {
            call_id: "c1".into(),
            from_tag: "a".into(),
        }
    }

    fn leg(contact: &str, cseq: u32) -> Leg {
        Leg {
            contact: contact.into(),
            route: String::new(),
            hop: format!("udp:{}:5060", &contact[contact.len() - 9..]),
            cseq,
        }
    }

    /// alice's call to bob, ringing since 1 s.
    fn invited() -> Calls {
        let mut c = Calls::new(Limits::default());
        let invite = Invite {
            key: key(),
            caller: "sip:alice@example.com".into(),
            dialled: "sip:bob@example.com".into(),
            target: "sip:bob@example.com".into(),
            caller_leg: leg("sip:alice@192.0.2.1", 1),
            profiles: Vec::new(),
        };
        assert!(c.invite(1_000, invite));
        c
    }

    fn answered() -> Calls {
        let mut c = invited();
        let callee = leg("sip:bob@192.0.2.2", 0);
        let answer = crate::Answer {
            callee,
            session_s: None,
        };
        c.response(3_000, &key(), Some("b"), 200, Some(answer));
        c
    }

    fn sent(
        from_tag: &'static str,
        to_tag: &'static str,
        cseq: u32,
        bye: bool,
    ) -> InDialog<'static> {
        InDialog {
            call_id: "c1",
            from_tag,
            to_tag,
            cseq,
            bye,
            refresh: false,
            session_s: None,
        }
    }

    /// The store learns of the answer, of each CSeq that moves, and of the end, in order.
    #[test]
    fn the_store_follows_a_dialog_from_answer_to_end() {
        let mut c = answered();
        let changes = c.take_changes(u64::MAX);
        let Some(Change::Added(s)) = changes.first() else {
            panic!("{changes:?}")
        };
        assert_eq!((s.answered_ms, s.to_tag.as_str()), (3_000, "b"));
        assert_eq!(s.callee_leg.contact, "sip:bob@192.0.2.2");
        c.request(4_000, sent("a", "b", 2, false));
        c.request(4_001, sent("a", "b", 2, false));
        let changes = c.take_changes(u64::MAX);
        assert!(
            matches!(&changes[..], [Change::Saved(s)] if s.caller_leg.cseq == 2),
            "once per CSeq: {changes:?}"
        );
        c.request(9_000, sent("b", "a", 1, true));
        c.bye_answered(sent("b", "a", 1, true), 200);
        let ended = Change::Ended {
            key: key(),
            to_tag: "b".into(),
        };
        assert_eq!(c.take_changes(u64::MAX), [ended]);
    }

    /// A call answered and ended between two takes never reaches the store.
    #[test]
    fn a_short_call_is_never_stored() {
        let mut c = answered();
        c.request(3_500, sent("a", "b", 2, true));
        c.bye_answered(sent("a", "b", 2, true), 200);
        assert_eq!(c.take_records().len(), 1);
        assert!(c.take_changes(u64::MAX).is_empty());
    }

    /// After a restart, the saved dialog's BYE makes its record with the real times, and the
    /// server's own BYE is past every CSeq the phones sent.
    #[test]
    fn a_restored_dialog_ends_as_if_never_lost() {
        let mut c = answered();
        c.request(4_000, sent("b", "a", 5, false));
        let Some(Change::Added(s)) = c.take_changes(u64::MAX).pop() else {
            panic!("saved")
        };
        let mut restarted = Calls::new(Limits::default());
        assert!(restarted.restore(*s.clone()));
        assert!(restarted.restore(*s), "twice is once");
        assert_eq!(restarted.active().len(), 1);
        let byes = restarted.end_call(63_000, "c1");
        assert_eq!(
            byes.iter().map(|b| b.cseq).collect::<Vec<_>>(),
            [2, 6],
            "{byes:?}"
        );
        let records = restarted.take_records();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.started_ms, r.answered_ms), (1_000, Some(3_000)));
        assert_eq!((r.duration_ms(), r.ending), (60_000, Ending::EndedByServer));
        assert_eq!(r.reached.as_deref(), Some("sip:bob@192.0.2.2"));
        assert!(restarted.is_empty());
        restarted.request(63_100, sent("a", "b", 2, true));
        restarted.bye_answered(sent("a", "b", 2, true), 200);
        assert!(restarted.take_records().is_empty(), "its BYEs come back");
    }

    /// `calls end` ends answered dialogs only: a call still ringing has no BYE to get.
    #[test]
    fn ending_a_call_that_rings_sends_nothing() {
        let mut c = invited();
        c.response(1_100, &key(), Some("b"), 180, None);
        assert!(c.end_call(2_000, "c1").is_empty());
        assert!(c.end_call(2_000, "unknown").is_empty());
        assert_eq!(c.active().len(), 1);
    }
}
