//! The presence server, sans-IO: subscriptions (RFC 6665) to a user's presence (RFC 3856,
//! PIDF RFC 3863), to who watches it (RFC 3857/3858, with the user's rules to allow or
//! block watchers), to its calls (RFC 4235, for busy-lamp fields) and to its voicemail
//! summary (RFC 3842); publications (RFC 3903) from phones and voicemail systems. The
//! proxy tells a [`Notifier`] what it receives and what it knows (registrations, calls),
//! with the time, and sends the [`Notify`]s it gets back, telling the answers; the store
//! learns each [`Change`].

mod bodies;
mod notifier;
mod package;
mod pidf;
mod presentity;
mod publication;
mod rules;
mod saved;
mod subscription;
mod xml;

#[cfg(test)]
mod tests;

pub use bodies::{CallView, Phase};
pub use notifier::{Config, Notifier};
pub use package::Package;
pub use publication::{PublishRequest, Published};
pub use rules::{key_of, Rule};
pub use saved::{Change, StoredPublication};
pub use subscription::{Notify, Peer, Refused, Status, SubKey, SubscribeRequest, Subscription};
