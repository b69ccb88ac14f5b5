//! Processing a REGISTER (RFC 3261 §10.3 steps 5–8, RFC 3327 Path).

use std::sync::Arc;

use sip_message::header::Contact;
use sip_message::{HeaderName, Message};

use crate::aor::{aor_of, uri_equal};
use crate::binding::{parse_source, Binding, Change};

/// The largest reg-id (RFC 5626 §13: 1 to 2^31-1).
const MAX_REG_ID: u32 = 0x7fff_ffff;

/// Registrar policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest accepted registration; a shorter non-zero one gets 423.
    pub min_expires: u32,
    /// Longest registration; longer ones are shortened to this.
    pub max_expires: u32,
    /// Used when neither the Contact nor the request gives an expiry.
    pub default_expires: u32,
    /// Most contacts per address-of-record.
    pub max_contacts: usize,
    /// Most bindings in all (0: no limit).
    pub max_bindings: usize,
    /// Most bindings made by REGISTERs from one source, an IPv4 address or an IPv6 /64
    /// (0: no limit; trusted peers are exempt).
    pub max_bindings_per_source: usize,
    /// Seconds between a client's keep-alives over its flow, as `Flow-Timer` asks of a
    /// client that uses SIP Outbound (RFC 5626 §5.4): under the server's idle timeout.
    pub flow_timer: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            max_bindings: 1_000_000,
            max_bindings_per_source: 1000,
            flow_timer: 120,
        }
    }
}

/// Why a REGISTER is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Min-Expires to send with a 423.
    pub min_expires: Option<u32>,
    /// Refused by `max_bindings` or `max_bindings_per_source` (worth a line in the log).
    pub limit: bool,
}

pub(crate) fn reject(status: u16, reason: &'static str) -> Rejection {
    Rejection {
        status,
        reason,
        min_expires: None,
        limit: false,
    }
}

/// An accepted REGISTER: what changed and every binding of the AOR afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The address-of-record.
    pub aor: String,
    /// Changes to persist.
    pub changes: Vec<Change>,
    /// The AOR's bindings after the request, by q descending (shared with the location
    /// table).
    pub bindings: Arc<Vec<Binding>>,
    /// Its unexpired bindings before, to put back if the changes cannot be stored.
    pub previous: Arc<Vec<Binding>>,
}

/// Processes a REGISTER against the AOR's current, unexpired bindings. All or nothing: a
/// rejection changes nothing.
pub fn process_register(
    cfg: &RegistrarConfig,
    now: u64,
    req: &Message,
    source: &str,
    current: &[Binding],
) -> Result<Registered, Rejection> {
    let current = Arc::new(current.to_vec());
    process_for(cfg, now, req, aor_from_to(req)?, source, current, &[])
}

/// The AOR of a REGISTER's To header, or why there is none.
pub(crate) fn aor_from_to(req: &Message) -> Result<String, Rejection> {
    let to = req.to().map_err(|_| reject(400, "Invalid To"))?;
    aor_of(&to.uri).ok_or(reject(404, "Not Found"))
}

/// True when the request's top Via names the address and port of `source` (as a binding
/// writes it: `udp:192.0.2.1:5060`; without a port, the transport's default); a host name
/// or another address does not.
fn via_names(req: &Message, source: &str) -> bool {
    let Some((protocol, from)) = parse_source(source) else {
        return false;
    };
    req.top_via().is_ok_and(|v| {
        let ip = v.host.ip().map(|ip| ip.to_canonical());
        let port = v.port.unwrap_or(protocol.default_port());
        ip == Some(from.ip().to_canonical()) && port == from.port()
    })
}

/// A contact a REGISTER removed lately, and that REGISTER's Call-ID and CSeq: a copy of an
/// older one arriving late (reordered, or a retransmission whose transaction is gone) must
/// not bring it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Removed {
    pub(crate) contact: String,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    /// When (Unix seconds).
    pub(crate) at: u64,
}

/// [`process_register`] for an AOR already taken from the To header, which lately lost the
/// contacts `removed`; `current` becomes the registration's `previous`.
pub(crate) fn process_for(
    cfg: &RegistrarConfig,
    now: u64,
    req: &Message,
    aor: String,
    source: &str,
    current: Arc<Vec<Binding>>,
    removed: &[Removed],
) -> Result<Registered, Rejection> {
    let call_id = req.call_id().map_err(|_| reject(400, "Invalid Call-ID"))?;
    let cseq = req.cseq().map_err(|_| reject(400, "Invalid CSeq"))?.seq;
    let header_expires = req.expires().map_err(|_| reject(400, "Invalid Expires"))?;
    let contacts: Vec<Contact<'_>> = req
        .contacts()
        .collect::<Result<_, _>>()
        .map_err(|_| reject(400, "Invalid Contact"))?;
    // Sized for the contacts this request may add: most AORs hold one binding, and a Vec
    // left to grow would hold room for four.
    let mut bindings: Vec<Binding> = Vec::with_capacity(current.len() + contacts.len());
    bindings.extend_from_slice(&current);
    let mut changes = Vec::new();
    // RFC 3261 §10.3 refuses a CSeq not above the binding's. An equal one on the same Call-ID
    // is the same REGISTER again (a retransmission, since the registrar answers without a
    // transaction): it changes nothing and gets the same answer.
    let stale = |b: &Binding| b.call_id == call_id && b.cseq > cseq;
    let repeat = |b: &Binding| b.call_id == call_id && b.cseq == cseq;

    if contacts.contains(&Contact::Star) {
        if contacts.len() != 1 || header_expires != Some(0) {
            return Err(reject(400, "Invalid Contact *"));
        }
        if bindings.iter().any(|b| stale(b) || repeat(b)) {
            return Err(reject(500, "Out of order CSeq"));
        }
        changes.extend(bindings.drain(..).map(|b| b.removal()));
        return Ok(Registered {
            aor,
            changes,
            bindings: Arc::new(bindings),
            previous: current,
        });
    }

    let path: Vec<String> = req
        .headers_named(HeaderName::Path)
        .flat_map(|h| h.values().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let user_agent = req
        .header(HeaderName::UserAgent)
        .map(|h| h.value_unfolded().into_owned());
    let via_at_source = via_names(req, source);
    for c in &contacts {
        let Contact::Address(addr) = c else { continue };
        let expires = addr
            .expires()
            .or(header_expires)
            .unwrap_or(cfg.default_expires);
        if expires != 0 && expires < cfg.min_expires {
            return Err(Rejection {
                status: 423,
                reason: "Interval Too Brief",
                min_expires: Some(cfg.min_expires),
                limit: false,
            });
        }
        let expires = expires.min(cfg.max_expires);
        let contact = addr.uri.as_str();
        let instance = addr
            .params
            .find("+sip.instance")
            .and_then(|p| p.unquoted())
            .map(|v| v.into_owned());
        // A reg-id means nothing without an instance (RFC 5626 §6), or outside 1 to
        // 2^31-1 (§13): ignored.
        let reg_id = addr
            .params
            .get("reg-id")
            .flatten()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| (1..=MAX_REG_ID).contains(v) && instance.is_some());
        // RFC 5626 §6: a binding of an instance and reg-id is that pair's, whatever its
        // Contact (a client that reconnects may come with another); else the Contact's.
        // The flows of one instance may share a Contact; anyone else's binding of the
        // Contact clashes with this one.
        let flow = reg_id.is_some();
        let same_flow = |b: &Binding| flow && b.instance == instance && b.reg_id == reg_id;
        let sibling = |b: &Binding| flow && b.instance == instance && b.reg_id.is_some();
        let clashes = |b: &Binding| !sibling(b) && uri_equal(&b.contact, contact);
        let mut existing = bindings
            .iter()
            .position(same_flow)
            .or_else(|| bindings.iter().position(clashes));
        if let Some(i) = existing {
            if stale(&bindings[i]) {
                return Err(reject(500, "Out of order CSeq"));
            }
            if repeat(&bindings[i]) {
                continue;
            }
        } else if let Some(gone) = removed
            .iter()
            .find(|r| r.call_id == call_id && uri_equal(&r.contact, contact))
        {
            // Removed by this Call-ID: an older CSeq comes too late; the same is the
            // removal again.
            if gone.cseq > cseq {
                return Err(reject(500, "Out of order CSeq"));
            }
            if gone.cseq == cseq {
                continue;
            }
        }
        // The Contact is this binding's now, or (without a flow) removed: the others that
        // clash go.
        let others = |(i, b): (usize, &Binding)| Some(i) != existing && clashes(b);
        if (expires != 0 || !flow) && bindings.iter().enumerate().any(others) {
            let key = existing.map(|i| (bindings[i].contact.clone(), bindings[i].reg_id));
            let mut i = 0;
            bindings.retain(|b| {
                let goes = others((i, b));
                i += 1;
                if goes {
                    changes.push(b.removal());
                }
                !goes
            });
            existing = key.and_then(|(c, r)| {
                bindings
                    .iter()
                    .position(|b| b.contact == c && b.reg_id == r)
            });
        }
        match (existing, expires) {
            (None, 0) => {}
            (Some(i), 0) => changes.push(bindings.remove(i).removal()),
            (existing, _) => {
                // The Contact as first stored while it stays the same URI.
                let kept = existing
                    .map(|i| &bindings[i].contact)
                    .filter(|c| uri_equal(c, contact));
                let contact = kept.map_or_else(|| contact.to_owned(), Clone::clone);
                // A new key (another Contact, or a flow now): the old row goes.
                if let Some(b) = existing.map(|i| &bindings[i]) {
                    if b.contact != contact || b.reg_id != reg_id {
                        changes.push(b.removal());
                    }
                }
                let binding = Binding {
                    aor: aor.clone(),
                    contact,
                    q: addr.q().unwrap_or(1000),
                    expires_at: now + u64::from(expires),
                    call_id: call_id.to_owned(),
                    cseq,
                    path: path.clone(),
                    source: source.to_owned(),
                    via_at_source,
                    user_agent: user_agent.clone(),
                    instance,
                    reg_id,
                };
                match existing {
                    Some(i) => bindings[i] = binding.clone(),
                    None if bindings.len() >= cfg.max_contacts => {
                        return Err(reject(403, "Too Many Contacts"))
                    }
                    None => bindings.push(binding.clone()),
                }
                changes.push(Change::Upsert(binding));
            }
        }
    }
    bindings.sort_by_key(|b| std::cmp::Reverse(b.q));
    // Kept as long as the registration lasts: no spare room.
    bindings.shrink_to_fit();
    Ok(Registered {
        aor,
        changes,
        bindings: Arc::new(bindings),
        previous: current,
    })
}
