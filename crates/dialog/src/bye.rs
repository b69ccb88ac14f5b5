//! The BYEs the server sends to end a dialog itself: one to each side, in the other's name.

use crate::call::{Call, Leg};

/// A BYE of the server's own, for one side of a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bye {
    /// The dialog's Call-ID.
    pub call_id: String,
    /// Its From: the other side's URI and tag.
    pub from: (String, String),
    /// Its To: this side's URI and tag.
    pub to: (String, String),
    /// Its CSeq number: one past the other side's highest.
    pub cseq: u32,
    /// The side it goes to.
    pub leg: Leg,
}

/// The two BYEs that end the dialog `to_tag` of `call` (none when the INVITE or the answer
/// did not tell how to reach its side).
pub(crate) fn byes(call: &Call, to_tag: &str) -> Vec<Bye> {
    let Some(d) = call.dialogs.iter().find(|d| d.to_tag == to_tag) else {
        return Vec::new();
    };
    let Some(callee) = d.callee.as_ref().filter(|l| !l.contact.is_empty()) else {
        return Vec::new();
    };
    let invite = &call.invite;
    if invite.caller_leg.contact.is_empty() {
        return Vec::new();
    }
    let caller_side = (invite.caller.clone(), invite.key.from_tag.clone());
    let callee_side = (invite.dialled.clone(), to_tag.to_owned());
    vec![
        Bye {
            call_id: invite.key.call_id.clone(),
            from: caller_side.clone(),
            to: callee_side.clone(),
            cseq: d.caller_cseq.saturating_add(1),
            leg: callee.clone(),
        },
        Bye {
            call_id: invite.key.call_id.clone(),
            from: callee_side,
            to: caller_side,
            cseq: d.callee_cseq.saturating_add(1),
            leg: invite.caller_leg.clone(),
        },
    ]
}
