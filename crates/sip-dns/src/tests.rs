//! RFC 3263's and RFC 2782's rules, one test each, and properties of the SRV order.

use proptest::prelude::*;
use sip_message::Protocol;

use crate::*;

const ALL: [Protocol; 3] = [Protocol::Udp, Protocol::Tcp, Protocol::Tls];

fn target(port: Option<u16>, transport: Option<Protocol>, secure: bool) -> Target {
    Target {
        host: "example.com".into(),
        port,
        transport,
        secure,
    }
}

#[test]
fn a_port_skips_srv_and_a_transport_skips_naptr() {
    assert_eq!(
        target(Some(5070), None, false).plan(),
        Plan::Addresses {
            protocol: Protocol::Udp,
            port: 5070
        }
    );
    assert_eq!(
        target(Some(5071), Some(Protocol::Tcp), true).plan(),
        Plan::Addresses {
            protocol: Protocol::Tls,
            port: 5071
        },
        "sips: with transport=tcp is TLS"
    );
    assert_eq!(
        target(None, Some(Protocol::Tcp), false).plan(),
        Plan::Srv(vec![(Protocol::Tcp, "_sip._tcp.example.com".into())])
    );
    assert_eq!(
        target(None, Some(Protocol::Udp), true).plan(),
        Plan::Srv(vec![(Protocol::Tls, "_sips._tcp.example.com".into())])
    );
    assert_eq!(target(None, None, false).plan(), Plan::Naptr);
}

#[test]
fn without_naptr_the_srv_names_of_our_transports_and_then_the_default_port() {
    let t = target(None, None, false);
    assert_eq!(
        t.srv_names(&[Protocol::Udp, Protocol::Tls]),
        [
            (Protocol::Udp, "_sip._udp.example.com".to_owned()),
            (Protocol::Tls, "_sips._tcp.example.com".to_owned())
        ]
    );
    let s = target(None, None, true);
    assert_eq!(
        s.srv_names(&ALL),
        [(Protocol::Tls, "_sips._tcp.example.com".to_owned())]
    );
    assert_eq!(t.fallback(&Plan::Naptr, &[]), (Protocol::Udp, 5060));
    assert_eq!(s.fallback(&Plan::Naptr, &[]), (Protocol::Tls, 5061));
    // NAPTR chose TCP, and no SRV record exists: the host's addresses over TCP (§4.2).
    let chosen = [(Protocol::Tcp, "_sip._tcp.example.com".to_owned())];
    assert_eq!(t.fallback(&Plan::Naptr, &chosen), (Protocol::Tcp, 5060));
    let tcp = target(None, Some(Protocol::Tcp), false);
    assert_eq!(tcp.fallback(&tcp.plan(), &[]), (Protocol::Tcp, 5060));
}

fn naptr(order: u16, preference: u16, flags: &str, service: &str, to: &str) -> Naptr {
    Naptr {
        order,
        preference,
        flags: flags.into(),
        service: service.into(),
        replacement: to.into(),
    }
}

#[test]
fn naptr_records_by_order_then_preference_of_services_we_support() {
    let records = [
        naptr(20, 10, "s", "SIP+D2U", "_sip._udp.example.com."),
        naptr(10, 20, "S", "SIP+D2T", "_sip._tcp.example.com."),
        naptr(10, 10, "S", "SIPS+D2T", "_sips._tcp.example.com."),
        naptr(10, 5, "U", "SIP+D2U", "!^.*$!sip:x@example.com!"),
        naptr(5, 5, "S", "SIP+D2X", "_sip._x.example.com."),
        naptr(30, 5, "S", "SIP+D2W", "_sip._ws.example.com."),
    ];
    assert_eq!(
        services(&records, false, &ALL),
        [
            (Protocol::Tls, "_sips._tcp.example.com".to_owned()),
            (Protocol::Tcp, "_sip._tcp.example.com".to_owned()),
            (Protocol::Udp, "_sip._udp.example.com".to_owned()),
        ],
        "flag U, an unknown service and WebSocket (unsupported) are left out"
    );
    assert_eq!(
        services(&records, true, &ALL),
        [(Protocol::Tls, "_sips._tcp.example.com".to_owned())],
        "sips: TLS only"
    );
    assert_eq!(
        services(&records, false, &[Protocol::Ws]),
        [(Protocol::Ws, "_sip._ws.example.com".to_owned())]
    );
}

fn found(priority: u16, weight: u16, port: u16) -> Found {
    Found {
        protocol: Protocol::Udp,
        rank: 0,
        priority,
        weight,
        addrs: vec![std::net::SocketAddr::from(([192, 0, 2, 1], port))],
    }
}

fn ports(ordered: &[(Protocol, std::net::SocketAddr)]) -> Vec<u16> {
    ordered.iter().map(|(_, a)| a.port()).collect()
}

#[test]
fn by_rank_then_priority_then_weight() {
    let backup = found(20, 0, 5070);
    let a = found(10, 60, 5060);
    let b = found(10, 40, 5062);
    let other_service = Found {
        rank: 1,
        ..found(0, 0, 5080)
    };
    let all = [other_service, backup, a, b];
    // The lowest draw takes the first of the running sums (a: 60), the highest the last.
    assert_eq!(ports(&order(&all, |_| 0)), [5060, 5062, 5070, 5080]);
    assert_eq!(ports(&order(&all, |n| n))[0], 5062);
    // Weight 0 only after the others of its priority.
    let zero = [found(1, 0, 1), found(1, 5, 2)];
    assert_eq!(ports(&order(&zero, |_| 0)), [2, 1]);
}

proptest! {
    /// Every address comes out once, by rank and priority, whatever the draws.
    #[test]
    fn order_is_a_ranked_permutation(
        records in proptest::collection::vec((0u16..2, 0u16..4, 0u16..100), 0..12),
        draws in proptest::collection::vec(any::<u32>(), 64),
    ) {
        let all: Vec<Found> = records
            .iter()
            .enumerate()
            .map(|(i, &(rank, p, w))| Found { rank, ..found(p, w, i as u16) })
            .collect();
        let mut draws = draws.into_iter().cycle();
        let ordered = order(&all, |n| draws.next().unwrap_or(0) % (n + 1));
        prop_assert_eq!(ordered.len(), all.len());
        let key = |port: u16| all.iter().find(|f| f.addrs[0].port() == port).map(|f| (f.rank, f.priority));
        let keys: Vec<_> = ordered.iter().map(|(_, a)| key(a.port())).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        let mut seen = ports(&ordered);
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), all.len());
    }

    /// With two of one priority, each comes first exactly as often as its weight says over
    /// fair draws (every number below the total once), whichever is listed first.
    #[test]
    fn weights_share_the_first_place(w1 in 0u16..50, w2 in 1u16..50, swap: bool) {
        let mut all = vec![found(1, w1, 1), found(1, w2, 2)];
        if swap {
            all.reverse();
        }
        let total = u32::from(w1) + u32::from(w2);
        let firsts = (0..total)
            .filter(|&d| order(&all, |_| d)[0].1.port() == 1)
            .count() as u32;
        prop_assert_eq!(firsts, u32::from(w1));
    }
}
