//! RFC 3263 over hickory-resolver: NAPTR, then SRV, then A and AAAA, as `sip_dns` plans
//! them; the SRV targets (or the host) a lookup leads to with their addresses, which the
//! core orders for each request, and how long the answer holds (the shortest TTL met on the
//! way).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use sip_dns::{Found, Naptr, Plan, Srv};
use sip_message::Protocol;
use sip_proxy::Lookup;

/// The transports a NAPTR or SRV record may lead us to (we never connect out over
/// WebSocket).
const SUPPORT: [Protocol; 3] = [Protocol::Udp, Protocol::Tcp, Protocol::Tls];

/// Most addresses kept for one lookup, and for one target of each address family: enough
/// to fail over, not a list a zone can grow.
const MAX_FOUND: usize = 16;
const MAX_ADDRESSES: usize = 4;
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

/// Where `lookup` leads, and for how long; nowhere when that takes longer than
/// [`LOOKUP_TIME`].
pub(crate) async fn locate(resolver: &TokioResolver, lookup: &Lookup) -> (Vec<Found>, Duration) {
    match tokio::time::timeout(LOOKUP_TIME, locate_within(resolver, lookup)).await {
        Ok(found) => found,
        Err(_) => {
            tracing::info!(host = %lookup.host, "next hop lookup timed out");
            (Vec::new(), NEGATIVE_TTL)
        }
    }
}

async fn locate_within(resolver: &TokioResolver, lookup: &Lookup) -> (Vec<Found>, Duration) {
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
    // Without SRV records, the host's addresses with the transport NAPTR chose, if it did
    // (RFC 3263 §4.2).
    let fallback = lookup.fallback(&plan, &names);
    let mut found: Vec<Found> = Vec::new();
    let mut count = 0;
    // An SRV answer, even one that says "no such service" (`.`), rules out the fallback
    // to the host's own addresses (RFC 2782).
    let mut served = false;
    for ((protocol, name), rank) in names.into_iter().take(MAX_SERVICES).zip(0..) {
        let mut records = srv(resolver, &name, &mut valid).await;
        served |= !records.is_empty();
        // The best priorities first, before the caps take their share.
        records.sort_by_key(|r| r.priority);
        let targets = records.into_iter().filter(|r| r.target != ".");
        for r in targets.take(MAX_TARGETS) {
            if count >= MAX_FOUND {
                break;
            }
            let addrs = addresses(resolver, &r.target, r.port, &mut valid).await;
            count += addrs.len();
            found.push(Found {
                protocol,
                rank,
                priority: r.priority,
                weight: r.weight,
                addrs,
            });
        }
    }
    found.retain(|f| !f.addrs.is_empty());
    if found.is_empty() && !served {
        let (protocol, port) = fallback;
        let addrs = addresses(resolver, &lookup.host, port, &mut valid).await;
        if !addrs.is_empty() {
            found.push(Found {
                protocol,
                rank: 0,
                priority: 0,
                weight: 0,
                addrs,
            });
        }
    }
    if found.is_empty() {
        tracing::info!(host = %lookup.host, "next hop does not resolve");
    }
    let ttl = valid.ttl(!found.is_empty());
    (found, ttl)
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
                target: s.target().to_ascii().to_ascii_lowercase(),
            }),
            _ => None,
        })
        .collect()
}

/// The addresses of `host` (A and AAAA, a few), at `port`.
async fn addresses(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    valid: &mut Validity,
) -> Vec<SocketAddr> {
    let Ok(ips) = resolver.lookup_ip(host).await else {
        return Vec::new();
    };
    valid.meet(ips.valid_until());
    // Each family has its share: the core keeps those it has an interface for, which one
    // family answering first must not crowd out.
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for ip in ips.iter() {
        let a = SocketAddr::new(ip, port);
        let of_family = addrs.iter().filter(|x| x.is_ipv4() == a.is_ipv4()).count();
        if of_family < MAX_ADDRESSES && !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    addrs
}
