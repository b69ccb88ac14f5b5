//! Transport protocols as named in Via headers and URI `transport` parameters.

use std::fmt;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Protocol {
    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        }
    }

    /// Parses a Via transport token or URI `transport` parameter, case-insensitively.
    pub fn from_token(t: &str) -> Option<Protocol> {
        if t.eq_ignore_ascii_case("udp") {
            Some(Protocol::Udp)
        } else if t.eq_ignore_ascii_case("tcp") {
            Some(Protocol::Tcp)
        } else {
            None
        }
    }

    /// True for stream transports.
    pub fn is_reliable(self) -> bool {
        self == Protocol::Tcp
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        })
    }
}
