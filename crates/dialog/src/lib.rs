//! The calls a proxy record-routes, as their dialogs go (RFC 3261 §12): early, confirmed,
//! ended, across forking; a call detail record for each answered dialog and each call
//! nobody answered (a missed call of the callee); the BYEs that end a call from the server;
//! session timers (RFC 4028); call limits per profile; and what the store keeps so that a
//! restart loses no call. No IO: the proxy tells
//! [`Calls`] what it relays, with the time, and takes the records, the changes to store and
//! the BYEs to send.

mod bye;
mod call;
mod calls;
#[cfg(test)]
mod calls_tests;
mod cdr;
mod profiles;
mod progress;
mod saved;
mod session;

pub use bye::Bye;
pub use call::{Answer, CallKey, DialogState, Invite, Leg};
pub use calls::{Calls, InDialog, Limits};
pub use cdr::{ActiveCall, Cdr, Ending};
pub use progress::{Phase, Progress};
pub use saved::{Change, Saved};
