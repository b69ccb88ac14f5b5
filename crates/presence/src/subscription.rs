//! A subscription (RFC 6665): the dialog the server notifies its watcher in, what it
//! watches, until when, and how it stands.

use crate::Package;

/// Which subscription: its dialog (Call-ID, the watcher's tag) and what it watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubKey {
    /// The SUBSCRIBE's Call-ID.
    pub call_id: String,
    /// The watcher's tag (the SUBSCRIBE's From tag).
    pub from_tag: String,
    /// The event package.
    pub package: Package,
    /// The Event header's `id` parameter ("" for none).
    pub id: String,
}

/// How the server reaches a watcher with its NOTIFYs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// Its Contact URI: the NOTIFYs' Request-URI.
    pub contact: String,
    /// The route set towards it: Route header values, nearest first ("" for none).
    pub route: String,
    /// Where NOTIFYs go first, as the proxy writes a next hop.
    pub hop: String,
}

/// How a subscription stands (RFC 6665 §4.1.3's Subscription-State).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its watcher gets the state.
    Active,
    /// Its watcher waits for the presentity's word.
    Pending,
    /// Over: its last NOTIFY says why (`timeout`, `rejected`, `deactivated`,
    /// `noresource`); it is forgotten once that NOTIFY is answered.
    Terminated(&'static str),
}

/// A subscription as the server keeps it (and the store, so that it outlives a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Which one.
    pub key: SubKey,
    /// The server's tag in its dialog (the To tag of its 200).
    pub our_tag: String,
    /// Whom it watches: `user@domain`.
    pub presentity: String,
    /// The presentity's URI as the SUBSCRIBE named it (the NOTIFYs' From).
    pub presentity_uri: String,
    /// Who watches: `user@domain` of its From.
    pub watcher: String,
    /// The watcher's From URI (the NOTIFYs' To).
    pub watcher_uri: String,
    /// How its NOTIFYs reach the watcher.
    pub peer: Peer,
    /// When it ends (Unix milliseconds).
    pub expires_ms: u64,
    /// The CSeq of the server's last NOTIFY in it.
    pub cseq: u32,
    /// The watcher's highest CSeq in it: an older SUBSCRIBE refreshes nothing.
    pub remote_cseq: u32,
    /// How it stands.
    pub status: Status,
}

/// A NOTIFY to send: the request of a subscription's dialog, with the state as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// Its subscription: give it back with the answer ([`crate::Notifier::answered`]).
    pub key: SubKey,
    /// The presentity (`user@domain`).
    pub presentity: String,
    /// From: the presentity's URI and the server's tag.
    pub from: (String, String),
    /// To: the watcher's URI and tag.
    pub to: (String, String),
    /// How it reaches the watcher.
    pub peer: Peer,
    /// Its CSeq number.
    pub cseq: u32,
    /// Its Event header's value.
    pub event: String,
    /// Its Subscription-State header's value.
    pub state: String,
    /// Its body and content type, when it carries state.
    pub body: Option<(&'static str, String)>,
}

/// A SUBSCRIBE, as the notifier reads it.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    /// Which subscription.
    pub key: SubKey,
    /// Its To tag: none for a new subscription, the server's tag for a refresh.
    pub to_tag: Option<String>,
    /// The tag the server answers a new one with.
    pub our_tag: String,
    /// Whom it watches: `user@domain`.
    pub presentity: String,
    /// The presentity's URI as named.
    pub presentity_uri: String,
    /// Who watches: `user@domain`.
    pub watcher: String,
    /// The watcher's URI.
    pub watcher_uri: String,
    /// How the watcher is reached (a refresh may change it).
    pub peer: Peer,
    /// Its CSeq number.
    pub cseq: u32,
    /// Its Expires (none: the package's default).
    pub expires_s: Option<u32>,
    /// Whether a device of the presentity is registered (used when nobody watched it yet).
    pub registered: bool,
}

/// A request the notifier refuses: the status and reason to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The status code.
    pub code: u16,
    /// Its reason phrase.
    pub reason: &'static str,
    /// For 423: the shortest Expires taken.
    pub min_expires: Option<u32>,
}

impl Refused {
    pub(crate) const fn new(code: u16, reason: &'static str) -> Refused {
        Refused {
            code,
            reason,
            min_expires: None,
        }
    }
}
