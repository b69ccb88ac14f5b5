//! Dispatch: every message is matched to its context (retransmissions, responses) or handed
//! to the routing script, which decides what happens to it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use registrar::Location;
use sip_message::{Message, Method, Protocol, Uri};
use sip_transaction::{Role, TransactionKey};

use crate::config::ProxyConfig;
use crate::context::Context;
use crate::dns::{Answer, DnsCache};
use crate::forward::strip_top_via;
use crate::guard::Guard;
use crate::routing::{default_script, Phase, ProxyScript, RouteCtx};
use crate::target::{Destination, NextHop};
use crate::{Command, Resume};

/// Prefix of the branches of statefully forwarded requests: `z9hG4bKfs-<context>-<branch>-<loop>`.
pub(crate) const STATEFUL: &str = "z9hG4bKfs-";
/// Prefix of the branches of statelessly forwarded requests.
pub(crate) const STATELESS: &str = "z9hG4bKsl-";
const SHARDS: usize = 64;
/// The methods we name in Allow.
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, INFO, UPDATE, PRACK, SUBSCRIBE, NOTIFY, REFER";

#[derive(Default)]
pub(crate) struct Shard {
    pub(crate) contexts: HashMap<u64, Context>,
    pub(crate) by_key: HashMap<TransactionKey, u64>,
    pub(crate) timers: BinaryHeap<Reverse<(Instant, u64)>>,
}

/// The proxy, registrar and redirect server. Shared by all IO tasks; state is sharded so
/// that no lock is global.
pub struct Core {
    cfg: ProxyConfig,
    pub(crate) location: Arc<Location>,
    shards: Vec<Mutex<Shard>>,
    next_id: AtomicU64,
    dns: DnsCache,
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
    guard: Guard,
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
/// leads nowhere); otherwise to the source address when `rport` was asked for, else to the
/// source IP and the Via port.
pub(crate) fn upstream_of(msg: &Message, src: Destination) -> Destination {
    let Ok(via) = msg.top_via() else { return src };
    let via_port = SocketAddr::new(src.addr.ip(), via.port.unwrap_or(5060));
    if src.protocol.is_reliable() {
        return Destination {
            protocol: src.protocol,
            addr: via_port,
            connection: Some(src.addr),
        };
    }
    match via.rport() {
        None => Destination::new(src.protocol, via_port),
        Some(_) => src,
    }
}

/// Where a response is sent after our Via is removed: its new top Via (received, rport).
fn response_destination(resp: &Message) -> Option<Destination> {
    let via = resp.top_via().ok()?;
    let protocol = Protocol::from_token(via.transport)?;
    let ip = via
        .received()
        .and_then(|h| h.ip())
        .or_else(|| via.host.ip())?;
    let port = via.rport().flatten().or(via.port).unwrap_or(5060);
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
        let nonce_lifetime = cfg.nonce_lifetime.as_secs();
        Core {
            guard: Guard::new(cfg.guard),
            cfg,
            location,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            next_id: AtomicU64::new(1),
            dns: DnsCache::default(),
            script: ArcSwap::new(script),
            auth: auth::Authenticator::with_random_secret(nonce_lifetime),
            subscribers: ArcSwap::default(),
            aliases: ArcSwap::default(),
            auth_failures: AtomicU64::new(0),
        }
    }

    /// Replaces the subscribers that `www_authorize` and `proxy_authorize` know.
    pub fn set_subscribers(&self, subscribers: Arc<auth::Subscribers>) {
        self.subscribers.store(subscribers);
    }

    /// How many subscribers can authenticate.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load().len()
    }

    /// Our domains that have no subscribers: their registrar is open (the default script
    /// challenges only in domains with subscribers).
    pub fn open_domains(&self) -> Vec<String> {
        let subscribers = self.subscribers.load();
        let mut open: Vec<String> = self
            .cfg
            .domains
            .iter()
            .cloned()
            .chain(self.cfg.hosted.list())
            .filter(|d| !subscribers.has_domain(d))
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

    /// Replaces the routing script: new requests run the new one, transactions in flight
    /// finish under the one they started with.
    pub fn reload(&self, script: Arc<ProxyScript>) {
        self.script.store(script);
    }

    /// The routing script new requests run.
    pub(crate) fn script(&self) -> arc_swap::Guard<Arc<ProxyScript>> {
        self.script.load()
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// `x == myself` in a script: a URI (or bare host) that designates this server.
    pub(crate) fn is_myself(&self, uri: &str) -> bool {
        match Uri::parse(uri) {
            Ok(u) => u
                .as_sip()
                .is_some_and(|s| self.cfg.is_local_target(s.host_raw, s.port)),
            Err(_) => self.cfg.is_local_domain(uri),
        }
    }

    pub(crate) fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn key_shard(key: &TransactionKey) -> usize {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        h.finish() as usize % SHARDS
    }

    /// A context id that lives in shard `shard`.
    pub(crate) fn new_id(&self, shard: usize) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) * SHARDS as u64 + shard as u64
    }

    /// Handles one received message; `src` is where it came from. The local address it
    /// arrived at (`$Ri`) is taken to be the one we advertise towards `src`.
    pub fn handle_message(&self, now: Instant, msg: Message, src: Destination) -> Vec<Command> {
        let local = self
            .cfg
            .advertised_for(src.protocol, src.addr)
            .unwrap_or_else(|| SocketAddr::new(src.addr.ip(), 0));
        self.handle_message_at(now, msg, src, local)
    }

    /// Handles one received message that arrived at local address `local`.
    pub fn handle_message_at(
        &self,
        now: Instant,
        msg: Message,
        src: Destination,
        local: SocketAddr,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        if msg.is_request() {
            self.handle_request(now, msg, src, local, &mut out);
        } else {
            self.handle_response(now, msg, src, local, &mut out);
        }
        out
    }

    fn handle_request(
        &self,
        now: Instant,
        msg: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) {
        let ip = src.addr.ip();
        if !self.cfg.is_trusted(ip) && !self.guard.allow(ip, now) {
            return; // flooding, or banned: not even an answer
        }
        let Ok(key) = TransactionKey::for_request(&msg, Role::Server) else {
            return self.reply(&msg, src, 400, "Bad Request (Via)", &[], out);
        };
        // Retransmissions and ACKs for non-2xx belong to an existing context.
        {
            let shard_i = Self::key_shard(&key);
            let mut shard = self.shard(shard_i);
            if let Some(&id) = shard.by_key.get(&key) {
                if let Some(ctx) = shard.contexts.get_mut(&id) {
                    let absorbed = ctx.on_request(now, &self.cfg, &msg, out);
                    let deadline = ctx.next_deadline();
                    if let Some(d) = deadline {
                        shard.timers.push(Reverse((d, id)));
                    }
                    if absorbed {
                        return;
                    }
                }
            }
        }
        // Everything else is for the script to decide.
        let script = self.script.load();
        let script: &Arc<ProxyScript> = &script;
        let mut ctx = RouteCtx::new(self, script, now, Phase::Request, &msg, src, local, out);
        ctx.key = Some(&key);
        script.run_request(&mut ctx);
    }

    pub(crate) fn store(&self, shard_i: usize, id: u64, key: TransactionKey, ctx: Context) {
        let mut shard = self.shard(shard_i);
        if let Some(d) = ctx.next_deadline() {
            shard.timers.push(Reverse((d, id)));
        }
        if ctx.is_done() {
            return;
        }
        shard.by_key.insert(key, id);
        shard.contexts.insert(id, ctx);
    }

    fn handle_response(
        &self,
        now: Instant,
        resp: Message,
        src: Destination,
        local: SocketAddr,
        out: &mut Vec<Command>,
    ) {
        let Ok(via) = resp.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        if let Some((id, index)) = stateful_branch(branch) {
            let mut shard = self.shard((id % SHARDS as u64) as usize);
            if let Some(ctx) = shard.contexts.get_mut(&id) {
                let Some(resp) = self.reply_routes(now, Some(ctx), resp, src, local, out) else {
                    return;
                };
                ctx.on_response(now, &self.cfg, index, resp, out);
                self.failure_routes(now, id, ctx, out);
                let (deadline, done) = (ctx.next_deadline(), ctx.is_done());
                if let Some(d) = deadline {
                    shard.timers.push(Reverse((d, id)));
                }
                if done {
                    remove(&mut shard, id);
                }
                return;
            }
        } else if !branch.starts_with(STATELESS) {
            return; // not ours: drop (RFC 3261 §16.7 step 1 says so for a proxy)
        }
        // No context (stateless branch, or a 2xx retransmission after the context ended).
        let Some(resp) = self.reply_routes(now, None, resp, src, local, out) else {
            return;
        };
        let data = strip_top_via(&resp);
        let Ok(next) = Message::parse(data.clone()) else {
            return;
        };
        if let Some(dest) = response_destination(&next) {
            out.push(Command::Send { dest, data });
        }
    }

    /// The IO layer could not send `data` (a request the core asked it to send) to `dest`:
    /// the branch it belongs to fails over to UDP or counts as answered 503 (§16.9).
    pub fn send_failed(&self, now: Instant, dest: Destination, data: Bytes) -> Vec<Command> {
        let mut out = Vec::new();
        let Ok(msg) = Message::parse(data) else {
            return out;
        };
        if !msg.is_request() || matches!(msg.method(), Some(Method::Ack | Method::Cancel)) {
            return out;
        }
        let Some((id, index)) = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch().and_then(stateful_branch))
        else {
            return out;
        };
        let mut shard = self.shard((id % SHARDS as u64) as usize);
        if let Some(ctx) = shard.contexts.get_mut(&id) {
            ctx.on_transport_error(now, &self.cfg, index, dest, &mut out);
            self.failure_routes(now, id, ctx, &mut out);
            if let Some(d) = ctx.next_deadline() {
                shard.timers.push(Reverse((d, id)));
            }
        }
        out
    }

    /// When [`handle_timeouts`](Self::handle_timeouts) is next needed.
    pub fn next_timeout(&self) -> Option<Instant> {
        (0..SHARDS)
            .filter_map(|i| self.shard(i).timers.peek().map(|Reverse((t, _))| *t))
            .min()
    }

    /// Fires every transaction timer due at `now`.
    pub fn handle_timeouts(&self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        for i in 0..SHARDS {
            let mut shard = self.shard(i);
            while let Some(&Reverse((t, id))) = shard.timers.peek() {
                if t > now {
                    break;
                }
                shard.timers.pop();
                let Some(ctx) = shard.contexts.get_mut(&id) else {
                    continue;
                };
                if ctx.next_deadline().is_some_and(|d| d <= now) {
                    ctx.on_timeout(now, &self.cfg, &mut out);
                    self.failure_routes(now, id, ctx, &mut out);
                }
                let (deadline, done) = (ctx.next_deadline(), ctx.is_done());
                if done {
                    remove(&mut shard, id);
                } else if let Some(d) = deadline {
                    if d > t {
                        shard.timers.push(Reverse((d, id)));
                    }
                }
            }
        }
        out
    }

    /// Number of live proxy contexts.
    pub fn active_transactions(&self) -> usize {
        (0..SHARDS).map(|i| self.shard(i).contexts.len()).sum()
    }

    /// Where a next hop leads now: an address, a name still to look up, or nowhere (the name
    /// does not resolve to an address family we listen on).
    pub(crate) fn locate(&self, now: Instant, hop: NextHop<'_>) -> Located {
        let (host, port, protocol) = match hop {
            NextHop::Addr(d) => return Located::Ready(d),
            NextHop::Name {
                host,
                port,
                protocol,
            } => (host.to_ascii_lowercase(), port, protocol),
        };
        match self.dns.get(now, &host) {
            Answer::Unknown => Located::Pending(host),
            Answer::Known(ips) => ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .find(|&a| self.cfg.advertised_for(protocol, a).is_some())
                .map_or(Located::Unreachable, |a| {
                    Located::Ready(Destination::new(protocol, a))
                }),
        }
    }

    /// Continues what waited for a DNS answer ([`Command::Resolve`]), once the answers are
    /// stored with [`dns_answer`](Self::dns_answer).
    pub fn resume(&self, now: Instant, then: Resume) -> Vec<Command> {
        let context = match then {
            Resume::Request { request, src } => return self.handle_message(now, *request, src),
            Resume::Failure { context } => context,
        };
        let mut out = Vec::new();
        let mut shard = self.shard((context % SHARDS as u64) as usize);
        if let Some(ctx) = shard.contexts.get_mut(&context) {
            ctx.retry_failure();
            self.failure_routes(now, context, ctx, &mut out);
            let (deadline, done) = (ctx.next_deadline(), ctx.is_done());
            if let Some(d) = deadline {
                shard.timers.push(Reverse((d, context)));
            }
            if done {
                remove(&mut shard, context);
            }
        }
        out
    }

    /// Stores the answer to a [`Command::Resolve`] lookup: the addresses of `host` (none: it
    /// does not resolve), valid for `ttl` (at least a few seconds).
    pub fn dns_answer(&self, now: Instant, host: &str, addrs: Vec<IpAddr>, ttl: Duration) {
        self.dns.insert(now, host, addrs, ttl);
    }

    /// Purges expired bindings; returns the changes to persist.
    pub fn purge_expired(&self) -> Vec<registrar::Change> {
        self.location.purge_expired(unix_now())
    }
}

/// The context id and branch index in one of our stateful branch parameters.
fn stateful_branch(branch: &str) -> Option<(u64, usize)> {
    let mut parts = branch.strip_prefix(STATEFUL)?.split('-');
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let index = parts.next()?.parse().ok()?;
    Some((id, index))
}

fn remove(shard: &mut Shard, id: u64) {
    if let Some(ctx) = shard.contexts.remove(&id) {
        if shard.by_key.get(&ctx.key) == Some(&id) {
            shard.by_key.remove(&ctx.key);
        }
    }
}

/// What a next hop resolves to at the moment.
pub(crate) enum Located {
    Ready(Destination),
    /// This lower-case host name must be looked up first.
    Pending(String),
    Unreachable,
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
