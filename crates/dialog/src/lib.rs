//! The calls a proxy record-routes, as their dialogs go (RFC 3261 §12): early, confirmed,
//! ended, across forking; and a call detail record for each answered dialog and each call
//! nobody answered (a missed call of the callee). No IO: the proxy tells [`Calls`] what it
//! relays, with the time, and takes the records and the calls to end.

mod call;
mod calls;
mod cdr;

pub use call::{CallKey, DialogState, Invite};
pub use calls::{Calls, Limits};
pub use cdr::{ActiveCall, Cdr, Ending};
