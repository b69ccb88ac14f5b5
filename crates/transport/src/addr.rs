//! Listen addresses: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`, `tls:0.0.0.0:5061`,
//! `ws:0.0.0.0:8080`, `wss:0.0.0.0:8443`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

pub use sip_message::Protocol;

/// One address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// The protocol.
    pub protocol: Protocol,
    /// The socket address.
    pub addr: SocketAddr,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.protocol, self.addr)
    }
}

/// A listen address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid listen address {0:?}: expected udp:, tcp:, tls:, ws: or wss: then ADDR:PORT (IPv6 in brackets)")]
pub struct ParseListenError(pub String);

impl FromStr for Listen {
    type Err = ParseListenError;
    fn from_str(s: &str) -> Result<Listen, ParseListenError> {
        let err = || ParseListenError(s.to_owned());
        let (proto, addr) = s.split_once(':').ok_or_else(err)?;
        let protocol = Protocol::from_token(proto).ok_or_else(err)?;
        let addr = addr.parse().map_err(|_| err())?;
        Ok(Listen { protocol, addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_listen() {
        let l: Listen = "udp:127.0.0.1:5070".parse().unwrap();
        assert_eq!((l.protocol, l.addr.port()), (Protocol::Udp, 5070));
        let l: Listen = "TCP:[::1]:5060".parse().unwrap();
        assert!(l.addr.is_ipv6());
        assert_eq!(l.to_string(), "tcp:[::1]:5060");
        assert!("sctp:1.2.3.4:5".parse::<Listen>().is_err());
        assert!("udp:1.2.3.4".parse::<Listen>().is_err());
    }
}
