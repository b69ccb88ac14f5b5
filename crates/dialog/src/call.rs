//! One call: the INVITE that began it and the dialogs its answers made.

/// A call: the Call-ID and From tag of its INVITE, which every dialog it makes shares (one
/// dialog per To tag: a forked call may make several).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallKey {
    /// The Call-ID.
    pub call_id: String,
    /// The caller's tag (the INVITE's From tag).
    pub from_tag: String,
}

/// What an initial INVITE (no To tag) says of its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Which call.
    pub key: CallKey,
    /// The caller: the From URI.
    pub caller: String,
    /// The callee as dialled: the To URI.
    pub dialled: String,
    /// The Request-URI as it came: the callee's address-of-record (or an alias of it),
    /// which a trunk's To may not name ("" when nobody watches calls).
    pub target: String,
    /// How the server reaches the caller (its CSeq: the INVITE's).
    pub caller_leg: Leg,
    /// The profiles it counts under (a user, a domain: see [`crate::Calls::profile_size`]).
    pub profiles: Vec<String>,
}

/// What a 2xx to an INVITE says of its dialog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// How the callee is reached.
    pub callee: Leg,
    /// Its Session-Expires (RFC 4028), in seconds.
    pub session_s: Option<u32>,
}

/// One side of a dialog as the server reaches it with a request of its own (a BYE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leg {
    /// Its Contact URI: the Request-URI of requests to it.
    pub contact: String,
    /// The route set towards it: Route header values, nearest first ("" for none).
    pub route: String,
    /// Where requests to it go first, as the proxy writes a next hop.
    pub hop: String,
    /// The highest CSeq number it has sent in the dialog (0: none yet).
    pub cseq: u32,
}

/// Where a dialog is (RFC 3261 §12; RFC 4235's states but for `trying`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// A provisional response with a To tag made it.
    Early,
    /// A 2xx answered it.
    Confirmed,
    /// A BYE, a failure, another branch's answer or the server ended it.
    Terminated,
}

/// Most dialogs one call makes (a callee cannot grow the list without end).
const MAX_DIALOGS: usize = 16;
/// Most of them answered (each keeps how its callee is reached).
pub(crate) const MAX_ANSWERED: usize = 4;

/// A dialog of a call.
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub(crate) to_tag: String,
    pub(crate) state: DialogState,
    /// Ended early by another branch's answer: its own 2xx, should it come too, still
    /// confirms it (RFC 3261 §13.2.2.4: each 2xx is a dialog).
    pub(crate) superseded: bool,
    pub(crate) answered_ms: Option<u64>,
    /// The caller's highest CSeq in this dialog.
    pub(crate) caller_cseq: u32,
    /// The callee's highest CSeq in this dialog (0: none yet).
    pub(crate) callee_cseq: u32,
    /// How the callee is reached, from the answer (its Contact: the callee as reached).
    pub(crate) callee: Option<Leg>,
    /// The session interval (RFC 4028) the answer or a refresh set, in milliseconds.
    pub(crate) session_ms: Option<u64>,
    /// When the session was last refreshed: answered, or a re-INVITE or UPDATE.
    pub(crate) refreshed_ms: u64,
    /// A BYE went through, when and whose, and waits for its answer: the dialog ends once
    /// the other side takes it.
    pub(crate) ending: Option<(u64, crate::Ending)>,
    /// The store holds it.
    pub(crate) stored: bool,
    /// Answered or changed since the store last learnt of it.
    pub(crate) dirty: bool,
}

impl Dialog {
    /// The callee as reached: the answer's Contact.
    pub(crate) fn reached(&self) -> Option<String> {
        let contact = &self.callee.as_ref()?.contact;
        (!contact.is_empty()).then(|| contact.clone())
    }
}

/// A call being set up or talking.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) invite: Invite,
    pub(crate) started_ms: u64,
    /// Its dialogs (a handful at most: one per branch that answered something).
    pub(crate) dialogs: Vec<Dialog>,
    /// A 2xx or a final failure went to the caller: the INVITE's transaction is over.
    pub(crate) settled: bool,
    /// How far it has gone, as busy lamps show it.
    pub(crate) phase: crate::Phase,
}

impl Call {
    /// The dialog of `to_tag`, made early when new (but not on a call already over).
    pub(crate) fn dialog(&mut self, to_tag: &str) -> Option<&mut Dialog> {
        if let Some(i) = self.dialogs.iter().position(|d| d.to_tag == to_tag) {
            return Some(&mut self.dialogs[i]);
        }
        if (self.settled && !self.answered()) || self.dialogs.len() >= MAX_DIALOGS {
            return None;
        }
        self.dialogs.push(Dialog {
            to_tag: to_tag.to_owned(),
            state: DialogState::Early,
            superseded: false,
            answered_ms: None,
            caller_cseq: self.invite.caller_leg.cseq,
            callee_cseq: 0,
            callee: None,
            session_ms: None,
            refreshed_ms: 0,
            ending: None,
            stored: false,
            dirty: false,
        });
        self.dialogs.last_mut()
    }

    /// True when one of its dialogs was answered.
    pub(crate) fn answered(&self) -> bool {
        self.dialogs.iter().any(|d| d.answered_ms.is_some())
    }

    /// True when nothing of it goes on: settled, and every dialog ended.
    pub(crate) fn over(&self) -> bool {
        self.settled
            && self
                .dialogs
                .iter()
                .all(|d| d.state == DialogState::Terminated)
    }
}
