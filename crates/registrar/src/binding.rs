//! A registered contact and the changes the registrar makes.

/// One registered contact of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Canonical address-of-record (see [`aor_of`](crate::aor_of)).
    pub aor: String,
    /// The Contact URI as written, without `<>`, URI parameters kept.
    pub contact: String,
    /// Preference in thousandths (1000 = q 1.0).
    pub q: u16,
    /// When the binding expires, in Unix seconds.
    pub expires_at: u64,
    /// Call-ID of the REGISTER that made or refreshed it.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// Path header values (RFC 3327), top first, as written.
    pub path: Vec<String>,
    /// Where the REGISTER came from: `udp:192.0.2.1:5060`, `tcp:[2001:db8::1]:5061`.
    pub source: String,
    /// The REGISTER's top Via named `source`'s address and port: its client knows where it
    /// sends from, so a Contact on another port of that address is where it listens (a
    /// third-party registration), not a port a NAT made up.
    pub via_at_source: bool,
    /// The registering User-Agent.
    pub user_agent: Option<String>,
    /// The `+sip.instance` Contact parameter, unquoted (RFC 5626).
    pub instance: Option<String>,
    /// The `reg-id` Contact parameter (RFC 5626), kept only with an instance. With the
    /// contact, it keys the binding within its AOR: an instance's flows share a Contact.
    pub reg_id: Option<u32>,
}

/// A binding's `source` (`udp:192.0.2.1:5060`) read back: its transport and address.
pub(crate) fn parse_source(source: &str) -> Option<(sip_message::Protocol, std::net::SocketAddr)> {
    let (protocol, addr) = source.split_once(':')?;
    let protocol = sip_message::Protocol::from_token(protocol)?;
    Some((protocol, addr.parse().ok()?))
}

impl Binding {
    /// Where its REGISTER came from, as `source` says.
    pub fn source_addr(&self) -> Option<(sip_message::Protocol, std::net::SocketAddr)> {
        parse_source(&self.source)
    }

    /// True when its REGISTER came over IPv6 (read without parsing the address: `source`
    /// writes an IPv6 address in brackets).
    pub fn source_is_ipv6(&self) -> bool {
        self.source.as_bytes().contains(&b'[')
    }

    /// True when its REGISTER came over WebSocket (`ws:` or `wss:`).
    pub fn source_is_websocket(&self) -> bool {
        self.source.starts_with("ws")
    }

    /// The change that removes it.
    pub fn removal(&self) -> Change {
        Change::Remove {
            aor: self.aor.clone(),
            contact: self.contact.clone(),
            reg_id: self.reg_id,
        }
    }

    /// True when `change` is about this binding (the same AOR, contact and reg-id).
    pub fn is_changed_by(&self, change: &Change) -> bool {
        change.key() == (self.aor.as_str(), self.contact.as_str(), self.reg_id)
    }

    /// Seconds left before expiry.
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

/// A change to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert or replace the binding of (aor, contact, reg-id).
    Upsert(Binding),
    /// Delete the binding of (aor, contact, reg-id).
    Remove {
        /// The address-of-record.
        aor: String,
        /// The contact URI as stored.
        contact: String,
        /// Its flow's reg-id, if it has one.
        reg_id: Option<u32>,
    },
}

impl Change {
    /// The address-of-record it changes.
    pub fn aor(&self) -> &str {
        match self {
            Change::Upsert(b) => &b.aor,
            Change::Remove { aor, .. } => aor,
        }
    }

    /// The contact whose binding it changes.
    pub fn contact(&self) -> &str {
        self.key().1
    }

    /// The key of the binding it changes: AOR, contact and reg-id.
    pub fn key(&self) -> (&str, &str, Option<u32>) {
        match self {
            Change::Upsert(b) => (&b.aor, &b.contact, b.reg_id),
            Change::Remove {
                aor,
                contact,
                reg_id,
            } => (aor, contact, *reg_id),
        }
    }
}
