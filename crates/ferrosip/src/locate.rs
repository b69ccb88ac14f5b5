//! RFC 3263 over hickory-resolver: NAPTR, then SRV, then A and AAAA, as `sip_dns` plans and
//! orders them; the transport addresses a lookup leads to, best first, and how long the
//! answer holds (the shortest TTL met on the way).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use sip_dns::{Naptr, Plan, Srv};
use sip_message::Protocol;
use sip_proxy::Lookup;

/// The transports a NAPTR or SRV record may lead us to (we never connect out over
/// WebSocket).
const SUPPORT: [Protocol; 3] = [Protocol::Udp, Protocol::Tcp, Protocol::Tls];

/// Most addresses kept for one lookup: enough to fail over, not a list a zone can grow.
const MAX_FOUND: usize = 16;
/// Most NAPTR services, and SRV targets per service, followed for one lookup: a zone
/// cannot make one request cost many queries.
const MAX_SERVICES: usize = 4;
const MAX_TARGETS: usize = 8;
/// How long one lookup may take in all, its queries one after the other.
const LOOKUP_TIME: Duration = Duration::from_secs(10);

/// How long an answer that leads nowhere is kept.
pub(crate) const NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// The shortest validity met so far.
struct Validity(Option<Instant>);

impl Validity {
    fn meet(&mut self, until: Instant) {
        self.0 = Some(self.0.map_or(until, |u| u.min(until)));
    }

    fn ttl(&self, found: bool) -> Duration {
        match (found, self.0) {
            (true, Some(until)) => until.saturating_duration_since(Instant::now()),
            _ => NEGATIVE_TTL,
        }
    }
}

/// Where `lookup` leads, best first, and for how long; nowhere when that takes longer
/// than [`LOOKUP_TIME`].
pub(crate) async fn locate(
    resolver: &TokioResolver,
    lookup: &Lookup,
) -> (Vec<(Protocol, SocketAddr)>, Duration) {
    match tokio::time::timeout(LOOKUP_TIME, locate_within(resolver, lookup)).await {
        Ok(found) => found,
        Err(_) => {
            tracing::info!(host = %lookup.host, "next hop lookup timed out");
            (Vec::new(), NEGATIVE_TTL)
        }
    }
}

async fn locate_within(
    resolver: &TokioResolver,
    lookup: &Lookup,
) -> (Vec<(Protocol, SocketAddr)>, Duration) {
    let mut valid = Validity(None);
    let plan = lookup.plan();
    let names = match &plan {
        Plan::Addresses { .. } => Vec::new(),
        Plan::Srv(names) => names.clone(),
        Plan::Naptr => {
            let records = naptr(resolver, &lookup.host, &mut valid).await;
            let names = sip_dns::services(&records, lookup.secure, &SUPPORT);
            if names.is_empty() {
                lookup.srv_names(&SUPPORT)
            } else {
                names
            }
        }
    };
    let mut found = Vec::new();
    // An SRV answer, even one that says "no such service" (`.`), rules out the fallback
    // to the host's own addresses (RFC 2782).
    let mut served = false;
    for (protocol, name) in names.into_iter().take(MAX_SERVICES) {
        let records = srv(resolver, &name, &mut valid).await;
        served |= !records.is_empty();
        let targets = sip_dns::srv_order(&records, random);
        for (host, port) in targets.into_iter().take(MAX_TARGETS) {
            addresses(resolver, &host, (protocol, port), &mut valid, &mut found).await;
        }
    }
    if found.is_empty() && !served {
        let hop = lookup.fallback(&plan);
        addresses(resolver, &lookup.host, hop, &mut valid, &mut found).await;
    }
    if found.is_empty() {
        tracing::info!(host = %lookup.host, "next hop does not resolve");
    }
    let ttl = valid.ttl(!found.is_empty());
    (found, ttl)
}

/// A uniform random number from 0 to `n` inclusive (SRV weights).
fn random(n: u32) -> u32 {
    let r = getrandom::u32().unwrap_or(0);
    match n.checked_add(1) {
        Some(m) => r % m,
        None => r,
    }
}

async fn naptr(resolver: &TokioResolver, host: &str, valid: &mut Validity) -> Vec<Naptr> {
    let Ok(answer) = resolver.lookup(host, RecordType::NAPTR).await else {
        return Vec::new();
    };
    valid.meet(answer.valid_until());
    answer
        .iter()
        .filter_map(|r| match r {
            RData::NAPTR(n) => Some(Naptr {
                order: n.order(),
                preference: n.preference(),
                flags: String::from_utf8_lossy(n.flags()).into_owned(),
                service: String::from_utf8_lossy(n.services()).into_owned(),
                replacement: n.replacement().to_ascii(),
            }),
            _ => None,
        })
        .collect()
}

async fn srv(resolver: &TokioResolver, name: &str, valid: &mut Validity) -> Vec<Srv> {
    let Ok(answer) = resolver.lookup(name, RecordType::SRV).await else {
        return Vec::new();
    };
    valid.meet(answer.valid_until());
    answer
        .iter()
        .filter_map(|r| match r {
            RData::SRV(s) => Some(Srv {
                priority: s.priority(),
                weight: s.weight(),
                port: s.port(),
                target: s.target().to_ascii(),
            }),
            _ => None,
        })
        .collect()
}

/// Adds the addresses of `host` (A and AAAA) to `found`, reached over `protocol` at `port`.
async fn addresses(
    resolver: &TokioResolver,
    host: &str,
    (protocol, port): (Protocol, u16),
    valid: &mut Validity,
    found: &mut Vec<(Protocol, SocketAddr)>,
) {
    if found.len() >= MAX_FOUND {
        return;
    }
    let Ok(ips) = resolver.lookup_ip(host).await else {
        return;
    };
    valid.meet(ips.valid_until());
    for ip in ips.iter() {
        let hop = (protocol, SocketAddr::new(ip, port));
        if found.len() < MAX_FOUND && !found.contains(&hop) {
            found.push(hop);
        }
    }
}
