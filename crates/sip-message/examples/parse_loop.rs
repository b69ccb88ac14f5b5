//! Parses the benchmark INVITE and REGISTER N times (default 10000): a fixed workload for
//! `valgrind --tool=callgrind`, which counts instructions repeatably on a noisy machine.

use sip_message::header::Contact;
use sip_message::Message;

#[path = "../benches/support/messages.rs"]
mod messages;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut total = 0usize;
    for _ in 0..n {
        for msg in [messages::INVITE, messages::REGISTER] {
            let m = Message::parse(bytes::Bytes::from_static(msg)).expect("valid");
            let via = m.top_via().expect("Via");
            let (from, to) = (m.from().expect("From"), m.to().expect("To"));
            let (cseq, call_id) = (m.cseq().expect("CSeq"), m.call_id().expect("Call-ID"));
            total += via.branch().map_or(0, str::len)
                + from.tag().map_or(0, str::len)
                + to.uri.as_str().len();
            total += cseq.seq as usize + call_id.len();
            total += m
                .contacts()
                .filter(|c| matches!(c, Ok(Contact::Address(_))))
                .count();
        }
    }
    println!("{total}");
}
