//! Keepalives for bindings behind NAT ([`nat::Keepalives`]): an OPTIONS to each, at the
//! source of its REGISTER, as often as the IO layer calls [`Core::keepalive`]; a binding
//! that has not answered for the timeout is removed. Each ping is one datagram, sent
//! without a transaction (no retransmission: a dead client, or a victim whose address a
//! REGISTER claimed, gets one small request per interval); its answer is matched by a
//! branch keyed under our secret ([`PING`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use registrar::{Binding, Change};
use sip_message::{RequestBuilder, Uri};

use crate::target::Destination;
use crate::{Command, Core};

/// The branch prefix of keepalive pings; the rest is the pinged binding's id.
pub(crate) const PING: &str = "z9hG4bKka-";

/// The bindings pinged.
pub(crate) type Pinged = Mutex<Option<nat::Keepalives<Key>>>;

/// A binding as registered: its address-of-record, contact and reg-id (flows of one
/// instance share a Contact), and the CSeq of the REGISTER that made it (a refresh is a
/// sign of life: its clock starts again).
pub(crate) type Key = (String, String, Option<u32>, u32);

fn key_of(b: &Binding) -> Key {
    (b.aor.clone(), b.contact.clone(), b.reg_id, b.cseq)
}

/// True for a binding behind NAT reached directly (no Path): the server keeps it alive, and
/// `dst_behind_nat()` tells it. Runs over every binding under its shard's lock: a Contact
/// that names its source as written (`…@192.0.2.1:5060`, the common case) is told without a
/// parse.
pub(crate) fn behind_nat(b: &Binding) -> bool {
    if !b.path.is_empty() {
        return false;
    }
    let written = b.source.split_once(':').map(|(_, a)| a);
    let names_source = written.is_some_and(|a| {
        b.contact.split_once('@').is_some_and(|(_, host)| {
            host.strip_prefix(a).is_some_and(|rest| {
                // (A `maddr` sends elsewhere: told by the parse.)
                let maddr = || {
                    rest.as_bytes()
                        .windows(5)
                        .any(|w| w.eq_ignore_ascii_case(b"maddr"))
                };
                rest.is_empty() || (rest.starts_with([';', '?']) && !maddr())
            })
        })
    });
    if names_source {
        return false;
    }
    Uri::parse(&b.contact).is_ok_and(|contact| crate::relay::nat_source(b, &contact).is_some())
}

impl Core {
    /// Pings every binding behind NAT, and removes those that have not answered for
    /// `timeout` (their removals are written as for an expiry).
    pub fn keepalive(&self, now: Instant, timeout: Duration) -> Vec<Command> {
        let unix = self.unix(now);
        let bindings = self.location.matching(unix, behind_nat);
        let mut out = Vec::new();
        let mut removed: Vec<Change> = Vec::new();
        let mut gone = std::collections::HashSet::new();
        {
            let mut pinged = self.keepalives.lock().unwrap_or_else(|p| p.into_inner());
            let k = pinged.get_or_insert_with(|| nat::Keepalives::new(timeout));
            let live: std::collections::HashSet<Key> = bindings.iter().map(key_of).collect();
            k.retain(|key| live.contains(key));
            for b in &bindings {
                let key = key_of(b);
                if k.dead(&key, now) {
                    k.forget(&key);
                    if let Some(change) = self.location.remove_binding(b) {
                        tracing::info!(aor = %b.aor, contact = %b.contact, source = %b.source, "binding removed: no answer to keepalives");
                        removed.push(change);
                        gone.insert(key);
                    }
                } else {
                    k.pinged(&key, self.shards().keyed_hash(&key), now);
                }
            }
        }
        for b in bindings
            .iter()
            .filter(|b| gone.is_empty() || !gone.contains(&key_of(b)))
        {
            let Some((protocol, addr)) = b.source_addr() else {
                continue;
            };
            let Some(local) = self.config().advertised_for(protocol, addr) else {
                continue;
            };
            let id = self.shards().keyed_hash(key_of(b));
            let Some(options) = self.options_for(b, protocol, local, id) else {
                continue;
            };
            let connection = protocol.is_reliable().then_some(addr);
            let dest = Destination {
                protocol,
                addr,
                connection,
                name: None,
            };
            out.push(Command::Send {
                dest,
                data: options,
            });
        }
        if !removed.is_empty() {
            out.push(Command::Persist {
                changes: removed,
                then: None,
            });
        }
        out
    }

    /// The OPTIONS that pings binding `b` from our address `local`, its branch naming `id`:
    /// to its contact, in its address-of-record's name (`sip:user@domain`, as the
    /// registrar keys it), from our keepalive user there.
    fn options_for(
        &self,
        b: &Binding,
        protocol: sip_message::Protocol,
        local: std::net::SocketAddr,
        id: u64,
    ) -> Option<bytes::Bytes> {
        let (_, domain) = b.aor.split_once('@')?;
        let via = format!(
            "SIP/2.0/{} {};branch={PING}{id:016x};rport",
            protocol.via_token(),
            self.local_text(local)
        );
        let request = RequestBuilder::new("OPTIONS", &b.contact)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &format!("<sip:keepalive@{domain}>;tag={id:016x}"))
            .header("To", &format!("<{}>", b.aor))
            .header("Call-ID", &format!("ka-{id:016x}"))
            .header("CSeq", "1 OPTIONS")
            .header("Content-Length", "0")
            .build();
        Some(request)
    }

    /// A response to a keepalive ping whose branch names `id` (after [`PING`]): its binding
    /// is there.
    pub(crate) fn ping_answered(&self, now: Instant, id: &str) {
        let Ok(id) = u64::from_str_radix(id, 16) else {
            return;
        };
        let mut pinged = self.keepalives.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = pinged.as_mut() {
            k.answered_by(id, now);
        }
    }
}

/// True when `c` removes binding `b`.
#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::tests::{core, handle, msg, register, sent, udp};
    use crate::Command;

    const NAT: &str = "198.51.100.7:40000";

    /// bob registers from behind a NAT (its Contact is private).
    fn register_behind_nat(core: &crate::Core, now: Instant) {
        let reg = msg(
            "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bKka\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: ka\nCSeq: 1 REGISTER\n\
Contact: <sip:bob@192.168.1.20:5060>\nContent-Length: 0\n\n",
        );
        assert_eq!(
            sent(handle(core, now, reg, udp(NAT)))[0].1.status(),
            Some(200)
        );
    }

    #[test]
    fn behind_nat_is_told_with_and_without_a_parse() {
        let b = |contact: &str, source: &str| registrar::Binding {
            aor: "sip:x@example.com".into(),
            contact: contact.into(),
            q: 1000,
            expires_at: 100,
            call_id: "c".into(),
            cseq: 1,
            path: Vec::new(),
            source: source.into(),
            via_at_source: false,
            user_agent: None,
            instance: None,
            reg_id: None,
        };
        assert!(!super::behind_nat(&b(
            "sip:x@1.2.3.4:5060",
            "udp:1.2.3.4:5060"
        )));
        assert!(!super::behind_nat(&b(
            "sip:x@1.2.3.4:5060;ob",
            "udp:1.2.3.4:5060"
        )));
        assert!(
            !super::behind_nat(&b("sip:x@1.2.3.4", "udp:1.2.3.4:5060")),
            "parsed"
        );
        assert!(super::behind_nat(&b(
            "sip:x@1.2.3.4:50601",
            "udp:1.2.3.4:5060"
        )));
        assert!(super::behind_nat(&b(
            "sip:x@10.0.0.1:5060",
            "udp:1.2.3.4:5060"
        )));
        let tcp = b("sip:x@1.2.3.4:5060;transport=tcp", "tcp:1.2.3.4:49152");
        assert!(
            !super::behind_nat(&tcp),
            "TCP from its address: its ephemeral port is no NAT"
        );
        // Its Via named its source: another port of that address is where it listens; another
        // address is still NAT.
        let told = |contact| registrar::Binding {
            via_at_source: true,
            ..b(contact, "udp:1.2.3.4:5062")
        };
        assert!(!super::behind_nat(&told("sip:x@1.2.3.4:5070")));
        assert!(super::behind_nat(&told("sip:x@10.0.0.1:5070")));
        let flow = registrar::Binding {
            instance: Some("<urn:uuid:1>".into()),
            reg_id: Some(1),
            ..told("sip:x@1.2.3.4:5070;ob")
        };
        assert!(super::behind_nat(&flow), "a flow goes where it came from");
        let maddr = b("sip:x@1.2.3.4:5060;MADDR=203.0.113.66", "udp:1.2.3.4:5060");
        assert!(
            super::behind_nat(&maddr),
            "a maddr is not taken at its word"
        );
        let mut path = b("sip:x@10.0.0.1:5060", "udp:1.2.3.4:5060");
        path.path.push("<sip:edge.example;lr>".into());
        assert!(!super::behind_nat(&path), "an edge proxy reaches it");
    }

    #[test]
    fn bindings_behind_nat_are_pinged_and_removed_when_they_stop_answering() {
        let core = core();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let timeout = Duration::from_secs(120);
        register_behind_nat(&core, t0);
        register(&core, "carol", "192.0.2.30:5060", "1.0");
        let bob = |t| {
            core.location
                .lookup("sip:bob@example.com", core.unix(t))
                .len()
        };
        assert_eq!(bob(t0), 1);
        let pings = sent(core.keepalive(t0, timeout));
        assert_eq!(pings.len(), 1, "bob only: carol is not behind NAT");
        let (dest, options) = &pings[0];
        assert_eq!(*dest, udp(NAT));
        assert_eq!(options.request_uri_str(), Some("sip:bob@192.168.1.20:5060"));
        assert_eq!(options.method().map(|m| m.as_str()), Some("OPTIONS"));
        assert_eq!(
            options.to().expect("To").uri.as_str(),
            "sip:bob@example.com"
        );
        let resent = sent(core.handle_timeouts(at(1)));
        assert!(
            resent.iter().all(|(d, _)| *d != udp(NAT)),
            "one datagram, not retransmitted"
        );
        // bob answers (even a 405 would do).
        let ok = crate::tests::answer(options, 200);
        sent(core.handle_message(at(1), ok, udp(NAT)));
        // Pinged again, no answer: alive until 120 s after its last answer.
        assert_eq!(sent(core.keepalive(at(100), timeout)).len(), 1);
        let out = core.keepalive(at(120), timeout);
        assert!(
            !out.iter().any(|c| matches!(c, Command::Persist { .. })),
            "answered at 1 s"
        );
        let out = core.keepalive(at(121), timeout);
        let removed = out.iter().any(|c| {
            matches!(c, Command::Persist { changes, .. } if changes.iter().any(|ch| ch.contact() == "sip:bob@192.168.1.20:5060"))
        });
        assert!(removed, "{out:?}");
        assert_eq!(bob(at(121)), 0);
        assert_eq!(
            core.location
                .lookup("sip:carol@example.com", core.unix(at(121)))
                .len(),
            1
        );
        assert!(
            sent(core.keepalive(at(130), timeout)).is_empty(),
            "nothing left to ping"
        );
    }
}
