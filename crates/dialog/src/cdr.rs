//! Call detail records.

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The caller sent BYE.
    CallerHungUp,
    /// The callee sent BYE.
    CalleeHungUp,
    /// The server ended it (its longest duration, or an operator).
    EndedByServer,
    /// Still talking, as far as the server knows, after the longest time a call is followed:
    /// its record is closed (its BYE went another way, or a party vanished).
    Expired,
    /// Nobody answered: the final status says why (487 when the caller gave up).
    NotAnswered,
}

/// A call in progress, as shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveCall {
    /// The INVITE's Call-ID.
    pub call_id: String,
    /// The caller (the INVITE's From URI).
    pub caller: String,
    /// The callee as dialled (the To URI).
    pub dialled: String,
    /// When the INVITE came (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// When it was answered, if it was.
    pub answered_ms: Option<u64>,
}

/// One call detail record: an answered dialog, or a call nobody answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    /// The INVITE's Call-ID.
    pub call_id: String,
    /// The caller (the INVITE's From URI).
    pub caller: String,
    /// The callee as dialled (the To URI).
    pub dialled: String,
    /// The callee as reached: the Contact of the answer, if answered.
    pub reached: Option<String>,
    /// When the INVITE came (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// When it was answered.
    pub answered_ms: Option<u64>,
    /// When it ended: the BYE, or the final response of an unanswered call.
    pub ended_ms: u64,
    /// The final status the caller got (200 when answered).
    pub status: u16,
    /// How it ended.
    pub ending: Ending,
}

impl Cdr {
    /// Talk time in milliseconds: from the answer to the end (0 when not answered).
    pub fn duration_ms(&self) -> u64 {
        self.answered_ms
            .map_or(0, |a| self.ended_ms.saturating_sub(a))
    }

    /// True for a call nobody answered: a missed call of the callee.
    pub fn missed(&self) -> bool {
        self.answered_ms.is_none()
    }
}
