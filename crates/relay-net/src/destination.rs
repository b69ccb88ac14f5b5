//! Whether the relay sends a stream's media where its SDP says: not where a stranger could
//! not send packets by himself, nor to the relay's own ports.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use crate::RelayConfig;

/// The relay's own addresses, against which SDP addresses are checked.
#[derive(Debug, Clone)]
pub(crate) struct Destinations {
    own: Vec<IpAddr>,
    ports: RangeInclusive<u16>,
    /// The relay is bound to, or announces, loopback (a test, a host of its own): loopback
    /// media addresses are fine, and phones share its address (their ports may be in the
    /// relay's range: Linux's ephemeral ones are).
    loopback: bool,
}

impl Destinations {
    /// The relay's addresses: those it announces and binds; bound to a wildcard, every
    /// address of the host's interfaces at start (an SDP naming one of them at a relay port
    /// would reach the relay as well).
    pub(crate) fn of_relay(cfg: &RelayConfig) -> Destinations {
        let host = match cfg.bind.is_unspecified() {
            true => if_addrs::get_if_addrs().unwrap_or_default(),
            false => Vec::new(),
        };
        let mut own: Vec<IpAddr> = [Some(cfg.announce), cfg.announce6, Some(cfg.bind)]
            .into_iter()
            .flatten()
            .chain(host.iter().map(if_addrs::Interface::ip))
            .filter(|a| !a.is_unspecified())
            .map(|a| a.to_canonical())
            .collect();
        own.sort_unstable();
        own.dedup();
        Destinations {
            own,
            ports: cfg.ports.clone(),
            loopback: cfg.bind.is_loopback() || cfg.announce.is_loopback(),
        }
    }

    /// Where a stream whose SDP names `media` is relayed to; `None`: it is not relayed.
    /// - Nowhere a stranger could not send it anyway: not to a wildcard, multicast or
    ///   broadcast address, nor to this host's loopback (unless the relay is on loopback).
    /// - Not to the relay's own ports: an SDP that names them (a call that passes through
    ///   twice) is not relayed again, so its media goes through once and no session feeds
    ///   another. (A PBX on the same host, at another port, is relayed to.)
    pub(crate) fn of(&self, media: SocketAddr) -> Option<SocketAddr> {
        let ip = media.ip().to_canonical();
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        let ours = !self.loopback && self.own.contains(&ip) && self.ports.contains(&media.port());
        if ip.is_unspecified()
            || ip.is_multicast()
            || broadcast
            || ours
            || (ip.is_loopback() && !self.loopback)
        {
            return None;
        }
        Some(media)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> SocketAddr {
        a.parse().expect("addr")
    }

    fn public() -> Destinations {
        Destinations {
            own: vec![
                "198.51.100.1".parse().expect("ip"),
                "2001:db8::1".parse().expect("ip"),
            ],
            ports: 30000..=40000,
            loopback: false,
        }
    }

    #[test]
    fn a_relay_on_a_wildcard_counts_every_address_of_the_host_as_its_own() {
        let cfg = RelayConfig {
            bind: "0.0.0.0".parse().expect("ip"),
            announce: "192.0.2.80".parse().expect("ip"),
            announce6: None,
            ports: 30000..=30099,
            timeout: std::time::Duration::from_secs(60),
            threads: 1,
            io_uring: false,
            realtime_priority: 0,
            max_ringing_per_source: 0,
            trusted: Vec::new(),
            kernel: false,
        };
        let d = Destinations::of_relay(&cfg);
        let host: Vec<IpAddr> = if_addrs::get_if_addrs()
            .expect("interfaces")
            .iter()
            .map(if_addrs::Interface::ip)
            .filter(|ip| !ip.is_loopback())
            .collect();
        for ip in host {
            assert_eq!(d.of(SocketAddr::new(ip, 30010)), None, "{ip}");
            assert!(d.of(SocketAddr::new(ip, 5004)).is_some(), "{ip}");
        }
        assert_eq!(d.of(addr("192.0.2.80:30010")), None);
    }

    #[test]
    fn media_goes_where_the_sdp_says_unless_that_is_the_relay_or_nowhere() {
        let d = public();
        for fine in [
            "203.0.113.5:4000",
            "192.168.1.20:7078",
            // A PBX on the relay's host, at a port of its own.
            "198.51.100.1:10000",
        ] {
            assert_eq!(d.of(addr(fine)), Some(addr(fine)), "{fine}");
        }
        for nowhere in [
            "0.0.0.0:4000",
            "224.0.0.1:4000",
            "255.255.255.255:4000",
            "127.0.0.1:4000",
            "[::1]:4000",
            // The relay's own ports (another session's: a call through twice).
            "198.51.100.1:30002",
            "[2001:db8::1]:30002",
            "[::ffff:198.51.100.1]:30002",
        ] {
            assert_eq!(d.of(addr(nowhere)), None, "{nowhere}");
        }
    }

    #[test]
    fn on_loopback_phones_share_the_relays_address() {
        let d = Destinations {
            own: vec!["127.0.0.1".parse().expect("ip")],
            ports: 30000..=40000,
            loopback: true,
        };
        for fine in ["127.0.0.1:5000", "127.0.0.1:33000"] {
            assert_eq!(d.of(addr(fine)), Some(addr(fine)), "{fine}");
        }
        assert_eq!(d.of(addr("224.0.0.1:5000")), None);
    }
}
