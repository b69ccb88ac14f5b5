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
    /// WebSocket (RFC 7118).
    Ws,
    /// WebSocket over TLS (RFC 7118).
    Wss,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 5] = [
        Protocol::Udp,
        Protocol::Tcp,
        Protocol::Tls,
        Protocol::Ws,
        Protocol::Wss,
    ];

    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
            Protocol::Ws => "WS",
            Protocol::Wss => "WSS",
        }
    }

    /// The name in lower case, as a URI's `transport` parameter writes it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Ws => "ws",
            Protocol::Wss => "wss",
        }
    }

    /// Parses a Via transport token or URI `transport` parameter, case-insensitively.
    pub fn from_token(t: &str) -> Option<Protocol> {
        // By length, then bytes: every Via and binding source is read with it.
        match *t.as_bytes() {
            [a, b] if [a, b].eq_ignore_ascii_case(b"WS") => Some(Protocol::Ws),
            [a, b, c] => match [a, b, c].map(|x| x.to_ascii_uppercase()) {
                [b'U', b'D', b'P'] => Some(Protocol::Udp),
                [b'T', b'C', b'P'] => Some(Protocol::Tcp),
                [b'T', b'L', b'S'] => Some(Protocol::Tls),
                [b'W', b'S', b'S'] => Some(Protocol::Wss),
                _ => None,
            },
            _ => None,
        }
    }

    /// True for stream transports.
    pub fn is_reliable(self) -> bool {
        self != Protocol::Udp
    }

    /// True for transports that encrypt.
    pub fn is_secure(self) -> bool {
        matches!(self, Protocol::Tls | Protocol::Wss)
    }

    /// True for WebSocket: its peers are reached only over the connection they opened
    /// (RFC 7118 §5: a browser cannot accept one).
    pub fn is_websocket(self) -> bool {
        matches!(self, Protocol::Ws | Protocol::Wss)
    }

    /// The port a URI without one means: 5061 over TLS, else 5060 (RFC 3261 §19.1.2);
    /// HTTP's 80 and 443 for WebSocket (RFC 7118 §5.2).
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Tls => 5061,
            Protocol::Ws => 80,
            Protocol::Wss => 443,
            _ => 5060,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_in_any_case() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_token(p.via_token()), Some(p));
            assert_eq!(Protocol::from_token(p.name()), Some(p));
        }
        assert_eq!(Protocol::from_token("wSs"), Some(Protocol::Wss));
        for junk in ["", "W", "SCTP", "UDPX", "ud", "wsx"] {
            assert_eq!(Protocol::from_token(junk), None, "{junk}");
        }
    }
}
