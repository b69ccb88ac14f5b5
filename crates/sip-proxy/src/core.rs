//! The core: configuration, the state shared by all IO tasks (sharded contexts, location,
//! subscribers, DNS answers, the routing script), and what the script's functions ask of it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use registrar::Location;
use sip_message::{Message, Protocol, Uri};
use sip_transaction::{Role, TransactionKey};

use crate::config::ProxyConfig;
use crate::context::{Context, Received};
use crate::dns::{Answer, DnsCache, Failed, Found};
use crate::guard::Guard;
use crate::refresh::RefreshedTargets;
use crate::routing::{default_script, ProxyScript};
use crate::shard::Shards;
use crate::target::{Destination, Lookup, NextHop};

/// Prefix of the branches of statefully forwarded requests (the rest: see `branch`).
pub(crate) const STATEFUL: &str = "z9hG4bKfs-";
/// Prefix of the branches of statelessly forwarded requests.
pub(crate) const STATELESS: &str = "z9hG4bKsl-";
/// The methods we name in Allow.
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, INFO, UPDATE, PRACK, SUBSCRIBE, NOTIFY, REFER";

/// The proxy, registrar and redirect server. Shared by all IO tasks; state is sharded so
/// that no lock is global.
pub struct Core {
    cfg: ProxyConfig,
    pub(crate) location: Arc<Location>,
    shards: Shards,
    dns: DnsCache,
    /// Next hops that failed lately.
    failed: Failed,
    /// The names TLS next hops were found by.
    names: crate::names::Names,
    /// The calls followed (`dlg_manage()`).
    pub(crate) dialogs: crate::dialogs::Dialogs,
    /// The presence server (`handle_subscribe()`, `handle_publish()`).
    pub(crate) presence: crate::presences::Presences,
    /// Messages kept for users who are offline (`m_store()`).
    pub(crate) offline: crate::offline::Offline,
    script: ArcSwap<ProxyScript>,
    /// Digest challenges and checks (nonces under a secret of this process).
    pub(crate) auth: auth::Authenticator,
    /// Who may authenticate, replaced as a whole when the subscribers change.
    subscribers: ArcSwap<auth::Subscribers>,
    /// Aliases: `user@domain` (domain lower case) to the `user@domain` it stands for.
    aliases: ArcSwap<HashMap<String, String>>,
    /// Requests refused for wrong credentials, since start.
    auth_failures: AtomicU64,
    /// Flood and failed-authentication limits per source.
    pub(crate) guard: Guard,
    /// REGISTERs whose bindings are being written (their answers wait).
    writes: AtomicUsize,
    /// When the writes last moved (one ended, or the first of a batch was admitted), in
    /// milliseconds after the shards' epoch: 64·T1 without progress, they are stalled.
    writes_moved: AtomicI64,
    /// Unix time in milliseconds at the shards' epoch, as the IO layer last told.
    wall_ms: AtomicI64,
    /// When a registration limit was last logged (Unix seconds): once in 10 s at most.
    limit_logged: AtomicU64,
    /// Remote targets refreshed inside dialogs, which their Route keys do not cover.
    pub(crate) refreshed: RefreshedTargets,
    /// Our advertised addresses as Via and Record-Route write them (made once, not for
    /// every relayed request).
    local_texts: Vec<(SocketAddr, String)>,
    /// When the bindings behind NAT last answered a keepalive.
    pub(crate) keepalives: crate::keepalive::Pinged,
    /// What each WebSocket connection registered.
    pub(crate) ws_registered: crate::flow::Registered,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Where the responses to a request go (RFC 3261 §18.2.2, RFC 3581): for streams, back over
/// the request's connection, or once it is gone a new one to the source IP and the Via port
/// (`rport` is for unreliable transports only, RFC 3581 §4: the port of a closed connection
/// leads nowhere; over WebSocket only the connection leads anywhere); otherwise to the
/// source address when `rport` was asked for, else to the source IP and the Via port.
pub(crate) fn upstream_of(msg: &Message, src: Destination) -> Destination {
    match msg.top_via() {
        Ok(via) => upstream_by(&via, src),
        Err(_) => src,
    }
}

/// [`upstream_of`] a request whose top Via is `via`.
pub(crate) fn upstream_by(via: &sip_message::header::Via<'_>, src: Destination) -> Destination {
    if src.protocol.is_websocket() {
        // A browser is reached over its connection only: the Via names nothing.
        return Destination::flow(src.protocol, src.addr);
    }
    let port = via.port.unwrap_or(src.protocol.default_port());
    let via_port = SocketAddr::new(src.addr.ip(), port);
    if src.protocol.is_reliable() {
        return Destination {
            protocol: src.protocol,
            addr: via_port,
            connection: Some(src.addr),
            name: None,
        };
    }
    match via.rport() {
        None => Destination::new(src.protocol, via_port),
        Some(_) => src,
    }
}

/// Where a response is sent after our Via is removed: its new top Via (received, rport).
pub(crate) fn response_destination(resp: &Message) -> Option<Destination> {
    let via = resp.top_via().ok()?;
    let protocol = Protocol::from_token(via.transport)?;
    let ip = via
        .received()
        .and_then(|h| h.ip())
        .or_else(|| via.host.ip())?;
    let port = via.rport().flatten().or(via.port);
    let port = port.unwrap_or(protocol.default_port());
    Some(Destination::new(protocol, SocketAddr::new(ip, port)))
}

impl Core {
    /// A core with this configuration and location service, running the default script.
    pub fn new(cfg: ProxyConfig, location: Arc<Location>) -> Core {
        Core::with_script(cfg, location, default_script())
    }

    /// A core running this routing script.
    pub fn with_script(
        cfg: ProxyConfig,
        location: Arc<Location>,
        script: Arc<ProxyScript>,
    ) -> Core {
        // A request is retransmitted for 64·T1 at most (RFC 3261 §17.1.2.2).
        let window = (cfg.timers.t1 * 64).as_secs_f64().ceil() as u64;
        let lifetime = cfg.nonce_lifetime.as_secs();
        let auth = auth::Authenticator::new(&cfg.nonce_secret.0, lifetime, window);
        let shards = Shards::new(digest_key(&cfg));
        let mut local_texts: Vec<_> = cfg
            .advertised
            .iter()
            .map(|&(_, a)| (a, crate::relay::sock_text(a)))
            .collect();
        local_texts.dedup();
        let dialogs = crate::dialogs::Dialogs::new(cfg.calls);
        let presence = crate::presences::Presences::new(cfg.presence);
        let offline = crate::offline::Offline::new(cfg.messages);
        Core {
            guard: Guard::new(cfg.guard),
            cfg,
            location,
            shards,
            dns: DnsCache::default(),
            failed: Failed::default(),
            names: crate::names::Names::default(),
            dialogs,
            presence,
            offline,
            script: ArcSwap::new(script),
            auth,
            subscribers: ArcSwap::default(),
            aliases: ArcSwap::default(),
            auth_failures: AtomicU64::new(0),
            writes: AtomicUsize::new(0),
            writes_moved: AtomicI64::new(0),
            wall_ms: AtomicI64::new(0),
            limit_logged: AtomicU64::new(0),
            refreshed: RefreshedTargets::default(),
            local_texts,
            keepalives: Default::default(),
            ws_registered: Default::default(),
        }
    }

    /// Whether `aor` (`sip:user@domain`) is a user of ours: one of our domains, and a
    /// subscriber once the server has any (until then its domains are open).
    pub(crate) fn is_user(&self, aor: &str) -> bool {
        let Some((user, domain)) = aor.split_once(':').and_then(|(_, a)| a.rsplit_once('@')) else {
            return false;
        };
        if !self.cfg.is_local_domain(domain) {
            return false;
        }
        let subscribers = self.subscribers.load();
        subscribers.is_empty() || subscribers.get(user, domain).is_some()
    }

    /// Replaces the subscribers that `www_authorize` and `proxy_authorize` know.
    pub fn set_subscribers(&self, subscribers: Arc<auth::Subscribers>) {
        self.subscribers.store(subscribers);
    }

    /// How many subscribers can authenticate.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load().len()
    }

    /// Our domains, while the server has no subscribers: anyone may register in them (the
    /// default script challenges once there are any, and refuses registrations in domains
    /// that have none).
    pub fn open_domains(&self) -> Vec<String> {
        let subscribers = self.subscribers.load();
        if !subscribers.is_empty() {
            return Vec::new();
        }
        let mut open: Vec<String> = self
            .cfg
            .domains
            .iter()
            .cloned()
            .chain(self.cfg.hosted.list())
            .collect();
        open.sort();
        open.dedup();
        open
    }

    /// The subscribers now.
    pub(crate) fn subscribers(&self) -> arc_swap::Guard<Arc<auth::Subscribers>> {
        self.subscribers.load()
    }

    /// Replaces the aliases `lookup` follows: `user@domain` (domain lower case) to the
    /// `user@domain` whose contacts it reaches.
    pub fn set_aliases(&self, aliases: HashMap<String, String>) {
        self.aliases.store(Arc::new(aliases));
    }

    /// The aliases now.
    pub(crate) fn aliases(&self) -> arc_swap::Guard<Arc<HashMap<String, String>>> {
        self.aliases.load()
    }

    /// Requests refused for wrong credentials (`www_authorize`/`proxy_authorize` returning
    /// -2) since start.
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    /// Counts one refused authentication; an untrusted source gets closer to a ban.
    pub(crate) fn auth_failed(&self, ip: IpAddr, now: Instant) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
        if !self.cfg.is_trusted(ip) {
            self.guard.auth_failed(ip, now);
        }
    }

    /// Logs a registration refused by a limit of the location table, once in 10 s at most
    /// (a flood would fill the log otherwise).
    pub(crate) fn limit_hit(&self, now: Instant, src: std::net::SocketAddr, why: &str) {
        let t = self.unix(now);
        let last = self.limit_logged.load(Ordering::Relaxed);
        let due = t >= last + 10
            && self
                .limit_logged
                .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            let (total, per_source) = (
                self.cfg.registrar.max_bindings,
                self.cfg.registrar.max_bindings_per_source,
            );
            tracing::warn!(
                src = %src.ip(),
                bindings = self.location.len(),
                max_bindings = total,
                max_bindings_per_source = per_source,
                "registration refused: {why} (raise [registrar] max_bindings or max_bindings_per_source if it is legitimate; logged once in 10 s)"
            );
        }
    }

    /// Replaces the routing script: new requests run the new one, transactions in flight
    /// finish under the one they started with.
    pub fn reload(&self, script: Arc<ProxyScript>) {
        self.script.store(script);
    }

    /// The routing script new requests run.
    pub(crate) fn script(&self) -> arc_swap::Guard<Arc<ProxyScript>> {
        self.script.load()
    }

    /// A local address as Via and Record-Route write it (`192.0.2.1:5060`, `[::1]:5060`).
    pub(crate) fn local_text(&self, addr: SocketAddr) -> std::borrow::Cow<'_, str> {
        match self.local_texts.iter().find(|(a, _)| *a == addr) {
            Some((_, text)) => text.as_str().into(),
            None => crate::relay::sock_text(addr).into(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// `x == myself` in a script, for a URI: it designates this server (a bare host is
    /// asked of the configuration's domains).
    pub(crate) fn is_myself_uri(&self, uri: &Uri<'_>) -> bool {
        uri.as_sip()
            .is_some_and(|s| self.cfg.is_local_target(s.host_raw, s.port))
    }

    pub(crate) fn shards(&self) -> &Shards {
        &self.shards
    }

    /// Runs `f` on context `id` under its shard's lock, then re-arms its timer (or forgets
    /// it once done). `None` when there is no such context.
    pub(crate) fn with_ctx<R>(&self, id: u64, f: impl FnOnce(&mut Context) -> R) -> Option<R> {
        let mut shard = self.shards.lock(Shards::of(id));
        let r = f(shard.contexts.get_mut(&id)?);
        shard.settle(id);
        Some(r)
    }

    /// Forgets context `id` if the script left its request without an answer, a branch or
    /// anything to wait for (it was forwarded statelessly, or dropped): a retransmission
    /// is then routed again.
    pub(crate) fn release_if_unused(&self, id: u64) {
        let mut shard = self.shards.lock(Shards::of(id));
        if shard.contexts.get(&id).is_some_and(|c| c.is_unused()) {
            shard.remove(id);
        }
    }

    /// A context for `msg` that no retransmission will match.
    pub(crate) fn bare_context(
        &self,
        now: Instant,
        msg: &Message,
        src: Destination,
    ) -> Option<Box<Context>> {
        let key = TransactionKey::for_request(msg, Role::Server).ok()?;
        let received = Received {
            key: self.shards.digest(&key),
            request: Box::new(msg.clone()),
            upstream: upstream_of(msg, src),
        };
        Some(Context::new(now, &self.cfg, received))
    }

    /// Takes a slot for a binding write, unless `max_pending_writes` are already waiting.
    pub(crate) fn admit_write(&self, now: Instant) -> bool {
        let limit = self.cfg.max_pending_writes;
        let taken = self
            .writes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            });
        if taken == Ok(0) {
            self.writes_moved_at(now);
        }
        taken.is_ok()
    }

    /// Gives back the slot of a binding write.
    pub(crate) fn writes_done(&self, now: Instant) {
        let _ = self
            .writes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.writes_moved_at(now);
    }

    pub(crate) fn writes_moved_at(&self, now: Instant) {
        let ms = self.since_epoch_ms(now);
        self.writes_moved.store(ms, Ordering::Relaxed);
    }

    /// When writes still pending count as stalled (64·T1 without one ending), if any are.
    pub(crate) fn writes_stall_at(&self) -> Option<Instant> {
        if self.writes.load(Ordering::Acquire) == 0 {
            return None;
        }
        let moved = self
            .writes_moved
            .load(Ordering::Relaxed)
            .max(0)
            .unsigned_abs();
        let epoch = self.shards.started()?;
        Some(epoch + Duration::from_millis(moved) + self.cfg.timers.timeout())
    }

    /// True when `max_transactions` contexts are alive: no new one is made.
    pub(crate) fn at_capacity(&self) -> bool {
        self.shards.len() >= self.cfg.max_transactions
    }

    /// Number of live proxy contexts (server transactions and what waits on them).
    pub fn active_transactions(&self) -> usize {
        self.shards.len()
    }

    /// Where a next hop leads now: an address, a name still to look up, or nowhere (the name
    /// does not resolve to an address family we listen on).
    pub(crate) fn locate(&self, now: Instant, hop: NextHop, msg: &Message) -> Located {
        let lookup = match hop {
            NextHop::Addr(d) => return Located::Ready(d, Vec::new()),
            NextHop::Name(lookup) => lookup,
        };
        match self.dns.get(now, &lookup) {
            Answer::Unknown => Located::Pending(lookup),
            // In order for this request (the weights' choice follows its Call-ID), those
            // we have an interface for, lately failed ones last (RFC 3263 §4.3).
            Answer::Known(found) => {
                // Keyed: a caller cannot pick Call-IDs that all land on one target.
                let mut h = siphasher::sip::SipHasher24::new_with_key(&self.cfg.route_secret.0);
                std::hash::Hasher::write(&mut h, msg.call_id().unwrap_or_default().as_bytes());
                let seed = std::hash::Hasher::finish(&h);
                let usable = sip_dns::order(&found, draws(seed))
                    .into_iter()
                    .filter(|&(p, a)| self.cfg.advertised_for(p, a).is_some())
                    .collect();
                // Over TLS, the name the certificate must show: the domain looked up.
                let name = found.iter().any(|f| f.protocol.is_secure());
                let name = name.then(|| self.names.intern(&lookup.host));
                let mut hops = self.failed.order(now, usable).into_iter().map(|(p, a)| {
                    let name = name.filter(|_| p.is_secure());
                    Destination {
                        name,
                        ..Destination::new(p, a)
                    }
                });
                match hops.next() {
                    Some(first) => Located::Ready(first, hops.collect()),
                    None => Located::Unreachable,
                }
            }
        }
    }

    /// The name a TLS connection to `dest` must check the certificate against: the name
    /// it was found by. `None` when it has none (an address, or not TLS), or when that name
    /// is no longer kept: with [`Destination::name`] set, the send must then fail.
    pub fn name_of(&self, dest: &Destination) -> Option<Arc<str>> {
        self.names.get(dest.name?)
    }

    /// A next hop failed (no answer, a transport error, 503): lookups give it last for a
    /// while.
    pub(crate) fn hop_failed(&self, now: Instant, hop: Destination) {
        self.failed.note(now, (hop.protocol, hop.addr));
    }

    /// Stores the answer to a [`Command::Resolve`] lookup: the SRV targets (or the host's
    /// addresses) it leads to (none: nowhere), valid for `ttl` (at least a few seconds).
    pub fn dns_answer(&self, now: Instant, lookup: &Lookup, found: Vec<Found>, ttl: Duration) {
        self.dns.insert(now, lookup, found, ttl);
    }

    /// A connection closed: the bindings a WebSocket client registered over it go (it is
    /// reached over nothing else); the commands that store that.
    pub fn connection_closed(
        &self,
        now: Instant,
        protocol: Protocol,
        remote: SocketAddr,
    ) -> Vec<crate::Command> {
        if !protocol.is_websocket() {
            return Vec::new();
        }
        let source = format!("{protocol}:{remote}");
        let now_unix = self.unix(now);
        let changes: Vec<registrar::Change> = self
            .ws_registered
            .closed(protocol, remote)
            .iter()
            .flat_map(|aor| self.location.lookup(aor, now_unix))
            .filter(|b| b.source == source)
            .filter_map(|b| self.location.remove_binding(&b))
            .collect();
        if changes.is_empty() {
            return Vec::new();
        }
        let mut out = self.presence_location(now, &changes);
        out.push(crate::Command::Persist {
            changes,
            then: None,
        });
        out
    }

    /// Purges the bindings expired at `now`; returns the changes to persist.
    pub fn purge_expired(&self, now: Instant) -> Vec<registrar::Change> {
        self.location.purge_expired(self.unix(now))
    }

    /// Tells the core the wall-clock time (since the Unix epoch) at `now`: bindings and
    /// nonces are dated with it. The IO layer calls it at start and now and then, so that
    /// a step of the system clock is followed.
    pub fn set_wall_clock(&self, now: Instant, unix: Duration) {
        let since = self.since_epoch_ms(now);
        let unix_ms = i64::try_from(unix.as_millis()).unwrap_or(i64::MAX);
        self.wall_ms.store(unix_ms - since, Ordering::Relaxed);
    }

    /// Unix time in seconds at `now`.
    pub(crate) fn unix(&self, now: Instant) -> u64 {
        self.unix_ms(now) / 1000
    }

    /// Unix time in milliseconds at `now`.
    pub(crate) fn unix_ms(&self, now: Instant) -> u64 {
        let ms = self.wall_ms.load(Ordering::Relaxed) + self.since_epoch_ms(now);
        u64::try_from(ms).unwrap_or(0)
    }

    fn since_epoch_ms(&self, now: Instant) -> i64 {
        let epoch = self.shards.epoch(now);
        i64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(i64::MAX)
    }
}

/// The key of transaction key digests: the branch secret, made a key of its own.
fn digest_key(cfg: &ProxyConfig) -> [u8; 16] {
    let mut key = cfg.branch_secret.0;
    for b in &mut key {
        *b ^= 0x5c;
    }
    key
}

/// Numbers from 0 to `n` inclusive, drawn from `seed` (SplitMix64): a weighted choice the
/// same for every retransmission of a request, and spread over requests.
fn draws(mut seed: u64) -> impl FnMut(u32) -> u32 {
    move |n| {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // (At most n, which fits in u32.)
        (z % (u64::from(n) + 1)) as u32
    }
}

/// What a next hop resolves to at the moment.
pub(crate) enum Located {
    /// Where to send, and where to try next if that fails (a name's other addresses).
    Ready(Destination, Vec<Destination>),
    /// This must be looked up first.
    Pending(Lookup),
    Unreachable,
}
