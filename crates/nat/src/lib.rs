//! NAT detection for SIP, sans-IO (in the spirit of Kamailio's nathelper): a client is
//! behind NAT when the address it names for itself (its Contact, its Via) is private, or is
//! not the address its packets come from. The proxy reaches such a client at the source of
//! its REGISTER instead of its Contact.

mod keepalive;

use std::net::{IpAddr, SocketAddr};

pub use keepalive::Keepalives;

use sip_message::{Host, Uri};

/// True for addresses no packet from the Internet carries: RFC 1918 and RFC 6598 (CGNAT)
/// IPv4, link-local, and IPv6 unique-local (fc00::/7) and link-local (fe80::/10).
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let [a0, a1, ..] = a.octets();
            a.is_private() || a.is_link_local() || (a0 == 100 && (64..128).contains(&a1))
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfe80
        }
    }
}

/// The address a SIP URI names as an IP literal with its port (5060 by default, 5061 for
/// `sips:` and `transport=tls`), or `None` for a host name (reached through DNS, not by its packets' source).
pub fn uri_address(uri: &Uri<'_>) -> Option<SocketAddr> {
    let sip = uri.as_sip()?;
    let ip = match sip.host {
        Host::Ipv4(a) => IpAddr::V4(a),
        Host::Ipv6(a) => IpAddr::V6(a),
        Host::Domain(_) => return None,
    };
    let port = sip.port_or_default();
    Some(SocketAddr::new(ip, port))
}

/// True when a client whose Contact is `contact` and whose packets come from `source` sits
/// behind NAT: the Contact is an address, and not the source — its address, and unless
/// `any_port` its port too. `any_port` is for a source port that tells nothing: over a
/// connection it is the client's ephemeral one, whatever NAT, and a client whose Via named
/// its source listens where its Contact says. A Contact with a host name is taken at its
/// word; one with a `maddr` never is.
pub fn contact_behind_nat(contact: &Uri<'_>, source: SocketAddr, any_port: bool) -> bool {
    // A `maddr` sends requests elsewhere than the host (RFC 3261 §19.1.1): from a client,
    // anywhere it likes. Reached at its source instead.
    let maddr = contact
        .as_sip()
        .is_some_and(|s| s.params.get("maddr").is_some());
    maddr || uri_address(contact).is_some_and(|a| address_behind_nat(a, source, any_port))
}

/// [`contact_behind_nat`] for a Contact already read as an address.
pub fn address_behind_nat(contact: SocketAddr, source: SocketAddr, any_port: bool) -> bool {
    contact.ip().to_canonical() != source.ip().to_canonical()
        || (!any_port && contact.port() != source.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri<'_> {
        Uri::parse(s).expect("uri")
    }

    #[test]
    fn a_contact_with_maddr_is_reached_at_its_source() {
        let src = "198.51.100.7:5060".parse().expect("addr");
        let c = uri("sip:bob@198.51.100.7:5060;maddr=203.0.113.66");
        assert!(contact_behind_nat(&c, src, true));
        assert!(!contact_behind_nat(
            &uri("sip:bob@198.51.100.7:5060"),
            src,
            true
        ));
    }

    #[test]
    fn private_addresses() {
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.10",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(is_private(p.parse().expect("ip")), "{p}");
        }
        for p in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(!is_private(p.parse().expect("ip")), "{p}");
        }
    }

    #[test]
    fn a_contact_that_is_not_the_source_is_behind_nat() {
        let src: SocketAddr = "198.51.100.7:40000".parse().expect("addr");
        assert!(contact_behind_nat(
            &uri("sip:bob@192.168.1.20:5060"),
            src,
            false
        ));
        assert!(
            contact_behind_nat(&uri("sip:bob@198.51.100.7:5060"), src, false),
            "port mapped"
        );
        let over_tcp = |c| contact_behind_nat(&uri(c), src, true);
        assert!(
            !over_tcp("sip:bob@198.51.100.7:5060"),
            "TCP: the address alone"
        );
        assert!(over_tcp("sip:bob@10.0.0.7:5060"));
        assert!(!contact_behind_nat(
            &uri("sip:bob@198.51.100.7:40000"),
            src,
            false
        ));
        assert!(
            !contact_behind_nat(&uri("sip:bob@phone.example.com"), src, false),
            "a name"
        );
        let plain: SocketAddr = "198.51.100.7:5060".parse().expect("addr");
        assert!(
            !contact_behind_nat(&uri("sip:bob@198.51.100.7"), plain, false),
            "default port"
        );
        let v6: SocketAddr = "[2001:db8::7]:5060".parse().expect("addr");
        assert!(!contact_behind_nat(
            &uri("sip:bob@[2001:db8::7]"),
            v6,
            false
        ));
        let mapped: SocketAddr = "[::ffff:198.51.100.7]:5060".parse().expect("addr");
        assert!(!contact_behind_nat(
            &uri("sip:bob@198.51.100.7"),
            mapped,
            false
        ));
    }
}
