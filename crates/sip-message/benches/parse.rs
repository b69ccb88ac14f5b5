//! Parsing a typical INVITE with SDP and a REGISTER: index the message and read the headers
//! a proxy or registrar decides on (Via, From, To, CSeq, Call-ID, Contact).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sip_message::header::Contact;
use sip_message::Message;

#[path = "support/messages.rs"]
mod messages;

/// The work a proxy does on each message before deciding: parse and read the key headers.
fn parse_and_read(buf: bytes::Bytes) -> usize {
    let m = Message::parse(buf).expect("valid message");
    let via = m.top_via().expect("Via");
    let from = m.from().expect("From");
    let to = m.to().expect("To");
    let cseq = m.cseq().expect("CSeq");
    let call_id = m.call_id().expect("Call-ID");
    let mut n =
        via.branch().map_or(0, str::len) + from.tag().map_or(0, str::len) + to.uri.as_str().len();
    n += cseq.seq as usize + call_id.len();
    for c in m.contacts() {
        if let Ok(Contact::Address(a)) = c {
            n += a.uri.as_str().len();
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    for (name, msg) in [
        ("invite_sdp", messages::INVITE),
        ("register", messages::REGISTER),
    ] {
        let buf = bytes::Bytes::from_static(msg);
        g.bench_function(name, |b| b.iter(|| parse_and_read(black_box(buf.clone()))));
    }
    let buf = bytes::Bytes::from_static(messages::INVITE);
    g.bench_function("invite_sdp_validate", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(buf.clone())).expect("valid");
            m.validate().expect("valid");
            m.sanity_check().expect("sane");
        })
    });
    g.bench_function("invite_proxy_edit", |b| {
        let m = Message::parse(buf.clone()).expect("valid");
        b.iter(|| {
            let mut e = m.edit();
            e.push_front(
                sip_message::HeaderName::Via,
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKproxy1",
            )
            .set_top_via_param("received", Some("192.0.2.101"))
            .push_front(sip_message::HeaderName::RecordRoute, "<sip:192.0.2.1;lr>");
            black_box(e.finish())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
