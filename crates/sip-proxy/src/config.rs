//! What the proxy core needs to know about its deployment.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use registrar::RegistrarConfig;
use sip_message::Protocol;
use sip_transaction::TimerConfig;

use crate::branch::BranchSecret;
use crate::guard::GuardConfig;

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Domains we are responsible for, canonical (`sip_message::canonical_domain`).
    pub domains: Vec<String>,
    /// Domains hosted from the database (`ferrosip domain add`), replaced while running.
    pub hosted: HostedDomains,
    /// The addresses we put in Via and Record-Route, one per protocol and family we listen on.
    pub advertised: Vec<(Protocol, SocketAddr)>,
    /// Timer C: how long an INVITE branch may stay without a final response.
    pub timer_c: Duration,
    /// Transaction timers.
    pub timers: TimerConfig,
    /// Registrar policy.
    pub registrar: RegistrarConfig,
    /// Value of the Server and User-Agent headers we write.
    pub agent: String,
    /// The digest algorithms challenges offer, the preferred first.
    pub digest_algorithms: Vec<auth::Algorithm>,
    /// Realms (canonical domains) whose challenges offer other algorithms than
    /// `digest_algorithms`.
    pub realm_algorithms: HashMap<String, Vec<auth::Algorithm>>,
    /// How long a digest nonce stays good; older ones are answered with `stale=true`.
    pub nonce_lifetime: Duration,
    /// Peers (gateways, other proxies) whose requests `allow_trusted()` lets in without
    /// authentication.
    pub trusted: Vec<ipnet::IpNet>,
    /// Limits per source address: floods and failed authentications.
    pub guard: GuardConfig,
    /// Most REGISTERs whose bindings may wait to be written; past it, REGISTERs are
    /// answered 503 with Retry-After (the database is too slow).
    pub max_pending_writes: usize,
    /// Most transactions kept at once; past it, new requests are answered without state
    /// (once, never retransmitted) and not relayed statefully (503 with Retry-After).
    pub max_transactions: usize,
    /// Key of the tags in our Via branches: only responses that carry a tag made with it
    /// reach a transaction. Fill it with random bytes at start (one per process).
    pub branch_secret: BranchSecret,
    /// Key of the tokens in our Record-Route entries: the same for every server sharing a
    /// database, kept across restarts (the dialogs go on).
    pub route_secret: crate::RouteSecret,
    /// Key of the digest nonces: a nonce made under another key is refused. Fill it with
    /// random bytes at start (one per process).
    pub nonce_secret: NonceSecret,
    /// A call whose media the relay cannot take (no ports left, no answer) proceeds with
    /// its own SDP instead of getting 503.
    pub media_optional: bool,
    /// Bounds on the calls `dlg_manage()` follows (how many, how long).
    pub calls: dialog::Limits,
    /// Limits and intervals of the presence server.
    pub presence: presence::Config,
    /// Bounds on the messages kept for users who are offline (`m_store()`).
    pub messages: message_store::Limits,
}

/// The key of our digest nonces, given by the IO layer; never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NonceSecret(pub [u8; 32]);

impl std::fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceSecret(..)")
    }
}

impl ProxyConfig {
    /// The address to advertise for `protocol` towards an address of `dest`'s family.
    pub fn advertised_for(&self, protocol: Protocol, dest: SocketAddr) -> Option<SocketAddr> {
        self.advertised
            .iter()
            .find(|(p, a)| *p == protocol && a.is_ipv4() == dest.is_ipv4())
            .or_else(|| {
                self.advertised
                    .iter()
                    .find(|(_, a)| a.is_ipv4() == dest.is_ipv4())
            })
            .map(|(_, a)| *a)
    }

    /// The advertised address of the interface a request from `src` came in on at `local`
    /// (the address it was sent to when we listen on one, else the one reaching `src`).
    pub fn inbound_interface(
        &self,
        protocol: Protocol,
        src: SocketAddr,
        local: SocketAddr,
    ) -> Option<SocketAddr> {
        let named = !local.ip().is_unspecified()
            && self
                .advertised
                .iter()
                .any(|&(p, a)| p == protocol && a == local);
        if named {
            Some(local)
        } else {
            self.advertised_for(protocol, src)
        }
    }

    /// True when a Request-URI with this host and port is ours to resolve (registrar,
    /// location): the host is one of our domains and the port, if any, one we listen on.
    pub fn is_local_target(&self, host: &str, port: Option<u16>) -> bool {
        self.is_local_domain(host)
            && port.is_none_or(|p| self.advertised.iter().any(|(_, a)| a.port() == p))
    }

    /// The digest algorithms offered (and accepted) in `realm`, the preferred first.
    pub fn digest_algorithms_for(&self, realm: &str) -> &[auth::Algorithm] {
        if self.realm_algorithms.is_empty() {
            return &self.digest_algorithms;
        }
        self.realm_algorithms
            .get(sip_message::canonical_domain(realm).as_ref())
            .unwrap_or(&self.digest_algorithms)
    }

    /// True when requests from `ip` come from a trusted peer.
    pub fn is_trusted(&self, ip: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// True when `host` (as written in a URI: any case, IPv6 in brackets, a trailing dot) is
    /// one of our domains.
    pub fn is_local_domain(&self, host: &str) -> bool {
        let host = sip_message::canonical_domain(host);
        self.domains.iter().any(|d| *d == host) || self.hosted.contains(&host)
    }
}

/// The set of hosted domains, shared by every clone of the configuration and replaced as a
/// whole (lock-free reads).
#[derive(Debug, Clone, Default)]
pub struct HostedDomains(Arc<ArcSwap<HashSet<String>>>);

impl HostedDomains {
    /// Replaces the set (lower-case names).
    pub fn replace(&self, domains: HashSet<String>) {
        self.0.store(Arc::new(domains));
    }

    /// True when the canonical domain `host` is in the set.
    pub fn contains(&self, host: &str) -> bool {
        let set = self.0.load();
        !set.is_empty() && set.contains(host)
    }

    /// The domains, sorted.
    pub fn list(&self) -> Vec<String> {
        let mut v: Vec<String> = self.0.load().iter().cloned().collect();
        v.sort();
        v
    }
}
