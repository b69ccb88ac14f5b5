//! RFC 3263 §4.3 through the core: a request to a name goes to its first address, then to
//! the next when that one answers 503, cannot be reached or does not answer; a late answer
//! of an address given up is not taken for the next one's; an address that failed comes
//! last for the requests after, for a while, but is never left out.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_message::{Message, Method, Protocol};

use crate::tests::{answer, relaying_core, resolve, sent, udp, CALLER};
use crate::{Command, Core, Destination};

const FIRST: &str = "192.0.2.55:5060";
const SECOND: &str = "192.0.2.56:5060";

fn invite(call_id: &str) -> Message {
    crate::tests::msg(&format!(
        "INVITE sip:carol@gw.example.net SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{call_id}\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:carol@gw.example.net>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <sip:a@192.0.2.10>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ))
}

/// The INVITE `call_id` sent on after gw.example.net is found at FIRST and SECOND.
fn forwarded(core: &Core, now: Instant, call_id: &str) -> Vec<(Destination, Message)> {
    let cmds = core.handle_message(now, invite(call_id), udp(CALLER));
    if !cmds.iter().any(|c| matches!(c, Command::Resolve { .. })) {
        return sent(cmds);
    }
    match resolve(cmds) {
        Some((hosts, then)) => {
            // Two SRV targets, the first by priority.
            let found = [FIRST, SECOND]
                .iter()
                .zip(0..)
                .map(|(a, priority)| crate::Found {
                    protocol: Protocol::Udp,
                    rank: 0,
                    priority,
                    weight: 0,
                    addrs: vec![a.parse::<SocketAddr>().expect("addr")],
                })
                .collect();
            core.dns_answer(now, &hosts[0], found, Duration::from_secs(300));
            sent(core.resume(now, then))
        }
        None => Vec::new(),
    }
}

fn invites(out: &[(Destination, Message)]) -> Vec<(Destination, Message)> {
    out.iter()
        .filter(|(_, m)| m.method() == Some(Method::Invite))
        .cloned()
        .collect()
}

fn branch(m: &Message) -> String {
    m.top_via().unwrap().branch().unwrap().to_owned()
}

fn upstream(out: &[(Destination, Message)]) -> Vec<u16> {
    out.iter()
        .filter(|(d, _)| *d == udp(CALLER))
        .filter_map(|(_, m)| m.status())
        .collect()
}

#[test]
fn a_503_moves_on_to_the_next_address_which_answers() {
    let core = relaying_core();
    let now = Instant::now();
    let out = invites(&forwarded(&core, now, "fo-1"));
    assert_eq!(out.len(), 1);
    let (to_first, first) = &out[0];
    assert_eq!(*to_first, udp(FIRST));
    // FIRST is unavailable: acknowledged, and the same INVITE goes to SECOND in a new
    // transaction (another branch); the caller hears nothing of it.
    let unavailable = answer(first, 503);
    let out = sent(core.handle_message(now, unavailable.clone(), udp(FIRST)));
    let acks: Vec<_> = out
        .iter()
        .filter(|(_, m)| m.method() == Some(Method::Ack))
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].0, udp(FIRST));
    let retry = invites(&out);
    assert_eq!(retry.len(), 1, "{out:?}");
    let (to_second, second) = &retry[0];
    assert_eq!(*to_second, udp(SECOND));
    assert_ne!(branch(first), branch(second));
    assert_eq!(second.call_id().unwrap(), "fo-1");
    assert!(upstream(&out).is_empty(), "{out:?}");
    // A late copy of FIRST's 503 is not taken for SECOND's answer.
    let late = sent(core.handle_message(now, unavailable, udp(FIRST)));
    assert!(upstream(&late).is_empty(), "{late:?}");
    let ok = sent(core.handle_message(now, answer(second, 200), udp(SECOND)));
    assert_eq!(upstream(&ok), [200]);
    // The next call tries SECOND first; FIRST is still there after it.
    let out = invites(&forwarded(&core, now, "fo-2"));
    assert_eq!(out[0].0, udp(SECOND));
    let out = sent(core.handle_message(now, answer(&out[0].1, 503), udp(SECOND)));
    assert_eq!(invites(&out)[0].0, udp(FIRST));
}

#[test]
fn a_transport_error_or_no_answer_moves_on_and_the_last_failure_is_the_callers() {
    let core = relaying_core();
    let now = Instant::now();
    let cmds = {
        let out = forwarded(&core, now, "fo-3");
        invites(&out)
    };
    let (dest, first) = &cmds[0];
    let retry = sent(core.send_failed(now, *dest, first.to_bytes()));
    let (to_second, second) = invites(&retry)
        .pop()
        .unwrap_or_else(|| panic!("{retry:?} {dest:?}"));
    assert_eq!(to_second, udp(SECOND));
    // SECOND never answers: timer B ends it, and with no address left the caller gets
    // the 408.
    let mut t = now;
    let mut codes = Vec::new();
    while !codes.contains(&408) && t < now + Duration::from_secs(200) {
        t += Duration::from_millis(500);
        codes.extend(upstream(&sent(core.handle_timeouts(t))));
    }
    assert_eq!(codes, [100, 408], "a 100 Trying first, then the 408");
    assert_eq!(second.call_id().unwrap(), "fo-3");
}

#[test]
fn a_late_2xx_of_an_address_given_up_goes_upstream_and_the_next_is_cancelled() {
    let core = relaying_core();
    let now = Instant::now();
    let out = invites(&forwarded(&core, now, "fo-4"));
    let first = out[0].1.clone();
    let out = sent(core.send_failed(now, udp(FIRST), first.to_bytes()));
    let second = invites(&out).pop().expect("on to the second").1;
    // SECOND rings; then FIRST answers after all: the 200 goes to the caller, SECOND is
    // cancelled.
    core.handle_message(now, answer(&second, 180), udp(SECOND));
    let out = sent(core.handle_message(now, answer(&first, 200), udp(FIRST)));
    assert!(upstream(&out).contains(&200), "{out:?}");
    let cancels: Vec<_> = out
        .iter()
        .filter(|(_, m)| m.method() == Some(Method::Cancel))
        .collect();
    assert_eq!(cancels.len(), 1, "{out:?}");
    assert_eq!(cancels[0].0, udp(SECOND));
}

#[test]
fn an_address_that_rang_is_not_failed_over() {
    let core = relaying_core();
    let now = Instant::now();
    let out = invites(&forwarded(&core, now, "fo-5"));
    let first = out[0].1.clone();
    core.handle_message(now, answer(&first, 180), udp(FIRST));
    let out = sent(core.handle_message(now, answer(&first, 503), udp(FIRST)));
    assert!(invites(&out).is_empty(), "{out:?}");
    assert_eq!(upstream(&out), [500], "§16.7: a 503 goes upstream as 500");
}
