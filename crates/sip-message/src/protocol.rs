//! Transport protocols as named in Via headers and URI `transport` parameters.

use std::fmt;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP (RFC 3261 §26; `sips:` URIs).
    Tls,
}

impl Protocol {
    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
        }
    }

    /// Parses a Via transport token or URI `transport` parameter, case-insensitively.
    pub fn from_token(t: &str) -> Option<Protocol> {
        [Protocol::Udp, Protocol::Tcp, Protocol::Tls]
            .into_iter()
            .find(|p| t.eq_ignore_ascii_case(p.via_token()))
    }

    /// True for stream transports.
    pub fn is_reliable(self) -> bool {
        self != Protocol::Udp
    }

    /// True for transports that encrypt.
    pub fn is_secure(self) -> bool {
        self == Protocol::Tls
    }

    /// The port a URI without one means (RFC 3261 §19.1.2): 5061 over TLS, else 5060.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Tls => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        })
    }
}
