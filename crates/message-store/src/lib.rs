//! Store and forward of instant messages (RFC 3428) for users who are offline, sans-IO: a
//! MESSAGE nobody could take is kept (the sender gets 202 Accepted) within limits per user
//! and in all, until it expires; when its recipient registers the messages go to it one at
//! a time, oldest first, each removed once a device took it (a failure leaves it for the
//! next registration). Nothing here answers a message: no notice goes back to the sender,
//! and a message marked as sent automatically (an away notice, RFC 3834's Auto-Submitted)
//! is not kept, so that two absent users' auto-replies cannot feed each other for ever.

mod mailbox;

pub use mailbox::{Change, Delivery, Limits, Mailboxes, NewMessage, Refused, Stored};

#[cfg(test)]
mod tests;
