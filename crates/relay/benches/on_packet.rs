//! The relay's decision per packet: a stream latched both ways, packets in turn from each
//! side (`cargo bench -p relay`).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use relay::{PortPool, Relay, SessionId};

fn on_packet(c: &mut Criterion) {
    let now = Instant::now();
    let mut r = Relay::new(PortPool::new(30000..=39999), Duration::from_secs(60));
    // 1000 calls, so that the port lookup is not in an empty table.
    let mut ports = Vec::new();
    for i in 0..1000 {
        let id = SessionId {
            call_id: format!("call-{i}"),
            from_tag: "a".into(),
        };
        let a: SocketAddr = format!("10.0.{}.{}:4000", i / 250, i % 250 + 1)
            .parse()
            .unwrap();
        let b: SocketAddr = format!("198.51.{}.{}:5000", i / 250, i % 250 + 1)
            .parse()
            .unwrap();
        let p = r.offer(now, &id, &[Some(a)], None).unwrap()[0].unwrap();
        r.answer(now, &id, &[Some(b)], None, "b", false).unwrap();
        ports.push((p, a, b));
    }
    let packet = [0x80u8; 172];
    let (p, a, b) = ports[500];
    c.bench_function("relay on_packet (G.711, both sides latched)", |bench| {
        let mut seq = 0u16;
        bench.iter(|| {
            seq = seq.wrapping_add(1);
            let mut pkt = packet;
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            black_box(r.on_packet(now, p.for_offerer, a, &pkt)).unwrap();
            black_box(r.on_packet(now, p.for_answerer, b, &pkt)).unwrap();
        })
    });
}

criterion_group!(benches, on_packet);
criterion_main!(benches);
