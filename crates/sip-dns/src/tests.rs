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
    assert_eq!(t.fallback(&Plan::Naptr), (Protocol::Udp, 5060));
    assert_eq!(s.fallback(&Plan::Naptr), (Protocol::Tls, 5061));
    let tcp = target(None, Some(Protocol::Tcp), false);
    assert_eq!(tcp.fallback(&tcp.plan()), (Protocol::Tcp, 5060));
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

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
    Srv {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

#[test]
fn srv_by_priority_then_weight() {
    let records = [
        srv(20, 0, 5060, "backup.example.com."),
        srv(10, 60, 5060, "a.example.com."),
        srv(10, 40, 5062, "b.example.com."),
    ];
    // The lowest draw takes the first of the running sums (a: 60), the highest the last.
    assert_eq!(
        srv_order(&records, |_| 0),
        [
            ("a.example.com".to_owned(), 5060),
            ("b.example.com".to_owned(), 5062),
            ("backup.example.com".to_owned(), 5060)
        ]
    );
    assert_eq!(
        srv_order(&records, |n| n)[0],
        ("b.example.com".into(), 5062)
    );
    assert!(
        srv_order(&[srv(0, 0, 0, ".")], |n| n).is_empty(),
        "no service"
    );
}

proptest! {
    /// Every record comes out once, in priority order, whatever the draws.
    #[test]
    fn srv_order_is_a_priority_ordered_permutation(
        records in proptest::collection::vec((0u16..4, 0u16..100, 1u16..9), 0..12),
        draws in proptest::collection::vec(any::<u32>(), 64),
    ) {
        let records: Vec<Srv> = records
            .iter()
            .enumerate()
            .map(|(i, &(p, w, port))| srv(p, w, port, &format!("h{i}.example.com")))
            .collect();
        let mut draws = draws.into_iter().cycle();
        let ordered = srv_order(&records, |n| draws.next().unwrap_or(0) % (n + 1));
        prop_assert_eq!(ordered.len(), records.len());
        let priority = |name: &str| records.iter().find(|r| r.target == name).map(|r| r.priority);
        let priorities: Vec<_> = ordered.iter().map(|(n, _)| priority(n)).collect();
        prop_assert!(priorities.windows(2).all(|w| w[0] <= w[1]));
        let mut names: Vec<_> = ordered.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        prop_assert_eq!(names.len(), records.len());
    }

    /// With two records of one priority, each comes first about as often as its weight
    /// says (fair draws: every number from 0 to the total once).
    #[test]
    fn srv_weights_share_the_first_place(w1 in 1u16..50, w2 in 1u16..50) {
        let records = [srv(1, w1, 1, "one"), srv(1, w2, 2, "two")];
        let total = u32::from(w1) + u32::from(w2);
        let firsts = (0..=total)
            .filter(|&d| srv_order(&records, |_| d)[0].0 == "one")
            .count() as u32;
        // Draws 0..=w1 pick the first (0 and w1 both end in its sum).
        prop_assert_eq!(firsts, u32::from(w1) + 1);
    }
}
