//! Where a URI leads: to us, or to a next-hop transport address.

use std::net::SocketAddr;

use sip_message::{Host, Protocol, SipUri, Uri};

pub use sip_dns::Target as Lookup;

use crate::config::ProxyConfig;
use crate::names::NameId;

/// A next hop: protocol and socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Address to send to.
    pub addr: SocketAddr,
    /// An open connection to prefer when it still exists (the one a TCP client registered
    /// over); `addr` is the way when it is gone.
    pub connection: Option<SocketAddr>,
    /// The name it was found by, which a TLS connection to it checks (see
    /// [`Core::name_of`](crate::Core::name_of)).
    pub name: Option<NameId>,
}

impl Destination {
    /// A destination without a preferred connection.
    pub fn new(protocol: Protocol, addr: SocketAddr) -> Destination {
        Destination {
            protocol,
            addr,
            connection: None,
            name: None,
        }
    }

    /// The connection from `addr` (a WebSocket client's: the only way to it).
    pub fn flow(protocol: Protocol, addr: SocketAddr) -> Destination {
        Destination {
            protocol,
            addr,
            connection: Some(addr),
            name: None,
        }
    }

    /// As text that [`Destination::from_text`] reads back (`tcp:192.0.2.1:5060`, and
    /// `;via=ADDR` for a preferred connection): how a stored dialog keeps its next hops.
    /// The name a TLS hop was found by is not kept.
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(48);
        text.push_str(self.protocol.name());
        text.push(':');
        crate::relay::push_addr(&mut text, self.addr);
        if let Some(c) = self.connection {
            text.push_str(";via=");
            crate::relay::push_addr(&mut text, c);
        }
        text
    }

    /// Reads [`Destination::to_text`].
    pub fn from_text(text: &str) -> Option<Destination> {
        let (hop, via) = match text.split_once(";via=") {
            Some((hop, via)) => (hop, Some(via.parse().ok()?)),
            None => (text, None),
        };
        let (protocol, addr) = hop.split_once(':')?;
        Some(Destination {
            protocol: Protocol::from_token(protocol)?,
            addr: addr.parse().ok()?,
            connection: via,
            name: None,
        })
    }
}

/// Where a SIP URI leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// An IP literal (the host, or `maddr`).
    Addr(Destination),
    /// A host name to look up (RFC 3263: NAPTR, SRV, then addresses).
    Name(Lookup),
}

/// The next hop a SIP URI points at: over TLS for a `sips:` URI (whose `transport=tcp`
/// means TLS over TCP, RFC 5630 §3.1.2) or `transport=tls`; `None` for unsupported
/// transports, a `sips:` URI over UDP, and WebSocket (no client of it is reached by URI).
pub fn next_hop(uri: &SipUri<'_>) -> Option<NextHop> {
    let transport = match uri.transport() {
        Some(t) => Some(Protocol::from_token(t)?),
        None => None,
    };
    let protocol = match (transport, uri.secure) {
        (Some(Protocol::Udp), true) => return None,
        // A WebSocket client is reached only over its own connection: through its binding
        // or a flow token, never by an address a URI names.
        (Some(Protocol::Ws | Protocol::Wss), _) => return None,
        (_, true) => Protocol::Tls,
        (Some(p), false) => p,
        (None, false) => Protocol::Udp,
    };
    let (ip, host) = match uri.params.get("maddr").flatten() {
        Some(m) => (Host::parse(m).ok()?.ip(), m),
        None => (uri.host.ip(), uri.host_raw),
    };
    Some(match ip {
        Some(ip) => {
            let port = uri.port.unwrap_or(protocol.default_port());
            NextHop::Addr(Destination::new(protocol, SocketAddr::new(ip, port)))
        }
        None => NextHop::Name(Lookup {
            host: host.to_ascii_lowercase(),
            port: uri.port,
            transport,
            secure: uri.secure,
        }),
    })
}

/// True when a URI designates this server (a Route or Request-URI naming us).
pub fn is_us(cfg: &ProxyConfig, uri: &Uri<'_>) -> bool {
    let Some(sip) = uri.as_sip() else {
        return false;
    };
    let port = sip.port_or_default();
    let port_ours = cfg.advertised.iter().any(|(_, a)| a.port() == port);
    match sip.host.ip() {
        Some(ip) => {
            cfg.advertised
                .iter()
                .any(|(_, a)| a.ip() == ip && a.port() == port)
                || (port_ours && cfg.is_local_domain(&ip.to_string()))
        }
        // A domain we serve, named without a port, reaches us (as DNS would resolve it).
        None => (port_ours || sip.port.is_none()) && cfg.is_local_domain(sip.host_raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyConfig;

    fn cfg() -> ProxyConfig {
        ProxyConfig {
            domains: vec!["example.com".into(), "192.0.2.1".into()],
            advertised: vec![(Protocol::Udp, "192.0.2.1:5060".parse().unwrap())],
            ..crate::tests::config()
        }
    }

    #[test]
    fn us_and_not_us() {
        let c = cfg();
        for (u, us) in [
            ("sip:192.0.2.1;lr", true),
            ("sip:192.0.2.1:5060;lr", true),
            ("sip:192.0.2.1:5070;lr", false),
            ("sip:example.com;lr", true),
            ("sip:proxy.example.net;lr", false),
            ("sip:example.com:5070;lr", false),
            ("sip:192.0.2.2;lr", false),
            ("tel:+123", false),
        ] {
            assert_eq!(is_us(&c, &Uri::parse(u).unwrap()), us, "{u}");
        }
    }

    #[test]
    fn next_hops() {
        let d = |u: &str| match next_hop(Uri::parse(u).unwrap().as_sip().unwrap()) {
            Some(NextHop::Addr(d)) => Some(d),
            _ => None,
        };
        assert_eq!(
            d("sip:a@192.0.2.9:5080;transport=tcp"),
            Some(Destination::new(
                Protocol::Tcp,
                "192.0.2.9:5080".parse().unwrap()
            ))
        );
        assert_eq!(d("sip:a@[2001:db8::1]").map(|d| d.addr.port()), Some(5060));
        assert_eq!(
            d("sip:a@host.example.com;maddr=192.0.2.7").map(|d| d.addr.ip().to_string()),
            Some("192.0.2.7".into())
        );
        let uri = Uri::parse("sip:a@Host.example.com:5070;transport=TCP").unwrap();
        assert_eq!(
            next_hop(uri.as_sip().unwrap()),
            Some(NextHop::Name(Lookup {
                host: "host.example.com".into(),
                port: Some(5070),
                transport: Some(Protocol::Tcp),
                secure: false,
            }))
        );
        let uri = Uri::parse("sips:a@example.com").unwrap();
        assert_eq!(
            next_hop(uri.as_sip().unwrap()),
            Some(NextHop::Name(Lookup {
                host: "example.com".into(),
                port: None,
                transport: None,
                secure: true,
            })),
            "no port, no transport: NAPTR first"
        );
        let n = |u: &str| next_hop(Uri::parse(u).unwrap().as_sip().unwrap());
        assert_eq!(n("sip:a@192.0.2.9;transport=sctp"), None);
        // sips: is TLS, to port 5061 unless it says otherwise; never UDP.
        let tls = |a: &str| Some(Destination::new(Protocol::Tls, a.parse().unwrap()));
        assert_eq!(d("sips:a@192.0.2.9"), tls("192.0.2.9:5061"));
        assert_eq!(
            d("sips:a@192.0.2.9:5071;transport=tcp"),
            tls("192.0.2.9:5071")
        );
        assert_eq!(d("sip:a@192.0.2.9;transport=TLS"), tls("192.0.2.9:5061"));
        assert_eq!(n("sips:a@192.0.2.9;transport=udp"), None);
        assert_eq!(n("sip:a@192.0.2.9:8080;transport=ws"), None);
        assert_eq!(n("sip:a@df7jal23ls0d.invalid;transport=wss"), None);
    }

    #[test]
    fn a_hop_reads_back_from_its_text() {
        let flow = Destination::flow(Protocol::Ws, "[2001:db8::1]:40000".parse().unwrap());
        let tcp = Destination {
            connection: Some("192.0.2.7:41000".parse().unwrap()),
            ..Destination::new(Protocol::Tcp, "192.0.2.7:5060".parse().unwrap())
        };
        let udp = Destination::new(Protocol::Udp, "192.0.2.8:5062".parse().unwrap());
        for d in [flow, tcp, udp] {
            assert_eq!(
                Destination::from_text(&d.to_text()),
                Some(d),
                "{}",
                d.to_text()
            );
        }
        assert_eq!(udp.to_text(), "udp:192.0.2.8:5062");
        for a in ["0.0.0.0:0", "255.255.255.255:65535", "10.0.100.9:5060"] {
            let d = Destination::new(Protocol::Udp, a.parse().unwrap());
            assert_eq!(d.to_text(), format!("udp:{a}"));
        }
        for bad in [
            "",
            "udp",
            "sctp:192.0.2.1:5060",
            "udp:host:5060",
            "tcp:192.0.2.1:1;via=x",
        ] {
            assert_eq!(Destination::from_text(bad), None, "{bad}");
        }
    }
}
