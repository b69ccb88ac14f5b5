//! The branch parameters we write (RFC 3261 §16.6 step 8), each carrying keyed MACs so that
//! only responses to requests we sent are taken, and relayed only to where those requests
//! came from.
//!
//! Stateful: `z9hG4bKfs-<context hex>-<branch index>-<tag>-<upstream tag>-<loop hash hex>`.
//! The tag, a MAC over the three numbers, lets only us make a branch that names a context, so
//! a response cannot be aimed at a call by someone who saw (or guessed) another call's
//! branch. The upstream tag, a MAC over the tag and where the responses go back to (the reply
//! address and branch of the Via below ours), is checked when a response outlives its
//! context (a late 2xx, forwarded statelessly): never to an address a stranger wrote into a
//! Via. The loop hash stays last: loop detection (§16.3 step 4) looks for it at the end.
//!
//! Stateless: `z9hG4bKsl-<hash hex>-<upstream tag>`, the upstream tag over the hash.
//!
//! The MAC is SipHash-2-4, a keyed PRF with a 128-bit key and a 64-bit output: about 15 ns a
//! tag (HMAC-SHA256 with a pre-keyed state: about 90 ns, with SHA-NI), paid twice per
//! forwarded request and once per response. Tags are 16 hex digits.

use std::fmt::Write;
use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::core::{STATEFUL, STATELESS};
use crate::forward::fnv;
use crate::target::Destination;

/// Longest branch we make: the prefix, three numbers in hex or decimal, two tags, dashes.
const MAX_LEN: usize = STATEFUL.len() + 16 + 1 + 20 + 1 + 16 + 1 + 16 + 1 + 16;

/// The key of the tags in our stateful branches. Random per process, given by the IO layer;
/// only a response to a request forwarded under the same key is matched to its context.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BranchSecret(pub [u8; 16]);

impl std::fmt::Debug for BranchSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BranchSecret(..)")
    }
}

/// The branch of request `index` of context `id`, whose loop hash is `loop_hash`, for a
/// request whose responses go back to `up`.
pub(crate) fn new_stateful_branch(
    secret: &BranchSecret,
    (id, index): (u64, usize),
    loop_hash: u64,
    up: &Upstream,
) -> String {
    let tag = tag(secret, id, index as u64, loop_hash);
    let mut branch = String::with_capacity(MAX_LEN);
    branch.push_str(STATEFUL);
    push_hex(&mut branch, id, 1);
    // Writing to a String does not fail.
    let _ = write!(branch, "-{index}-");
    push_hex(&mut branch, tag, 16);
    branch.push('-');
    push_hex(&mut branch, upstream_tag(secret, tag, up), 16);
    branch.push('-');
    push_hex(&mut branch, loop_hash, 1);
    branch
}

/// The fields of a stateful branch: id, index, tag, upstream tag (as written: it is read
/// only when a response outlives its context), loop hash.
fn stateful_fields(branch: &str) -> Option<(u64, usize, u64, &[u8], u64)> {
    // Split as bytes: runs for every response.
    let rest = branch.strip_prefix(STATEFUL)?;
    let mut fields = rest.as_bytes().split(|&b| b == b'-');
    let id = hex(fields.next()?)?;
    let index = decimal(fields.next()?)?;
    let tag = tag_field(fields.next()?)?;
    let up_tag = fields.next().filter(|t| t.len() == 16)?;
    let loop_hash = hex(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    Some((id, index, tag, up_tag, loop_hash))
}

fn tag_field(text: &[u8]) -> Option<u64> {
    hex(text).filter(|_| text.len() == 16)
}

/// A decimal number of at most 19 digits (an index as we write it).
fn decimal(text: &[u8]) -> Option<usize> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0'))
    })
}

/// The context id and branch index in one of our stateful branches; `None` when `branch` is
/// not one, or its tag is not ours (forged, or made before a restart).
pub(crate) fn stateful_branch(secret: &BranchSecret, branch: &str) -> Option<(u64, usize)> {
    let (id, index, tag_seen, _, loop_hash) = stateful_fields(branch)?;
    (tag_seen == tag(secret, id, index as u64, loop_hash)).then_some((id, index))
}

/// SipHash-2-4 of the three numbers, little-endian.
fn tag(secret: &BranchSecret, id: u64, index: u64, loop_hash: u64) -> u64 {
    let mut mac = SipHasher24::new_with_key(&secret.0);
    let mut input = [0u8; 24];
    input[..8].copy_from_slice(&id.to_le_bytes());
    input[8..16].copy_from_slice(&index.to_le_bytes());
    input[16..].copy_from_slice(&loop_hash.to_le_bytes());
    mac.write(&input);
    mac.finish()
}

/// Where the responses to a request we forward go: the reply address of the Via below ours
/// (§18.2.2) and that Via's branch; or nowhere (a request of our own, or a Via transport we
/// cannot answer over), which no response can match.
pub(crate) struct Upstream<'a> {
    /// `None`: nowhere.
    dest: Option<Destination>,
    branch: &'a str,
}

impl<'a> Upstream<'a> {
    /// Responses go to `dest`, for the upstream transaction `branch`.
    pub(crate) fn new(dest: Destination, branch: &'a str) -> Upstream<'a> {
        Upstream {
            dest: Some(dest),
            branch,
        }
    }

    /// No response is relayed upstream.
    pub(crate) fn nowhere() -> Upstream<'static> {
        Upstream {
            dest: None,
            branch: "",
        }
    }
}

/// The branch of a request forwarded statelessly; `hash` tells its branches apart (§16.11).
pub(crate) fn new_stateless_branch(secret: &BranchSecret, hash: u64, up: &Upstream) -> String {
    let mut branch = String::with_capacity(STATELESS.len() + 16 + 1 + 16);
    branch.push_str(STATELESS);
    push_hex(&mut branch, hash, 1);
    branch.push('-');
    push_hex(&mut branch, upstream_tag(secret, hash, up), 16);
    branch
}

/// Whether `branch`, stateful or stateless, is one of ours made for a request whose
/// responses go back to `up`.
pub(crate) fn upstream_ok(secret: &BranchSecret, branch: &str, up: &Upstream) -> bool {
    if let Some((id, index, tag_seen, up_tag, loop_hash)) = stateful_fields(branch) {
        return tag_seen == tag(secret, id, index as u64, loop_hash)
            && tag_field(up_tag) == Some(upstream_tag(secret, tag_seen, up));
    }
    let Some((hash, tag)) = branch
        .strip_prefix(STATELESS)
        .and_then(|rest| rest.split_once('-'))
    else {
        return false;
    };
    match (hex(hash.as_bytes()), tag_field(tag.as_bytes())) {
        (Some(hash), Some(tag)) => tag == upstream_tag(secret, hash, up),
        _ => false,
    }
}

/// SipHash-2-4 of a domain byte, `seed` (a tag or hash), the reply address and the upstream
/// branch's FNV hash.
fn upstream_tag(secret: &BranchSecret, seed: u64, up: &Upstream) -> u64 {
    // One buffer, one write (the hasher's cost is in its calls); the branch enters hashed:
    // what must not be forged is the address.
    let mut input = [0u8; 36];
    input[1..9].copy_from_slice(&seed.to_le_bytes());
    match up.dest {
        Some(dest) => {
            input[0] = b's';
            input[9] = dest.protocol as u8;
            let ip = match dest.addr.ip() {
                IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
                IpAddr::V6(ip) => ip.octets(),
            };
            input[10..26].copy_from_slice(&ip);
            input[26..28].copy_from_slice(&dest.addr.port().to_le_bytes());
        }
        // A different domain byte: what is made for nowhere verifies for no address.
        None => input[0] = b'n',
    }
    input[28..].copy_from_slice(&fnv(&[up.branch.as_bytes()]).to_le_bytes());
    let mut mac = SipHasher24::new_with_key(&secret.0);
    mac.write(&input);
    mac.finish()
}

/// Appends `n` in lower-case hex, with at least `width` digits.
pub(crate) fn push_hex(s: &mut String, n: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - n.leading_zeros() as usize / 4).max(width);
    let mut text = [0u8; 16];
    for (i, d) in text[16 - digits..].iter_mut().rev().enumerate() {
        *d = DIGITS[(n >> (i * 4)) as usize & 0xf];
    }
    // Hex digits are ASCII.
    s.push_str(std::str::from_utf8(&text[16 - digits..]).unwrap_or_default());
}

/// A lower- or upper-case hex number of at most 16 digits (what we write: no sign, no
/// prefix); runs for every response, so by hand.
fn hex(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(n << 4 | u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use registrar::Location;
    use sip_message::Message;

    use super::*;
    use crate::tests::{answer, config, invite, msg, register, sent, udp, CALLER};
    use crate::Core;

    const KEY: BranchSecret = BranchSecret(*b"0123456789abcdef");

    fn caller() -> Upstream<'static> {
        Upstream::new(udp(CALLER), "z9hG4bKcall1")
    }

    #[test]
    fn the_tags_verify_what_we_made_and_fail_for_a_one_bit_change() {
        let (id, index, lh) = (0x2a_0000_0011, 3, 0x8000_0000_0000_0001);
        let up = caller();
        let branch = new_stateful_branch(&KEY, (id, index), lh, &up);
        assert!(branch.len() <= MAX_LEN, "{branch}");
        assert_eq!(stateful_branch(&KEY, &branch), Some((id, index)));
        assert!(upstream_ok(&KEY, &branch, &up));
        let tag = tag(&KEY, id, index as u64, lh);
        let up_tag = upstream_tag(&KEY, tag, &up);
        let text = |id: u64, index: u64, tag: u64, up_tag: u64, lh: u64| {
            format!("{STATEFUL}{id:x}-{index}-{tag:016x}-{up_tag:016x}-{lh:x}")
        };
        assert_eq!(text(id, index as u64, tag, up_tag, lh), branch);
        for bit in 0..64 {
            let flip = 1u64 << bit;
            for forged in [
                text(id ^ flip, index as u64, tag, up_tag, lh),
                text(id, index as u64 ^ flip, tag, up_tag, lh),
                text(id, index as u64, tag ^ flip, up_tag, lh),
                text(id, index as u64, tag, up_tag, lh ^ flip),
            ] {
                assert_eq!(stateful_branch(&KEY, &forged), None, "{forged}");
                assert!(!upstream_ok(&KEY, &forged, &up), "{forged}");
            }
            let other_up = text(id, index as u64, tag, up_tag ^ flip, lh);
            assert!(!upstream_ok(&KEY, &other_up, &up), "{other_up}");
        }
        let elsewhere = Upstream::new(udp("198.51.100.7:5060"), "z9hG4bKcall1");
        assert!(!upstream_ok(&KEY, &branch, &elsewhere), "another address");
        let other_branch = Upstream::new(udp(CALLER), "z9hG4bKcall2");
        assert!(!upstream_ok(&KEY, &branch, &other_branch), "another branch");
        let mut other = KEY;
        other.0[15] ^= 1;
        assert_eq!(stateful_branch(&other, &branch), None, "another key");
        assert!(!upstream_ok(&other, &branch, &up), "another key");
    }

    #[test]
    fn only_our_stateful_branches_parse() {
        let branch = new_stateful_branch(&KEY, (7, 0), 9, &caller());
        for other in [
            "z9hG4bKsl-1f2e",
            "z9hG4bKfs-7-0-9",
            "z9hG4bKfs-7-0--9",
            "z9hG4bKfs-7-x-0000000000000000-0000000000000000-9",
            "z9hG4bKfs-7-0-0000000000000000-9",
            &format!("{branch}-1"),
            &branch.replace("z9hG4bKfs-", "z9hG4bKxx-"),
        ] {
            assert_eq!(stateful_branch(&KEY, other), None, "{other}");
        }
        assert_eq!(
            format!("{KEY:?}"),
            "BranchSecret(..)",
            "the key is not logged"
        );
    }

    const BOB: &str = "192.0.2.20:5060";

    fn top_branch(m: &Message) -> String {
        m.top_via().unwrap().branch().unwrap().to_owned()
    }

    /// `resp` with its top Via branch replaced.
    fn with_branch(resp: &Message, branch: &str) -> Message {
        let mut e = resp.edit();
        e.set_top_via_param("branch", Some(branch));
        Message::parse(e.finish()).unwrap()
    }

    /// Branches an attacker who saw `seen` (another call's) could send for the branch
    /// `target` of a live context: its context id and index with a missing, zero, borrowed
    /// or one-bit-off tag, or a one-bit-off loop hash.
    fn forgeries(target: &str, seen: &str) -> Vec<String> {
        let fields = |b: &str| -> Vec<String> {
            b.strip_prefix("z9hG4bKfs-")
                .unwrap()
                .split('-')
                .map(str::to_owned)
                .collect()
        };
        let (t, s) = (fields(target), fields(seen));
        let flip = |f: &str| {
            let (head, last) = f.split_at(f.len() - 1);
            let d = u8::from_str_radix(last, 16).unwrap() ^ 1;
            format!("{head}{d:x}")
        };
        let (id, index, lh) = (&t[0], &t[1], &t[t.len() - 1]);
        let mut one_off = t.clone();
        one_off[2] = flip(&t[2]);
        let mut lh_off = t.clone();
        let last = lh_off.len() - 1;
        lh_off[last] = flip(&t[last]);
        vec![
            format!("z9hG4bKfs-{id}-{index}"),
            format!("z9hG4bKfs-{id}-{index}-{lh}"),
            format!("z9hG4bKfs-{id}-{index}-0000000000000000-{lh}"),
            format!("z9hG4bKfs-{id}-{index}-{}", s[2..].join("-")),
            format!("z9hG4bKfs-{}", one_off.join("-")),
            format!("z9hG4bKfs-{}", lh_off.join("-")),
        ]
    }

    /// A second call from the caller, to see a branch of another context.
    fn other_invite() -> Message {
        msg(&format!(
            "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKcall2\n\
From: <sip:caller@example.net>;tag=c2\nTo: <sip:bob@example.com>\nCall-ID: call-2\nCSeq: 1 INVITE\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
        ))
    }

    #[test]
    fn a_forged_response_neither_ends_the_call_nor_is_forwarded() {
        let core = Core::new(config(), Arc::new(Location::new()));
        register(&core, "bob", BOB, "1.0");
        let registered = core.active_transactions();
        let now = Instant::now();
        let fwd = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)))
            .remove(0)
            .1;
        let seen = sent(core.handle_message(now, other_invite(), udp(CALLER)))
            .remove(0)
            .1;
        let genuine = top_branch(&fwd);
        for forged in forgeries(&genuine, &top_branch(&seen)) {
            for code in [486, 200] {
                let resp = with_branch(&answer(&fwd, code), &forged);
                let out = sent(core.handle_message(now, resp, udp(BOB)));
                assert!(
                    out.is_empty(),
                    "{code} with {forged} (ours: {genuine}): {out:?}"
                );
            }
        }
        assert_eq!(
            core.active_transactions(),
            registered + 2,
            "both calls go on"
        );
        for code in [180, 200] {
            let up = sent(core.handle_message(now, answer(&fwd, code), udp(BOB)));
            let codes: Vec<_> = up.iter().map(|(d, m)| (*d, m.status())).collect();
            assert_eq!(codes, [(udp(CALLER), Some(code))], "the genuine {code}");
        }
    }

    #[test]
    fn a_2xx_for_an_ended_context_goes_upstream_only_if_genuine_and_from_its_next_via() {
        let core = Core::new(config(), Arc::new(Location::new()));
        register(&core, "bob", BOB, "1.0");
        let now = Instant::now();
        let fwd = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)))
            .remove(0)
            .1;
        let seen = sent(core.handle_message(now, other_invite(), udp(CALLER)))
            .remove(0)
            .1;
        sent(core.handle_message(now, answer(&fwd, 200), udp(BOB)));
        sent(core.handle_message(now, answer(&seen, 200), udp(BOB)));
        core.handle_timeouts(now + Duration::from_secs(64));
        assert_eq!(core.active_transactions(), 0);
        for forged in forgeries(&top_branch(&fwd), &top_branch(&seen)) {
            let resp = with_branch(&answer(&fwd, 200), &forged);
            let out = sent(core.handle_message(now, resp, udp(BOB)));
            assert!(out.is_empty(), "{forged}: {out:?}");
        }
        let aimed = sent(core.handle_message(now, aimed_at(&answer(&fwd, 200), VICTIM), udp(BOB)));
        assert!(
            aimed.is_empty(),
            "a genuine branch over another Via: {aimed:?}"
        );
        let up = sent(core.handle_message(now, answer(&fwd, 200), udp(BOB)));
        assert_eq!(
            up.len(),
            1,
            "a genuine 2xx retransmission still goes upstream"
        );
        assert_eq!((up[0].0, up[0].1.status()), (udp(CALLER), Some(200)));
    }

    const VICTIM: &str = "198.51.100.7:5060";

    /// `resp` with a second Via in front of the one our Via covers: a stranger's address.
    fn aimed_at(resp: &Message, victim: &str) -> Message {
        let text = String::from_utf8(resp.to_bytes().to_vec()).unwrap();
        let (ours, rest) = text.split_once("\r\nVia: ").unwrap();
        let (our_via, rest) = rest.split_once("\r\n").unwrap();
        let forged = format!(
            "{ours}\r\nVia: {our_via}\r\nVia: SIP/2.0/UDP {victim};branch=z9hG4bKx\r\n{}",
            rest.replacen("Via: ", "X-Was: ", 1)
        );
        Message::parse(bytes::Bytes::from(forged)).unwrap()
    }

    #[test]
    fn a_stateless_branch_relays_responses_only_to_where_its_request_came_from() {
        let script = r#"request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    lookup("location"); forward();
}"#;
        let core = crate::tests::with_script(script);
        register(&core, "bob", BOB, "1.0");
        let now = Instant::now();
        let fwd = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)))
            .remove(0)
            .1;
        let branch = top_branch(&fwd);
        assert!(branch.starts_with("z9hG4bKsl-"), "{branch}");
        let forged = [
            aimed_at(&answer(&fwd, 200), VICTIM),
            with_branch(&answer(&fwd, 200), "z9hG4bKsl-1f2e"),
            with_branch(&answer(&fwd, 200), &format!("{branch}0")),
        ];
        for resp in forged {
            let out = sent(core.handle_message(now, resp.clone(), udp(BOB)));
            assert!(out.is_empty(), "{resp:?} relayed: {out:?}");
        }
        for code in [180, 200] {
            let up = sent(core.handle_message(now, answer(&fwd, code), udp(BOB)));
            let codes: Vec<_> = up.iter().map(|(d, m)| (*d, m.status())).collect();
            assert_eq!(codes, [(udp(CALLER), Some(code))], "the genuine {code}");
        }
    }
}
