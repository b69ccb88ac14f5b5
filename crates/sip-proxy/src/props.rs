//! Property tests of the proxy core in the simulated network of `sim`: a call forked to 1–3
//! callees, a MESSAGE relayed to them, and REGISTERs that wait for their binding writes,
//! under random answers, CANCELs, retransmissions, losses, delays and duplicates.
//!
//! Each plan is played, then the clock runs past the longest chain of timers it can have
//! started, and the properties are checked on what the proxy received and sent. Responses
//! that arrive once a context is gone are forwarded statelessly (RFC 3261 §16.7: "If none is
//! found, the element MUST process the response ... as a stateless proxy"); the caller's
//! transaction absorbs them, and the "one final response" properties count the answers of
//! the context only.

use std::time::Duration;

use proptest::prelude::*;
use sip_message::{Message, Method, Protocol};

use crate::core::STATEFUL;
use crate::sim::{config, summary, top_branch, Fate, Hop, Node, Sim, WriteFate, T1};
use crate::tests::{invite, msg};
use crate::{Command, Destination};

/// Responses a callee sends, of every class and with the ones the proxy treats apart
/// (100 is not forwarded, 503 becomes 500, 6xx ends the forking).
const CODES: &[u16] = &[
    100, 180, 183, 200, 202, 302, 404, 480, 486, 487, 500, 503, 600, 603,
];

/// 64·T1: timers B, F, H, J, and the wait for a final response after a CANCEL.
const TIMEOUT: Duration = Duration::from_millis(64 * T1.as_millis() as u64);

/// Timer D (and the longest linger of any transaction).
const TIMER_D: Duration = Duration::from_secs(32);

/// How a callee behaves, besides the answers the plan gives it.
#[derive(Debug, Clone)]
struct Callee {
    /// Its registration's q: equal values fork in parallel, lower ones later in series.
    q: &'static str,
    retransmits: bool,
    obeys_cancel: bool,
}

/// One step of a plan.
#[derive(Debug, Clone)]
enum Step {
    /// Time passes (ms).
    Wait(u64),
    /// Callee `i` answers.
    Answer(usize, u16),
    /// The caller cancels (an INVITE only).
    Cancel,
    /// A node sends its last message again, where RFC 3261 allows it.
    Resend(Node),
}

/// A caller's request relayed to 1–3 registered callees.
#[derive(Debug, Clone)]
struct Plan {
    timer_c_ms: u64,
    caller_retransmits: bool,
    callees: Vec<Callee>,
    steps: Vec<Step>,
    fates: Vec<Fate>,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Deliver),
        3 => Just(Fate::Lose),
        1 => (1u8..=3).prop_map(Fate::Late),
        1 => (1u8..=3).prop_map(Fate::Twice),
    ]
}

fn wait_ms() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..300, 0u64..3_000, 0u64..20_000]
}

fn step(callees: usize) -> impl Strategy<Value = Step> {
    let node = prop_oneof![Just(Node::Uac(0)), (0..callees).prop_map(Node::Uas)];
    prop_oneof![
        4 => wait_ms().prop_map(Step::Wait),
        5 => (0..callees, prop::sample::select(CODES)).prop_map(|(i, c)| Step::Answer(i, c)),
        1 => Just(Step::Cancel),
        1 => node.prop_map(Step::Resend),
    ]
}

fn callee() -> impl Strategy<Value = Callee> {
    (
        prop::sample::select(&["1.0", "0.5"][..]),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(q, retransmits, obeys_cancel)| Callee {
            q,
            retransmits,
            obeys_cancel,
        })
}

/// Timer C below 64·T1 (as `timer_c = 30` with the default T1 would be), above it, and as
/// RFC 3261 wants it (over 3 minutes).
fn plan() -> impl Strategy<Value = Plan> {
    (1usize..=3).prop_flat_map(|n| {
        (
            prop::sample::select(&[1_000u64, 3_000, 10_000, 200_000][..]),
            prop::bool::weighted(0.7),
            prop::collection::vec(callee(), n),
            prop::collection::vec(step(n), 0..16),
            prop::collection::vec(fate(), 0..40),
        )
            .prop_map(
                |(timer_c_ms, caller_retransmits, callees, steps, fates)| Plan {
                    timer_c_ms,
                    caller_retransmits,
                    callees,
                    steps,
                    fates,
                },
            )
    })
}

impl Plan {
    /// Plays the plan with `request` from the caller, then runs until every timer it can
    /// have started has fired.
    fn play(&self, request: Message) -> Sim {
        let timer_c = Duration::from_millis(self.timer_c_ms);
        let mut sim = Sim::new(config(timer_c), self.fates.clone(), Vec::new());
        for (i, c) in self.callees.iter().enumerate() {
            sim.add_uas(c.retransmits, c.obeys_cancel);
            sim.register_uas(i, "bob", c.q);
        }
        sim.add_uac(request, self.caller_retransmits);
        sim.start(0);
        for s in &self.steps {
            match *s {
                Step::Wait(ms) => sim.wait(Duration::from_millis(ms)),
                Step::Answer(i, code) => sim.respond(i, code),
                Step::Cancel => sim.cancel(0),
                Step::Resend(node) => sim.resend(node),
            }
            sim.wait(Duration::ZERO);
        }
        sim.wait(self.quiet(timer_c));
        sim
    }

    /// How long after its last step the plan can keep the proxy busy: per q group, a
    /// provisional response until 64·T1 (retransmitted INVITEs bring it again) and a round
    /// trip later, timer C, and 64·T1 waiting after its CANCEL; then timer D (or H).
    fn quiet(&self, timer_c: Duration) -> Duration {
        let mut qs: Vec<&str> = self.callees.iter().map(|c| c.q).collect();
        qs.sort_unstable();
        qs.dedup();
        let groups = u32::try_from(qs.len()).expect("a few");
        (TIMEOUT + T1 + timer_c + TIMEOUT) * groups + TIMER_D + Duration::from_secs(1)
    }
}

fn cseq_is(m: &Message, method: Method<'_>) -> bool {
    m.cseq().is_ok_and(|c| c.method == method)
}

fn is_final(m: &Message) -> bool {
    m.status().is_some_and(|c| c >= 200)
}

/// The distinct messages among `hops`, in the order they were first sent.
fn distinct<'a>(hops: impl Iterator<Item = &'a Hop>) -> Vec<&'a Message> {
    let mut seen: Vec<&Message> = Vec::new();
    for h in hops {
        if !seen.iter().any(|m| m.buffer() == h.msg.buffer()) {
            seen.push(&h.msg);
        }
    }
    seen
}

fn statuses(msgs: &[&Message]) -> Vec<u16> {
    msgs.iter().filter_map(|m| m.status()).collect()
}

/// Time always moves on, and every context and timer is gone once the plan's timers have
/// run out.
fn check_drained(sim: &Sim) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        sim.stuck,
        None,
        "a timer due that firing does not clear\n{}",
        sim.trace()
    );
    prop_assert_eq!(
        sim.core.active_transactions(),
        0,
        "contexts left after every bound\n{}",
        sim.trace()
    );
    prop_assert_eq!(
        sim.core.next_timeout(),
        None,
        "a timer left after every bound\n{}",
        sim.trace()
    );
    Ok(())
}

/// The answers of the request's context to the caller: a final response if the request
/// arrived, and only one distinct final response, except that for an INVITE 2xx may follow
/// a failure or another 2xx (§16.7 step 5, RFC 6026) but a failure never follows a 2xx.
fn check_answers(sim: &Sim, method: Method<'_>) -> Result<(), TestCaseError> {
    let arrived = sim
        .hops
        .iter()
        .any(|h| h.from == Node::Uac(0) && h.msg.method() == Some(method));
    let finals = distinct(sim.hops.iter().filter(|h| {
        h.from == Node::Proxy
            && h.to == Node::Uac(0)
            && h.in_context
            && cseq_is(&h.msg, method)
            && is_final(&h.msg)
    }));
    let codes = statuses(&finals);
    prop_assert!(
        !arrived || !codes.is_empty() || (method != Method::Invite && all_timed_out(sim, method)),
        "no final response to the {}\n{}",
        method,
        sim.trace()
    );
    prop_assert!(
        method == Method::Invite || !codes.contains(&408) || !all_timed_out(sim, method),
        "a 408 to a non-INVITE (RFC 4320 §4.2)\n{}",
        sim.trace()
    );
    let failures = codes.iter().filter(|&&c| c >= 300).count();
    prop_assert!(
        failures <= 1,
        "distinct failures upstream: {:?}\n{}",
        codes,
        sim.trace()
    );
    let first_2xx = codes.iter().position(|&c| c < 300);
    prop_assert!(
        first_2xx.is_none_or(|i| codes[i..].iter().all(|&c| c < 300)),
        "a failure after a 2xx upstream: {:?}\n{}",
        codes,
        sim.trace()
    );
    prop_assert!(
        method == Method::Invite || finals.len() <= 1,
        "distinct final responses upstream: {:?}\n{}",
        codes,
        sim.trace()
    );
    Ok(())
}

/// No callee's final response to `method` reached the proxy within 64·T1 of the proxy's
/// first request to it (its branch timed out first): a non-INVITE then gets no final
/// response at all (RFC 4320 §4.2), not a 408.
fn all_timed_out(sim: &Sim, method: Method<'_>) -> bool {
    sim.hops.iter().all(|h| {
        let Node::Uas(i) = h.from else { return true };
        if h.to != Node::Proxy || !is_final(&h.msg) || !cseq_is(&h.msg, method) {
            return true;
        }
        let sent = sim
            .hops
            .iter()
            .find(|s| s.to == Node::Uas(i) && s.from == Node::Proxy);
        sent.is_none_or(|s| h.at >= s.at + TIMEOUT)
    })
}

/// A failure to the INVITE goes upstream without the context only for a branch whose
/// transaction never took a failure (it was given up on, or timed out): one that took it
/// keeps the context for timer D, while its retransmissions may come.
fn check_stateless_failures(sim: &Sim) -> Result<(), TestCaseError> {
    let taken: Vec<(usize, String)> = branch_failures(sim)
        .map(|(i, _)| (i, top_branch(&sim.hops[i].msg)))
        .collect();
    for (j, h) in sim.hops.iter().enumerate().skip(1) {
        let failure = h.msg.status().is_some_and(|c| c >= 300);
        if h.to != Node::Uac(0) || h.in_context || !failure || !cseq_is(&h.msg, Method::Invite) {
            continue;
        }
        let received = &sim.hops[j - 1];
        prop_assert!(
            matches!(received.from, Node::Uas(_)) && received.msg.status() == h.msg.status(),
            "a failure upstream without the context that no callee sent\n{}",
            sim.trace()
        );
        let branch = top_branch(&received.msg);
        prop_assert!(
            !taken.iter().any(|(i, b)| *i < j && *b == branch),
            "a retransmitted failure on {} forwarded after its context was freed\n{}",
            branch,
            sim.trace()
        );
    }
    Ok(())
}

/// §16.7 step 5: the first 2xx a callee sends decides; for an INVITE, every 2xx (by To tag)
/// goes upstream, and only callees' 2xx do (but the default script's 202 for a MESSAGE no
/// callee took, one as unavailable: it is kept for them, `m_store()`).
fn check_2xx(sim: &Sim, method: Method<'_>) -> Result<(), TestCaseError> {
    let to_caller = |h: &&Hop| h.from == Node::Proxy && h.to == Node::Uac(0);
    let is_2xx = |m: &Message| m.status().is_some_and(|c| (200..300).contains(&c));
    let tag = |m: &Message| m.to().ok().and_then(|t| t.tag().map(str::to_owned));
    let up: Vec<&Hop> = sim
        .hops
        .iter()
        .filter(to_caller)
        .filter(|h| cseq_is(&h.msg, method) && is_2xx(&h.msg))
        .collect();
    // (What the callees answered before it.)
    let kept = |m: &Message| {
        let answers = || {
            sim.hops
                .iter()
                .take_while(|h| !std::ptr::eq(&h.msg, m))
                .filter(|h| matches!(h.from, Node::Uas(_)) && cseq_is(&h.msg, method))
                .filter_map(|h| h.msg.status())
        };
        m.status() == Some(202)
            && answers().any(|s| s == 480)
            && answers().all(|s| !(200..300).contains(&s))
    };
    for h in &up {
        let t = tag(&h.msg).unwrap_or_default();
        prop_assert!(
            t.starts_with("uas") || (method == Method::Message && kept(&h.msg)),
            "a 2xx upstream no callee sent: {}\n{}",
            summary(&h.msg),
            sim.trace()
        );
    }
    for (i, h) in sim.hops.iter().enumerate() {
        if !(matches!(h.from, Node::Uas(_)) && cseq_is(&h.msg, method) && is_2xx(&h.msg)) {
            continue;
        }
        let forwarded = up.iter().any(|u| tag(&u.msg) == tag(&h.msg));
        let answered_before = sim.hops[..i]
            .iter()
            .filter(to_caller)
            .any(|u| cseq_is(&u.msg, method) && is_final(&u.msg));
        prop_assert!(
            forwarded || (method != Method::Invite && answered_before),
            "a callee's 2xx never went upstream: {}\n{}",
            summary(&h.msg),
            sim.trace()
        );
    }
    Ok(())
}

/// Every CANCEL the proxy got is answered with one final response, 200 or 481.
fn check_cancel(sim: &Sim) -> Result<(), TestCaseError> {
    let arrived = sim
        .hops
        .iter()
        .any(|h| h.from == Node::Uac(0) && h.msg.method() == Some(Method::Cancel));
    let finals = distinct(sim.hops.iter().filter(|h| {
        h.from == Node::Proxy && h.to == Node::Uac(0) && cseq_is(&h.msg, Method::Cancel)
    }));
    let codes = statuses(&finals);
    prop_assert_eq!(
        codes.len(),
        usize::from(arrived),
        "responses to the CANCEL: {:?}\n{}",
        codes,
        sim.trace()
    );
    prop_assert!(
        codes.iter().all(|c| [200, 481].contains(c)),
        "{:?}\n{}",
        codes,
        sim.trace()
    );
    Ok(())
}

/// Downstream, per branch: a CANCEL for an INVITE only (§9.1), the first one once a
/// provisional response came and no final one (§9.1, §16.10), an ACK only for a failure
/// (§17.1.1.3: a 2xx's ACK is the caller's), and one request transaction per callee (§16.6:
/// a target once).
fn check_branches(sim: &Sim) -> Result<(), TestCaseError> {
    let mut cancelled: Vec<String> = Vec::new();
    for (i, h) in sim.hops.iter().enumerate() {
        let (true, Node::Uas(callee), Some(method)) = (h.from == Node::Proxy, h.to, h.msg.method())
        else {
            continue;
        };
        let branch = top_branch(&h.msg);
        let before = |codes: std::ops::RangeInclusive<u16>| {
            sim.hops[..i].iter().any(|r| {
                r.from == Node::Uas(callee)
                    && top_branch(&r.msg) == branch
                    && cseq_is(&r.msg, Method::Invite)
                    && r.msg.status().is_some_and(|c| codes.contains(&c))
            })
        };
        match method {
            Method::Cancel if !cancelled.contains(&branch) => {
                let invited = sim.hops[..i].iter().any(|r| {
                    r.to == h.to
                        && r.msg.method() == Some(Method::Invite)
                        && top_branch(&r.msg) == branch
                });
                prop_assert!(invited, "CANCEL of a non-INVITE\n{}", sim.trace());
                prop_assert!(
                    before(100..=199) && !before(200..=699),
                    "CANCEL without a provisional response, or after a final one, on {}\n{}",
                    branch,
                    sim.trace()
                );
                cancelled.push(branch);
            }
            Method::Ack if branch.starts_with(STATEFUL) => prop_assert!(
                before(300..=699),
                "ACK without a failure on {}\n{}",
                branch,
                sim.trace()
            ),
            _ => {}
        }
    }
    for (i, uas) in sim.uases.iter().enumerate() {
        prop_assert!(
            uas.transactions <= 1,
            "callee {} got {} requests\n{}",
            i,
            uas.transactions,
            sim.trace()
        );
    }
    Ok(())
}

/// Index of the first final response of the INVITE's context to the caller, if any.
fn first_answer(sim: &Sim) -> Option<usize> {
    sim.hops.iter().position(|h| {
        h.to == Node::Uac(0) && h.in_context && cseq_is(&h.msg, Method::Invite) && is_final(&h.msg)
    })
}

/// The failures a live INVITE branch took, with their index: those its client transaction
/// ACKed at once (a failure that comes after the branch ended is not ACKed).
fn branch_failures(sim: &Sim) -> impl Iterator<Item = (usize, u16)> + '_ {
    sim.hops.windows(2).enumerate().filter_map(|(i, w)| {
        let (r, ack) = (&w[0], &w[1]);
        let code = r.msg.status().filter(|&c| c >= 300)?;
        let acked = matches!(r.from, Node::Uas(_))
            && cseq_is(&r.msg, Method::Invite)
            && ack.to == r.from
            && ack.msg.method() == Some(Method::Ack)
            && top_branch(&ack.msg) == top_branch(&r.msg);
        acked.then_some((i, code))
    })
}

/// §16.7 step 6: a failure upstream is the best one the branches took before it: a 6xx if
/// any, otherwise of the lowest class (a branch that timed out counts as 408).
fn check_best(sim: &Sim) -> Result<(), TestCaseError> {
    let Some(at) = first_answer(sim) else {
        return Ok(());
    };
    let answer = sim.hops[at].msg.status().unwrap_or(0);
    if answer < 300 {
        return Ok(());
    }
    let taken: Vec<u16> = branch_failures(sim)
        .filter(|&(i, _)| i < at)
        .map(|(_, c)| c)
        .collect();
    let best_class = if taken.iter().any(|&c| c >= 600) {
        6
    } else {
        taken
            .iter()
            .map(|c| c / 100)
            .min()
            .unwrap_or(6)
            .min(answer / 100)
    };
    prop_assert_eq!(
        answer / 100,
        best_class,
        "answered {} after failures {:?}\n{}",
        answer,
        taken,
        sim.trace()
    );
    Ok(())
}

/// §16.10, §16.7 steps 5, 6 and 10: no new branch once the caller's CANCEL was accepted, a
/// branch took a 2xx or a 6xx, or the request was answered.
fn check_no_late_branch(sim: &Sim) -> Result<(), TestCaseError> {
    let hops = &sim.hops;
    let cancelled = hops.windows(2).position(|w| {
        w[0].msg.method() == Some(Method::Cancel)
            && w[0].from == Node::Uac(0)
            && cseq_is(&w[1].msg, Method::Cancel)
            && w[1].msg.status() == Some(200)
    });
    let ok = hops.iter().position(|h| {
        matches!(h.from, Node::Uas(_))
            && h.in_context
            && cseq_is(&h.msg, Method::Invite)
            && h.msg.status().is_some_and(|c| (200..300).contains(&c))
    });
    let global = branch_failures(sim)
        .find(|&(_, c)| c >= 600)
        .map(|(i, _)| i);
    let Some(stop) = [cancelled, ok, global, first_answer(sim)]
        .into_iter()
        .flatten()
        .min()
    else {
        return Ok(());
    };
    for i in 0..sim.uases.len() {
        let first = hops
            .iter()
            .position(|h| h.to == Node::Uas(i) && h.msg.method() == Some(Method::Invite));
        prop_assert!(
            first.is_none_or(|f| f < stop),
            "a new branch to callee {} after hop {}\n{}",
            i,
            stop,
            sim.trace()
        );
    }
    Ok(())
}

/// A MESSAGE from the caller (UAC 0) to bob.
fn message() -> Message {
    msg("MESSAGE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKmsg1\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: msg-1\nCSeq: 1 MESSAGE\n\
Max-Forwards: 70\nContent-Length: 0\n\n")
}

/// REGISTERs from UACs, each waiting for its binding write.
#[derive(Debug, Clone)]
struct Registrations {
    retransmits: Vec<bool>,
    max_pending_writes: usize,
    steps: Vec<RegStep>,
    fates: Vec<Fate>,
    writes: Vec<WriteFate>,
}

#[derive(Debug, Clone)]
enum RegStep {
    Wait(u64),
    /// UAC `k` sends its REGISTER (once).
    Start(usize),
    /// UAC `k` sends it again, while no response came.
    Resend(usize),
}

/// The longest a write waits in the plans.
const MAX_WRITE_DELAY: Duration = Duration::from_secs(10);

fn registrations() -> impl Strategy<Value = Registrations> {
    (1usize..=3).prop_flat_map(|n| {
        let write = (
            0..MAX_WRITE_DELAY.as_millis() as u64,
            prop::bool::weighted(0.7),
        )
            .prop_map(|(ms, stored)| WriteFate {
                delay: Duration::from_millis(ms),
                stored,
            });
        let step = prop_oneof![
            2 => wait_ms().prop_map(RegStep::Wait),
            2 => (0..n).prop_map(RegStep::Start),
            1 => (0..n).prop_map(RegStep::Resend),
        ];
        (
            prop::collection::vec(prop::bool::weighted(0.7), n),
            1usize..=3,
            prop::collection::vec(step, 0..12),
            prop::collection::vec(fate(), 0..30),
            prop::collection::vec(write, 0..4),
        )
            .prop_map(|(retransmits, max_pending_writes, steps, fates, writes)| {
                Registrations {
                    retransmits,
                    max_pending_writes,
                    steps,
                    fates,
                    writes,
                }
            })
    })
}

/// UAC `k`'s REGISTER: bob from even UACs, alice from odd ones, each its own contact.
fn register_from(k: usize) -> Message {
    let user = if k.is_multiple_of(2) { "bob" } else { "alice" };
    let addr = Node::Uac(k).addr();
    msg(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKr{k}\n\
From: <sip:{user}@example.com>;tag=f{k}\nTo: <sip:{user}@example.com>\nCall-ID: reg-uac{k}\n\
CSeq: 1 REGISTER\nContact: <sip:{user}@{addr}>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ))
}

impl Registrations {
    fn play(&self) -> Sim {
        let mut cfg = config(Duration::from_secs(180));
        cfg.max_pending_writes = self.max_pending_writes;
        let mut sim = Sim::new(cfg, self.fates.clone(), self.writes.clone());
        for (k, &r) in self.retransmits.iter().enumerate() {
            sim.add_uac(register_from(k), r);
        }
        for s in &self.steps {
            match *s {
                RegStep::Wait(ms) => sim.wait(Duration::from_millis(ms)),
                RegStep::Start(k) => sim.start(k),
                RegStep::Resend(k) => sim.resend(Node::Uac(k)),
            }
            sim.wait(Duration::ZERO);
        }
        // A REGISTER arrives within 64·T1, its write is answered, its transaction lingers.
        sim.wait(TIMEOUT + MAX_WRITE_DELAY + TIMEOUT + Duration::from_secs(1));
        sim
    }
}

/// Each REGISTER that arrived is answered: first with 200 once its bindings are written, 500
/// when they could not be (or no write ended for 64·T1), 503 when `max_pending_writes`
/// writes were waiting. A 200 forgets
/// the transaction: a retransmission arriving later is processed again, with a write of its
/// own that changes nothing, and no 200 ever goes before a write of its REGISTER is stored.
/// A write slot is given back whatever happened.
fn check_registrations(sim: &Sim, max_pending_writes: usize) -> Result<(), TestCaseError> {
    for k in 0..sim.uacs.len() {
        let call_id = format!("reg-uac{k}");
        let arrived = sim
            .hops
            .iter()
            .any(|h| h.from == Node::Uac(k) && h.msg.call_id() == Ok(call_id.as_str()));
        let answers: Vec<usize> = (0..sim.hops.len())
            .filter(|&i| sim.hops[i].to == Node::Uac(k) && is_final(&sim.hops[i].msg))
            .collect();
        let Some(&first) = answers.first() else {
            prop_assert!(!arrived, "REGISTER {} unanswered\n{}", k, sim.trace());
            continue;
        };
        let mine = || sim.writes.iter().filter(|w| w.call_id == call_id);
        let writes: Vec<_> = mine().filter(|w| w.asked <= first).collect();
        prop_assert!(writes.len() <= 1, "bindings written twice\n{}", sim.trace());
        let status = sim.hops[first].msg.status();
        match writes.first() {
            // Its write's outcome once it ended, or 500 once the writes stalled (none
            // ended for 64·T1).
            Some(w) => {
                let at = sim.hops[first].at;
                let outcome = if w.stored { 200 } else { 500 };
                let first_write = sim.writes.iter().map(|o| sim.hops[o.asked - 1].at).min();
                let stalled = first_write.is_some_and(|t| at >= t + TIMEOUT)
                    && !sim
                        .writes
                        .iter()
                        .any(|o| o.answered.is_some() && o.due <= at && o.due + TIMEOUT > at);
                prop_assert!(
                    (status == Some(outcome) && at >= w.due) || (status == Some(500) && stalled),
                    "REGISTER {} answered {:?} at {:?}\n{}",
                    k,
                    status,
                    at,
                    sim.trace()
                );
            }
            None => {
                let at = sim.hops[first].at;
                let pending = sim
                    .writes
                    .iter()
                    .filter(|w| w.asked <= first && w.answered.is_none_or(|a| a > first))
                    .count();
                prop_assert_eq!(
                    status,
                    Some(503),
                    "REGISTER {} at {:?}\n{}",
                    k,
                    at,
                    sim.trace()
                );
                prop_assert!(
                    pending >= max_pending_writes,
                    "503 with {} writes waiting\n{}",
                    pending,
                    sim.trace()
                );
            }
        }
        if status == Some(200) {
            prop_assert!(
                mine().all(|w| w.asked <= first || w.changes.is_empty()),
                "a retransmission after the 200 changed the bindings again\n{}",
                sim.trace()
            );
        }
        for &i in &answers {
            let stored = mine().any(|w| w.stored && w.answered.is_some_and(|a| a <= i));
            prop_assert!(
                sim.hops[i].msg.status() != Some(200) || stored,
                "a 200 before any write of its REGISTER was stored\n{}",
                sim.trace()
            );
        }
    }
    // One more REGISTER is admitted: every write slot was given back.
    let src = Destination::new(Protocol::Udp, Node::Uac(9).addr());
    let probe = sim.core.handle_message(sim.now, register_from(9), src);
    prop_assert!(
        matches!(probe.first(), Some(Command::Persist { .. })),
        "a write slot was not given back: {:?}\n{}",
        probe,
        sim.trace()
    );
    Ok(())
}

/// `cases` random plans; a failure is shrunk and reported, not saved to a file.
fn cases(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn a_call_ends_with_one_answer_and_frees_everything(plan in plan()) {
        let sim = plan.play(invite("bob", ""));
        check_drained(&sim)?;
        check_answers(&sim, Method::Invite)?;
        check_stateless_failures(&sim)?;
        check_2xx(&sim, Method::Invite)?;
        check_cancel(&sim)?;
        check_branches(&sim)?;
        check_best(&sim)?;
        check_no_late_branch(&sim)?;
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn a_message_gets_one_answer_and_frees_everything(plan in plan()) {
        let sim = plan.play(message());
        check_drained(&sim)?;
        check_answers(&sim, Method::Message)?;
        check_2xx(&sim, Method::Message)?;
        check_branches(&sim)?;
    }

    #[test]
    fn a_register_is_answered_once_after_its_write(plan in registrations()) {
        let sim = plan.play();
        check_drained(&sim)?;
        check_registrations(&sim, plan.max_pending_writes)?;
    }
}

/// Found by the property above: a MESSAGE no callee answers gets no 408 (RFC 4320), but
/// the caller's last retransmission, arriving just after our timer F, is absorbed (not
/// relayed again as a new request).
#[test]
fn a_late_retransmission_of_an_unanswered_message_reaches_no_callee_twice() {
    let plan = Plan {
        timer_c_ms: 1000,
        caller_retransmits: false,
        callees: vec![
            Callee {
                q: "1.0",
                retransmits: false,
                obeys_cancel: false,
            },
            Callee {
                q: "1.0",
                retransmits: false,
                obeys_cancel: false,
            },
        ],
        steps: vec![
            Step::Wait(227),
            Step::Wait(120),
            Step::Wait(276),
            Step::Wait(5753),
            Step::Resend(Node::Uac(0)),
        ],
        fates: [vec![Fate::Deliver; 15], vec![Fate::Late(1)]].concat(),
    };
    let sim = plan.play(message());
    check_branches(&sim).unwrap();
    check_drained(&sim).unwrap();
}
