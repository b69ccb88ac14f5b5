//! The followed calls (`dlg_manage()`) as the IO layer and an operator see them: the calls
//! in progress, the records and stored changes of each second, ending a call from the
//! server (a BYE to each side), and the dialogs a restart brings back.

use std::time::Instant;

use dialog::{Bye, Saved};
use sip_message::Message;

use crate::originate::{Answer, OnAnswer};
use crate::{Command, Core, Destination};

/// What the followed calls left to do each second.
#[derive(Debug, Default)]
pub struct CallsTick {
    /// The records of the calls that ended.
    pub records: Vec<dialog::Cdr>,
    /// What the store must learn of the dialogs in progress, in order.
    pub changes: Vec<dialog::Change>,
    /// The BYEs that end the calls past their longest duration.
    pub commands: Vec<Command>,
}

impl Core {
    /// The followed calls in progress, oldest first.
    pub fn active_calls(&self) -> Vec<dialog::ActiveCall> {
        self.dialogs.active()
    }

    /// What the followed calls left to do by `now` since the last time: their records,
    /// the changes to store, and the BYEs of the calls that reached their longest duration.
    pub fn tick_calls(&self, now: Instant) -> CallsTick {
        self.calls_tick(now, false)
    }

    /// [`Core::tick_calls`] at exit: every answered call goes to the store, however young,
    /// so that a restart loses none.
    pub fn last_calls(&self, now: Instant) -> CallsTick {
        self.calls_tick(now, true)
    }

    fn calls_tick(&self, now: Instant, last: bool) -> CallsTick {
        let t = self.dialogs.tick(self.unix_ms(now), last);
        CallsTick {
            records: t.records,
            changes: t.changes,
            commands: self.send_byes(now, t.byes),
        }
    }

    /// Ends the answered dialogs of the call `call_id` from the server (an operator's
    /// `calls end`): a BYE to each side. `None` when no followed call of that Call-ID is
    /// talking.
    pub fn end_call(&self, now: Instant, call_id: &str) -> Option<Vec<Command>> {
        let byes = self.dialogs.end_call(self.unix_ms(now), call_id);
        (!byes.is_empty()).then(|| self.send_byes(now, byes))
    }

    /// Follows again the dialogs the store kept from before a restart: their BYEs, the
    /// server's own included, make their records. How many were taken (the table may be
    /// full).
    pub fn restore_calls(&self, saved: Vec<Saved>) -> usize {
        self.dialogs.restore(saved)
    }

    fn send_byes(&self, now: Instant, byes: Vec<Bye>) -> Vec<Command> {
        let mut out = Vec::new();
        for bye in byes {
            let Some(request) = bye_request(&bye) else {
                tracing::warn!(call_id = %bye.call_id, "a BYE of ours could not be written");
                continue;
            };
            let dest = Destination::from_text(&bye.leg.hop);
            out.extend(self.send_request(now, request, dest, on_answer(bye)));
        }
        out
    }
}

/// The BYE of ours `bye` describes.
fn bye_request(bye: &Bye) -> Option<Message> {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut text = format!("BYE {} SIP/2.0\r\n", clean(&bye.leg.contact));
    if !bye.leg.route.is_empty() {
        text.push_str(&format!("Route: {}\r\n", clean(&bye.leg.route)));
    }
    text.push_str(&format!(
        "Max-Forwards: 70\r\nFrom: <{}>;tag={}\r\nTo: <{}>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: {} BYE\r\nContent-Length: 0\r\n\r\n",
        clean(&bye.from.0),
        clean(&bye.from.1),
        clean(&bye.to.0),
        clean(&bye.to.1),
        clean(&bye.call_id),
        bye.cseq
    ));
    Message::parse(text.into_bytes()).ok()
}

/// Logs how a BYE of ours ended: a party that does not answer or knows no such dialog is
/// worth a line (the call is recorded as ended all the same).
fn on_answer(bye: Bye) -> OnAnswer {
    Box::new(move |_: &Core, _, answer: Answer, _: &mut Vec<Command>| {
        let outcome = match answer {
            Answer::Response(r) if r.status().is_some_and(|s| s < 300) => return,
            Answer::Response(r) => format!("answered {}", r.status().unwrap_or(0)),
            Answer::Timeout => "no answer".into(),
            Answer::Unreachable => "unreachable".into(),
        };
        tracing::info!(
            call_id = %bye.call_id,
            to = %bye.leg.contact,
            outcome,
            "the BYE that ended a call"
        );
    })
}
