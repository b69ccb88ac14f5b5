//! Where the relay sends a stream's media: what its SDP names, unless that is somewhere a
//! stranger could not send packets by himself, or the relay itself.

use std::net::{IpAddr, SocketAddr};

use crate::RelayConfig;

/// The relay's own addresses, against which SDP addresses are checked.
#[derive(Debug, Clone)]
pub(crate) struct Destinations {
    own: Vec<IpAddr>,
    /// The relay is bound to, or announces, loopback (a test, a host of its own): loopback
    /// media addresses are fine, and phones share its address (their ports may be in the
    /// relay's range: Linux's ephemeral ones are).
    loopback: bool,
}

impl Destinations {
    pub(crate) fn of_relay(cfg: &RelayConfig) -> Destinations {
        let own = [Some(cfg.announce), cfg.announce6, Some(cfg.bind)]
            .into_iter()
            .flatten()
            .filter(|a| !a.is_unspecified())
            .map(|a| a.to_canonical())
            .collect();
        Destinations {
            own,
            loopback: cfg.bind.is_loopback() || cfg.announce.is_loopback(),
        }
    }

    /// Where a stream whose SDP names `media`, and whose signalling came from `source`, is
    /// relayed to; `None`: it is not relayed.
    /// - Nowhere a stranger could not send it anyway: not to a wildcard, multicast or
    ///   broadcast address, nor to this host's loopback (unless the relay is on loopback).
    /// - Not to the relay itself: an SDP that names it (a call that passes through twice)
    ///   is not relayed again, so its media goes through once and no session feeds
    ///   another; nor to the host's other services on its address.
    /// - A private address other than the signalling's is that of a phone behind NAT: its
    ///   media comes from its NAT, the signalling's address, and goes there (a stranger's
    ///   SDP does not lead the relay into its networks).
    pub(crate) fn of(&self, media: SocketAddr, source: Option<IpAddr>) -> Option<SocketAddr> {
        let ip = media.ip().to_canonical();
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        let ours = !self.loopback && self.own.contains(&ip);
        if ip.is_unspecified()
            || ip.is_multicast()
            || broadcast
            || ours
            || (ip.is_loopback() && !self.loopback)
        {
            return None;
        }
        match source.map(|s| s.to_canonical()) {
            Some(s) if nat::is_private(ip) && s != ip => Some(SocketAddr::new(s, media.port())),
            _ => Some(media),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> SocketAddr {
        a.parse().expect("addr")
    }

    fn ip(a: &str) -> Option<IpAddr> {
        Some(a.parse().expect("ip"))
    }

    fn public() -> Destinations {
        Destinations {
            own: vec![
                "198.51.100.1".parse().expect("ip"),
                "2001:db8::1".parse().expect("ip"),
            ],
            loopback: false,
        }
    }

    #[test]
    fn media_goes_where_the_sdp_says_unless_that_is_the_relay_or_nowhere() {
        let d = public();
        let phone = ip("203.0.113.5");
        assert_eq!(
            d.of(addr("203.0.113.5:4000"), phone),
            Some(addr("203.0.113.5:4000"))
        );
        assert_eq!(
            d.of(addr("192.0.2.9:4000"), phone),
            Some(addr("192.0.2.9:4000"))
        );
        for nowhere in [
            "0.0.0.0:4000",
            "224.0.0.1:4000",
            "255.255.255.255:4000",
            "127.0.0.1:4000",
            "[::1]:4000",
            // The relay's own ports (another session's), and its host's other services.
            "198.51.100.1:30002",
            "198.51.100.1:5060",
            "[2001:db8::1]:30002",
            "[::ffff:198.51.100.1]:30002",
        ] {
            assert_eq!(d.of(addr(nowhere), phone), None, "{nowhere}");
        }
    }

    #[test]
    fn a_private_address_not_the_signallings_is_reached_at_the_signallings() {
        let d = public();
        // A phone behind NAT: its NAT's address, the SDP's port.
        assert_eq!(
            d.of(addr("192.168.1.20:7078"), ip("203.0.113.5")),
            Some(addr("203.0.113.5:7078"))
        );
        assert_eq!(
            d.of(addr("[fd00::5]:7078"), ip("2001:db8:5::9")),
            Some(addr("[2001:db8:5::9]:7078"))
        );
        assert_eq!(
            d.of(addr("100.64.3.3:7078"), ip("203.0.113.5")),
            Some(addr("203.0.113.5:7078")),
            "CGNAT"
        );
        // A phone on the relay's own network, and one whose signalling is not known.
        assert_eq!(
            d.of(addr("10.0.0.5:7078"), ip("10.0.0.5")),
            Some(addr("10.0.0.5:7078"))
        );
        assert_eq!(
            d.of(addr("10.0.0.5:7078"), None),
            Some(addr("10.0.0.5:7078"))
        );
    }

    #[test]
    fn on_loopback_phones_share_the_relays_address() {
        let d = Destinations {
            own: vec!["127.0.0.1".parse().expect("ip")],
            loopback: true,
        };
        let me = ip("127.0.0.1");
        assert_eq!(
            d.of(addr("127.0.0.1:5000"), me),
            Some(addr("127.0.0.1:5000"))
        );
        assert_eq!(
            d.of(addr("127.0.0.1:33000"), me),
            Some(addr("127.0.0.1:33000"))
        );
        assert_eq!(d.of(addr("224.0.0.1:5000"), me), None);
    }
}
