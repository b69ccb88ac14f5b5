//! The event packages the server is the notifier of.

/// An event package (RFC 6665 §7.2): what a subscription watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Package {
    /// A user's presence (RFC 3856), as PIDF (RFC 3863).
    Presence,
    /// Who watches a user's presence (RFC 3857), as watcher information (RFC 3858).
    Winfo,
    /// A user's calls (RFC 4235), for busy-lamp fields.
    Dialog,
    /// A user's voicemail (RFC 3842), as a voicemail system publishes it.
    MessageSummary,
}

impl Package {
    /// Every package, in a fixed order.
    pub const ALL: [Package; 4] = [
        Package::Presence,
        Package::Winfo,
        Package::Dialog,
        Package::MessageSummary,
    ];

    /// The package an Event header's type names (without parameters); none for one we do
    /// not serve (489 Bad Event).
    pub fn from_event(event_type: &str) -> Option<Package> {
        Package::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(event_type.trim()))
    }

    /// Its name in Event headers.
    pub fn name(self) -> &'static str {
        match self {
            Package::Presence => "presence",
            Package::Winfo => "presence.winfo",
            Package::Dialog => "dialog",
            Package::MessageSummary => "message-summary",
        }
    }

    /// The type of the documents its NOTIFYs carry.
    pub fn content_type(self) -> &'static str {
        match self {
            Package::Presence => "application/pidf+xml",
            Package::Winfo => "application/watcherinfo+xml",
            Package::Dialog => "application/dialog-info+xml",
            Package::MessageSummary => "application/simple-message-summary",
        }
    }

    /// True for the packages a PUBLISH may set (RFC 3903): presence from the phones,
    /// message-summary from a voicemail system. The others the server makes itself.
    pub fn publishable(self) -> bool {
        matches!(self, Package::Presence | Package::MessageSummary)
    }

    /// Its index in [`Package::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
