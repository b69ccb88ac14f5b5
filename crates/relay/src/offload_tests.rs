//! Flows handed to the kernel, driven in memory.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::session::RELEARN;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn id() -> SessionId {
    SessionId {
        call_id: "c".into(),
        from_tag: "a".into(),
    }
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0; 168]);
    p
}

const A: &str = "203.0.113.7:4000";
const B: &str = "198.51.100.2:5000";

/// A relay that offloads, with one answered call between `a` and `b` (their SDPs name
/// where they send from).
fn call(now: Instant, a: &str, b: &str) -> (Relay, StreamPorts) {
    let mut r = Relay::new(PortPool::new(30000..=30019), Duration::from_secs(60)).with_offload();
    let (a, b) = (addr(a), addr(b));
    r.offer(now, &id(), &[Some(a)], Some(a.ip()))
        .expect("ports");
    let p = r
        .answer(now, &id(), &[Some(b)], Some(b.ip()), "b", false)
        .expect("session");
    (r, p[0].expect("relayed"))
}

fn drain(r: &mut Relay) -> Vec<Offload> {
    std::iter::from_fn(|| r.poll_offload()).collect()
}

/// The answerer `b` sends, then the offerer `a`, then `b` again (both sides latched, both
/// flows offered to the kernel); gives the changes.
fn both_ways(r: &mut Relay, now: Instant, p: StreamPorts, a: &str, b: &str) -> Vec<Offload> {
    r.on_packet(now, p.for_answerer, addr(b), &rtp(1))
        .expect("relayed");
    r.on_packet(now, p.for_offerer, addr(a), &rtp(1))
        .expect("relayed");
    r.on_packet(now, p.for_answerer, addr(b), &rtp(2))
        .expect("relayed");
    drain(r)
}

#[test]
fn a_flow_goes_to_the_kernel_once_both_sides_latched() {
    let now = Instant::now();
    let (mut r, p) = call(now, A, B);
    r.on_packet(now, p.for_offerer, addr(A), &rtp(1))
        .expect("relayed");
    assert_eq!(drain(&mut r), [], "the answerer is not latched yet");
    r.on_packet(now, p.for_answerer, addr(B), &rtp(1))
        .expect("relayed");
    assert_eq!(
        drain(&mut r),
        [Offload::Install(Flow {
            port: p.for_answerer,
            src: addr(B),
            from: p.for_offerer,
            to: addr(A),
        })]
    );
    r.on_packet(now, p.for_offerer, addr(A), &rtp(2))
        .expect("relayed");
    r.on_packet(now, p.for_offerer, addr(A), &rtp(3))
        .expect("relayed");
    assert_eq!(
        drain(&mut r),
        [Offload::Install(Flow {
            port: p.for_offerer,
            src: addr(A),
            from: p.for_answerer,
            to: addr(B),
        })],
        "once"
    );
    // RTCP on the next ports, on its own.
    let (a1, b1) = (addr("203.0.113.7:4001"), addr("198.51.100.2:5001"));
    r.on_packet(now, p.for_offerer + 1, a1, &rtp(1))
        .expect("relayed");
    r.on_packet(now, p.for_answerer + 1, b1, &rtp(1))
        .expect("relayed");
    assert_eq!(
        drain(&mut r),
        [Offload::Install(Flow {
            port: p.for_answerer + 1,
            src: b1,
            from: p.for_offerer + 1,
            to: a1,
        })]
    );
    // A stranger's packet changes nothing.
    let stranger = addr("192.0.2.66:9999");
    assert_eq!(
        r.on_packet(now, p.for_offerer, stranger, &rtp(9)),
        Err(Dropped::WrongSource)
    );
    assert_eq!(drain(&mut r), []);
}

#[test]
fn what_the_kernel_forwarded_counts_and_keeps_the_side_heard() {
    let t0 = Instant::now();
    let (mut r, p) = call(t0, A, B);
    assert_eq!(both_ways(&mut r, t0, p, A, B).len(), 2);
    // The kernel forwarded the offerer's packets for a minute and a half.
    let late = t0 + Duration::from_secs(90);
    let f = Forwarded {
        packets: 4500,
        bytes: 4500 * 160,
        rtcp_packets: 18,
        rtcp_bytes: 18 * 52,
        last: late,
    };
    r.forwarded(p.for_offerer, addr(A), f);
    let (offerer, _) = r.stats(&id()).expect("stats")[0].expect("stream");
    assert_eq!((offerer.packets, offerer.last), (4501, Some(late)));
    assert_eq!((offerer.rtcp_packets, offerer.rtcp_bytes), (18, 18 * 52));
    assert_eq!(
        (r.totals().packets, r.totals().kernel_packets),
        (4503, 4500)
    );
    assert!(r.expire(late + Duration::from_secs(59)).is_empty(), "heard");
    // Another address its signalling names cannot take the stream while the kernel hears
    // it (its userspace packets stopped 90 s ago).
    let moved = addr("203.0.113.7:4444");
    assert_eq!(
        r.on_packet(late + RELEARN / 2, p.for_offerer, moved, &rtp(5)),
        Err(Dropped::WrongSource)
    );
    assert_eq!(drain(&mut r), []);
    // Silent for RELEARN: its NAT moved it. Both flows go, and come back once relayed.
    let later = late + RELEARN;
    r.on_packet(later, p.for_offerer, moved, &rtp(6))
        .expect("latched anew");
    assert_eq!(
        drain(&mut r),
        [
            Offload::Remove {
                port: p.for_offerer,
                src: addr(A)
            },
            Offload::Remove {
                port: p.for_answerer,
                src: addr(B)
            },
            Offload::Install(Flow {
                port: p.for_offerer,
                src: moved,
                from: p.for_answerer,
                to: addr(B),
            }),
        ]
    );
    // No gap counted across the kernel's packets.
    let (offerer, _) = r.stats(&id()).expect("stats")[0].expect("stream");
    assert_eq!(offerer.lost, 0);
    // The old flow's last counts, read as it went: counted, but they make no one heard
    // (nor keep the session).
    let stale = Forwarded {
        packets: 10,
        bytes: 1600,
        rtcp_packets: 0,
        rtcp_bytes: 0,
        last: later + RELEARN * 10,
    };
    r.forwarded(p.for_offerer, addr(A), stale);
    let (offerer, _) = r.stats(&id()).expect("stats")[0].expect("stream");
    assert_eq!(offerer.packets, 4501 + 1 + 10);
    assert_eq!(r.totals().kernel_packets, 4510);
    assert_eq!(
        r.expire(later + Duration::from_secs(60)),
        [id()],
        "heard last at `later`"
    );
}

#[test]
fn a_new_sdp_an_ended_call_and_a_declined_stream_remove_their_flows() {
    let now = Instant::now();
    let latched = |r: &mut Relay, p: StreamPorts| assert_eq!(both_ways(r, now, p, A, B).len(), 2);
    let both = |p: StreamPorts| {
        [
            Offload::Remove {
                port: p.for_offerer,
                src: addr(A),
            },
            Offload::Remove {
                port: p.for_answerer,
                src: addr(B),
            },
        ]
    };
    let (mut r, p) = call(now, A, B);
    latched(&mut r, p);
    // A re-INVITE: what each side latched is learnt again.
    r.offer(now, &id(), &[Some(addr(A))], Some(addr(A).ip()))
        .expect("ports");
    assert_eq!(drain(&mut r), both(p));
    latched(&mut r, p);
    assert!(r.delete_dialog("c", "a", "b"));
    assert_eq!(drain(&mut r), both(p));

    let (mut r, p) = call(now, A, B);
    latched(&mut r, p);
    assert!(r.decline(&id(), &[0]));
    assert_eq!(drain(&mut r), both(p));

    let (mut r, p) = call(now, A, B);
    latched(&mut r, p);
    assert_eq!(r.expire(now + Duration::from_secs(61)), [id()]);
    assert_eq!(drain(&mut r), both(p));
}

#[test]
fn bridged_families_link_local_fax_and_a_relay_that_does_not_offload_stay_in_userspace() {
    let now = Instant::now();
    let both = |r: &mut Relay, p: StreamPorts, a: &str, b: &str| both_ways(r, now, p, a, b);
    // IPv6 to IPv4 (the relay bridges them), and link-local IPv6: the relay's.
    let v6 = "[2001:db8::7]:4000";
    let (mut r, p) = call(now, v6, B);
    assert_eq!(both(&mut r, p, v6, B), []);
    let (link, link2) = ("[fe80::7]:4000", "[fe80::8]:5000");
    let (mut r, p) = call(now, link, link2);
    assert_eq!(both(&mut r, p, link, link2), []);
    // IPv6 both sides: the kernel's.
    let v6b = "[2001:db8::9]:5000";
    let (mut r, p) = call(now, v6, v6b);
    assert_eq!(both(&mut r, p, v6, v6b).len(), 2);
    // IPv4 behind a dual-stack socket, mapped: taken.
    let mapped = "[::ffff:203.0.113.7]:4000";
    let (mut r, p) = call(now, mapped, B);
    assert_eq!(both(&mut r, p, mapped, B).len(), 2);

    let (mut r, p) = call(now, A, B);
    r.set_raw(&id(), &[0]);
    assert_eq!(both(&mut r, p, A, B), []);

    let mut r = Relay::new(PortPool::new(30000..=30019), Duration::from_secs(60));
    r.offer(now, &id(), &[Some(addr(A))], Some(addr(A).ip()))
        .expect("ports");
    let p = r
        .answer(now, &id(), &[Some(addr(B))], Some(addr(B).ip()), "b", false)
        .expect("session")[0]
        .expect("relayed");
    assert_eq!(both(&mut r, p, A, B), []);
}
