//! Locating a SIP server from a URI (RFC 3263 §4), without IO: which DNS records to ask for,
//! and in what order to try what they name (NAPTR order and preference, SRV priority and
//! weight as RFC 2782 says). The IO layer asks, hands the answers in, and tries the transport
//! addresses it gets, best first, moving on to the next when one fails (§4.3).

use sip_message::Protocol;

/// Where a URI with a host name leads, as far as the URI says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host name, lower case.
    pub host: String,
    /// The port the URI names: then no SRV is asked for (§4.2).
    pub port: Option<u16>,
    /// The transport the URI names (`transport=`).
    pub transport: Option<Protocol>,
    /// A `sips:` URI: TLS only.
    pub secure: bool,
}

/// What to ask DNS for first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The host's addresses (A and AAAA), reached over `protocol` at `port`.
    Addresses {
        /// The transport.
        protocol: Protocol,
        /// The port.
        port: u16,
    },
    /// These SRV names in turn, each with its transport; what the first that exists names
    /// (and the rest after it). None: the host's addresses at the default port of the first.
    Srv(Vec<(Protocol, String)>),
    /// The host's NAPTR records ([`services`]); none: [`Target::srv_names`].
    Naptr,
}

impl Target {
    /// What to ask for first (§4.1, §4.2).
    pub fn plan(&self) -> Plan {
        match (self.transport, self.port) {
            (transport, Some(port)) => Plan::Addresses {
                protocol: self.protocol_for(transport),
                port,
            },
            (Some(t), None) => {
                let protocol = self.protocol_for(Some(t));
                Plan::Srv(srv_name(protocol, &self.host).into_iter().collect())
            }
            (None, None) => Plan::Naptr,
        }
    }

    /// The transport to use when the URI names `transport` (or none, and no NAPTR or SRV
    /// says): TLS for a `sips:` URI (its `transport=tcp` is TLS over TCP, RFC 5630 §3.1.2).
    fn protocol_for(&self, transport: Option<Protocol>) -> Protocol {
        match (transport, self.secure) {
            (Some(Protocol::Ws | Protocol::Wss), true) => Protocol::Wss,
            (_, true) => Protocol::Tls,
            (Some(t), false) => t,
            (None, false) => Protocol::Udp,
        }
    }

    /// The SRV names to try without NAPTR records, for transports we `support` (§4.1):
    /// `_sips._tcp` for a `sips:` URI; UDP, TCP, then TLS for a `sip:` one.
    pub fn srv_names(&self, support: &[Protocol]) -> Vec<(Protocol, String)> {
        let order: &[Protocol] = match self.secure {
            true => &[Protocol::Tls],
            false => &[Protocol::Udp, Protocol::Tcp, Protocol::Tls],
        };
        order
            .iter()
            .filter(|p| support.contains(p))
            .filter_map(|&p| srv_name(p, &self.host))
            .collect()
    }

    /// Where the host's addresses lead: with the plan's port, or when no SRV record exists
    /// the default port of the transport the plan had first, or NAPTR's first `services`
    /// (RFC 3263 §4.2; without any, UDP, or TLS for `sips:`).
    pub fn fallback(&self, plan: &Plan, services: &[(Protocol, String)]) -> (Protocol, u16) {
        let first = |names: &[(Protocol, String)]| {
            names.first().map_or(self.protocol_for(None), |(p, _)| *p)
        };
        let protocol = match plan {
            Plan::Addresses { protocol, port } => return (*protocol, *port),
            Plan::Srv(names) => first(names),
            Plan::Naptr => first(services),
        };
        (protocol, protocol.default_port())
    }
}

/// The SRV name of a transport (RFC 3263 §4.2: `_sip._udp`, `_sip._tcp`, `_sips._tcp`);
/// none for WebSocket, which has no SRV service.
fn srv_name(protocol: Protocol, host: &str) -> Option<(Protocol, String)> {
    let prefix = match protocol {
        Protocol::Udp => "_sip._udp",
        Protocol::Tcp => "_sip._tcp",
        Protocol::Tls => "_sips._tcp",
        Protocol::Ws | Protocol::Wss => return None,
    };
    Some((protocol, format!("{prefix}.{host}")))
}

/// A NAPTR record (RFC 3403), as much of it as SIP uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower first.
    pub order: u16,
    /// Lower first among equal `order`.
    pub preference: u16,
    /// `S`: the replacement is an SRV name (the only flag SIP uses).
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, `SIP+D2W`, `SIPS+D2W`.
    pub service: String,
    /// The SRV name.
    pub replacement: String,
}

/// The transport a NAPTR service names (RFC 3263 §4.1, RFC 7118 §11.3).
fn service_protocol(service: &str) -> Option<Protocol> {
    [
        ("SIP+D2U", Protocol::Udp),
        ("SIP+D2T", Protocol::Tcp),
        ("SIPS+D2T", Protocol::Tls),
        ("SIP+D2W", Protocol::Ws),
        ("SIPS+D2W", Protocol::Wss),
    ]
    .into_iter()
    .find(|(s, _)| service.eq_ignore_ascii_case(s))
    .map(|(_, p)| p)
}

/// The SRV names NAPTR records lead to, best first, with their transports: records of a
/// service we `support` (TLS only for a `sips:` URI) with flag `S`, by order then
/// preference (§4.1).
pub fn services(records: &[Naptr], secure: bool, support: &[Protocol]) -> Vec<(Protocol, String)> {
    let mut usable: Vec<(&Naptr, Protocol)> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| Some((r, service_protocol(&r.service)?)))
        .filter(|(_, p)| support.contains(p) && (!secure || p.is_secure()))
        .collect();
    usable.sort_by_key(|(r, _)| (r.order, r.preference));
    let mut names: Vec<(Protocol, String)> = Vec::new();
    for (r, p) in usable {
        let name = r.replacement.trim_end_matches('.').to_ascii_lowercase();
        if !name.is_empty() && !names.contains(&(p, name.clone())) {
            names.push((p, name));
        }
    }
    names
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower first.
    pub priority: u16,
    /// Share of the load among equal priority.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The host name (`.`: no service here).
    pub target: String,
}

/// The addresses one SRV target (or the host itself, without SRV) led to, with what orders
/// it among the others: the rank of its NAPTR service or SRV name, then its SRV priority
/// and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The transport.
    pub protocol: Protocol,
    /// The order of its service (its NAPTR record's, or its SRV name's), best first.
    pub rank: u16,
    /// Its SRV priority: lower first.
    pub priority: u16,
    /// Its SRV weight: its share among equal rank and priority.
    pub weight: u16,
    /// Its addresses, with the SRV port.
    pub addrs: Vec<std::net::SocketAddr>,
}

/// The transport addresses to try, best first (RFC 2782): by rank and priority, and within
/// equal ones by a weighted random choice made again for each request; `random(n)` gives a
/// number from 0 to `n` inclusive.
pub fn order(
    found: &[Found],
    mut random: impl FnMut(u32) -> u32,
) -> Vec<(Protocol, std::net::SocketAddr)> {
    let mut sorted: Vec<&Found> = found.iter().collect();
    sorted.sort_by_key(|f| (f.rank, f.priority));
    let mut ordered = Vec::new();
    for group in sorted.chunk_by(|a, b| (a.rank, a.priority) == (b.rank, b.priority)) {
        // By running sums of the weights (RFC 2782), each target's chance its share of the
        // total: the draw is below the total (RFC 2782's "0 to the sum inclusive" gives the
        // first a place more, so 1:3 would come out as 2:3 or 1:4 by answer order). Weight
        // 0 goes after the others, in order.
        let mut left: Vec<&Found> = group.to_vec();
        while !left.is_empty() {
            let total: u32 = left.iter().map(|f| u32::from(f.weight)).sum();
            let i = match total {
                0 => 0,
                _ => {
                    let pick = random(total - 1).min(total - 1);
                    let mut sum = 0;
                    left.iter()
                        .position(|f| {
                            sum += u32::from(f.weight);
                            sum > pick
                        })
                        .unwrap_or(0)
                }
            };
            let f = left.remove(i);
            ordered.extend(f.addrs.iter().map(|&a| (f.protocol, a)));
        }
    }
    ordered
}

#[cfg(test)]
mod tests;
