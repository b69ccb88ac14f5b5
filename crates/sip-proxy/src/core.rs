//! Dispatch: every message is checked, matched to its context or given a new one, and
//! answered locally or forwarded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use registrar::{Binding, Location};
use sip_message::{ErrorKind, Host, Message, Method, Protocol, Uri};
use sip_transaction::{Role, TransactionKey};

use crate::config::ProxyConfig;
use crate::context::{Context, Prepared, Received};
use crate::dns::{Answer, DnsCache};
use crate::forward::{fnv, forward_request, strip_top_via, Forward};
use crate::reply::{reason, response, to_tag};
use crate::route::{preprocess, RouteEdit};
use crate::target::{next_hop, Destination, NextHop};
use crate::Command;

/// Prefix of the branches of statefully forwarded requests: `z9hG4bKfs-<context>-<branch>-<loop>`.
const STATEFUL: &str = "z9hG4bKfs-";
/// Prefix of the branches of statelessly forwarded requests.
const STATELESS: &str = "z9hG4bKsl-";
const SHARDS: usize = 64;
/// Largest request sent over UDP: 200 bytes under the common 1500-byte path MTU
/// (RFC 3261 §18.1.1).
const MAX_UDP_REQUEST: usize = 1300;

#[derive(Default)]
struct Shard {
    contexts: HashMap<u64, Context>,
    by_key: HashMap<TransactionKey, u64>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
}

/// The proxy, registrar and redirect server. Shared by all IO tasks; state is sharded so
/// that no lock is global.
pub struct Core {
    cfg: ProxyConfig,
    location: Arc<Location>,
    shards: Vec<Mutex<Shard>>,
    next_id: AtomicU64,
    dns: DnsCache,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Where the responses to a request go (RFC 3261 §18.2.2, RFC 3581): back over the
/// connection for streams; to the source address when `rport` was asked for; otherwise to
/// the source IP and the Via port.
fn upstream_of(msg: &Message, src: Destination) -> Destination {
    if src.protocol.is_reliable() {
        return src;
    }
    match msg.top_via() {
        Ok(v) if v.rport().is_none() => Destination::new(
            src.protocol,
            SocketAddr::new(src.addr.ip(), v.port.unwrap_or(5060)),
        ),
        _ => src,
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

/// The loop-detection hash of §16.6 step 8: what makes two passes of a request differ.
fn loop_hash(msg: &Message) -> u64 {
    let h = |n| msg.header(n).map_or(&b""[..], |h| h.value.as_bytes());
    fnv(&[
        msg.request_uri_str().unwrap_or_default().as_bytes(),
        h(sip_message::HeaderName::CallId),
        h(sip_message::HeaderName::CSeq),
        h(sip_message::HeaderName::From),
        h(sip_message::HeaderName::To),
        h(sip_message::HeaderName::Route),
    ])
}

impl Core {
    /// A core with this configuration and location service.
    pub fn new(cfg: ProxyConfig, location: Arc<Location>) -> Core {
        Core {
            cfg,
            location,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            next_id: AtomicU64::new(1),
            dns: DnsCache::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn key_shard(key: &TransactionKey) -> usize {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        h.finish() as usize % SHARDS
    }

    /// A context id that lives in shard `shard`.
    fn new_id(&self, shard: usize) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) * SHARDS as u64 + shard as u64
    }

    /// Handles one received message; `src` is where it came from.
    pub fn handle_message(&self, now: Instant, msg: Message, src: Destination) -> Vec<Command> {
        let mut out = Vec::new();
        if msg.is_request() {
            self.handle_request(now, msg, src, &mut out);
        } else {
            self.handle_response(now, msg, &mut out);
        }
        out
    }

    fn reply(
        &self,
        req: &Message,
        src: Destination,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
        out: &mut Vec<Command>,
    ) {
        if req.method() == Some(Method::Ack) {
            return;
        }
        let data = response(req, code, reason, &self.cfg.agent, extra);
        out.push(Command::Send {
            dest: upstream_of(req, src),
            data,
        });
    }

    fn handle_request(&self, now: Instant, msg: Message, src: Destination, out: &mut Vec<Command>) {
        if let Err(e) = msg.validate().and_then(|()| msg.sanity_check()) {
            let text = format!("Bad Request ({})", e.kind);
            let (code, why) = if e.kind == ErrorKind::Version {
                (505, reason(505))
            } else {
                (400, text.as_str())
            };
            return self.reply(&msg, src, code, why, &[], out);
        }
        let Some(method) = msg.method() else { return };
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
        if method == Method::Cancel {
            return self.handle_cancel(now, &msg, src, out);
        }
        if msg.max_forwards().ok().flatten() == Some(0) {
            return self.reply(&msg, src, 483, reason(483), &[], out);
        }
        // Loop detection (§16.3 step 4): only a request carrying a Via of ours can loop.
        let mut lh = None;
        let ours = |h: Host<'_>, p: Option<u16>| {
            self.cfg
                .advertised
                .iter()
                .any(|(_, a)| Some(a.ip()) == h.ip() && a.port() == p.unwrap_or(5060))
        };
        let looped = msg.vias().filter_map(Result::ok).any(|v| {
            ours(v.host, v.port)
                && v.branch().is_some_and(|b| {
                    b.starts_with(STATEFUL)
                        && b.ends_with(
                            lh.get_or_insert_with(|| format!("-{:x}", loop_hash(&msg)))
                                .as_str(),
                        )
                })
        });
        if looped {
            return self.reply(&msg, src, 482, reason(482), &[], out);
        }
        let unsupported: Vec<&str> = msg
            .tokens(sip_message::HeaderName::ProxyRequire)
            .filter_map(Result::ok)
            .collect();
        if !unsupported.is_empty() {
            return self.reply(
                &msg,
                src,
                420,
                reason(420),
                &[("Unsupported", &unsupported.join(", "))],
                out,
            );
        }
        let Some(uri) = msg.request_uri() else { return };
        if !matches!(uri, Uri::Sip(_)) {
            return self.reply(&msg, src, 416, reason(416), &[], out);
        }
        let mut route = preprocess(&self.cfg, &msg);
        let new_uri = route.new_uri.clone();
        let target = match new_uri.as_deref().map(Uri::parse) {
            None => uri.as_sip().copied(),
            Some(Ok(Uri::Sip(t))) => Some(t),
            Some(_) => None,
        };
        let Some(target) = target else {
            return self.reply(&msg, src, 400, "Bad Request (Route)", &[], out);
        };
        let local = self.cfg.is_local_target(target.host_raw, target.port);
        if local && route.next_is_route && msg.to().ok().and_then(|t| t.tag()).is_none() {
            tracing::debug!(
                "preloaded Route on an initial request for a local domain: not followed"
            );
            route.drop_routes = true;
            route.next_is_route = false;
        }
        if local && !route.next_is_route {
            return self.handle_local(now, msg, key, src, &route, out);
        }
        // Somewhere else: the next Route, or the Request-URI's host.
        let hop = if route.next_is_route {
            let skip = usize::from(route.pop_route);
            msg.routes()
                .filter_map(Result::ok)
                .nth(skip)
                .and_then(|r| r.uri.as_sip().and_then(next_hop))
        } else {
            next_hop(&target)
        };
        let dest = match hop.map(|h| self.locate(now, h)) {
            Some(Located::Ready(d)) => d,
            Some(Located::Pending(host)) => {
                return out.push(Command::Resolve {
                    hosts: vec![host],
                    request: Box::new(msg),
                    src,
                })
            }
            _ => {
                return self.reply(
                    &msg,
                    src,
                    503,
                    "Service Unavailable (cannot resolve next hop)",
                    &[],
                    out,
                )
            }
        };
        let request_uri = route.new_uri.as_deref();
        if method == Method::Ack {
            return self.forward_stateless(
                &msg,
                src,
                &Target {
                    uri: request_uri.map(str::to_owned),
                    path: Vec::new(),
                    dest,
                },
                &route,
                out,
            );
        }
        let target = Target {
            uri: request_uri.map(str::to_owned),
            path: Vec::new(),
            dest,
        };
        self.proxy(
            now,
            msg,
            key,
            src,
            &route,
            VecDeque::from([vec![target]]),
            out,
        );
    }

    /// Requests for one of our domains: registrar, OPTIONS to the server, redirect or
    /// location lookup.
    fn handle_local(
        &self,
        now: Instant,
        msg: Message,
        key: TransactionKey,
        src: Destination,
        route: &RouteEdit,
        out: &mut Vec<Command>,
    ) {
        let Some(method) = msg.method() else { return };
        let uri = msg.request_uri();
        let sip = uri.as_ref().and_then(Uri::as_sip);
        let upstream = upstream_of(&msg, src);
        let no_user = sip.is_some_and(|s| s.user.is_none());
        if method == Method::Ack {
            // No transaction of ours matched: it acknowledges a reply sent without one.
            return;
        }
        if method == Method::Register {
            // Answered without a transaction: the registrar treats a repeated CSeq as a
            // retransmission, so answering again is safe. The 200 waits for the write.
            let source = format!("{}:{}", src.protocol, src.addr);
            let now_unix = unix_now();
            let data = match self
                .location
                .register(&self.cfg.registrar, now_unix, &msg, &source)
            {
                Ok(mut reg) => {
                    let data = registrar::ok_response(&msg, &reg, now_unix, &to_tag(&msg));
                    if !reg.changes.is_empty() {
                        out.push(Command::Persist(std::mem::take(&mut reg.changes)));
                    }
                    data
                }
                Err(r) => {
                    let min = r.min_expires.map(|m| m.to_string());
                    let extra: Vec<(&str, &str)> = min
                        .as_deref()
                        .map(|m| ("Min-Expires", m))
                        .into_iter()
                        .collect();
                    response(&msg, r.status, r.reason, &self.cfg.agent, &extra)
                }
            };
            out.push(Command::Send {
                dest: upstream,
                data,
            });
            return;
        }
        if no_user {
            if method == Method::Options {
                let extra = [
                    ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, INFO, UPDATE, PRACK, SUBSCRIBE, NOTIFY, REFER"),
                    ("Accept", "application/sdp"),
                    ("Supported", "path"),
                ];
                return self.reply(&msg, src, 200, reason(200), &extra, out);
            }
            return self.reply(&msg, src, 404, reason(404), &[], out);
        }
        let aor = uri.as_ref().and_then(registrar::aor_of);
        let bindings = aor
            .map(|a| self.location.lookup(&a, unix_now()))
            .unwrap_or_default();
        let host = sip.map(|s| s.host_raw).unwrap_or_default();
        if self
            .cfg
            .redirect_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(host))
        {
            if bindings.is_empty() {
                return self.reply(&msg, src, 404, reason(404), &[], out);
            }
            let contacts: Vec<String> = bindings
                .iter()
                .map(|b| format!("<{}>;q={}.{:03}", b.contact, b.q / 1000, b.q % 1000))
                .collect();
            let contacts = contacts.join(", ");
            let answer = response(
                &msg,
                302,
                reason(302),
                &self.cfg.agent,
                &[("Contact", &contacts)],
            );
            return self.answer(now, msg, key, upstream, 302, answer, out);
        }
        if bindings.is_empty() {
            return self.reply(&msg, src, 404, reason(404), &[], out);
        }
        let mut pending = Vec::new();
        let targets: VecDeque<Vec<Target>> = group_by_q(&bindings)
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .filter_map(|b| match self.binding_target(now, b)? {
                        Ok(t) => Some(t),
                        Err(host) => {
                            pending.push(host);
                            None
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty())
            .collect();
        if !pending.is_empty() {
            pending.sort();
            pending.dedup();
            return out.push(Command::Resolve {
                hosts: pending,
                request: Box::new(msg),
                src,
            });
        }
        if targets.is_empty() {
            return self.reply(&msg, src, 480, reason(480), &[], out);
        }
        self.proxy(now, msg, key, src, route, targets, out);
    }

    /// Answers locally inside a server transaction.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        now: Instant,
        msg: Message,
        key: TransactionKey,
        upstream: Destination,
        status: u16,
        answer: Bytes,
        out: &mut Vec<Command>,
    ) {
        let shard_i = Self::key_shard(&key);
        let id = self.new_id(shard_i);
        let received = Received {
            key: key.clone(),
            request: msg,
            upstream,
        };
        let ctx = Context::answered(now, &self.cfg, received, status, answer, out);
        self.store(shard_i, id, key, ctx);
    }

    fn store(&self, shard_i: usize, id: u64, key: TransactionKey, ctx: Context) {
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

    /// Forwards statefully to target groups (each group in parallel, groups in turn).
    #[allow(clippy::too_many_arguments)]
    fn proxy(
        &self,
        now: Instant,
        msg: Message,
        key: TransactionKey,
        src: Destination,
        route: &RouteEdit,
        targets: VecDeque<Vec<Target>>,
        out: &mut Vec<Command>,
    ) {
        if !self.cfg.stateful {
            if let Some(t) = targets.front().and_then(|g| g.first()) {
                self.forward_stateless(&msg, src, t, route, out);
            }
            return;
        }
        let shard_i = Self::key_shard(&key);
        let id = self.new_id(shard_i);
        let lh = loop_hash(&msg);
        let (received, rport) = via_fixes(&msg, src);
        let dialog_creating = matches!(
            msg.method(),
            Some(Method::Invite | Method::Subscribe | Method::Refer)
        );
        let mut n = 0usize;
        let groups: VecDeque<Vec<Prepared>> = targets
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .filter_map(|Target { uri, path, dest }| {
                        let branch = format!("{STATEFUL}{id:x}-{n}-{lh:x}");
                        n += 1;
                        let fwd = forward_to(route, uri.as_deref(), &path, &received, &rport);
                        self.prepare(&msg, dest, &branch, dialog_creating, fwd)
                    })
                    .collect()
            })
            .collect();
        let upstream = upstream_of(&msg, src);
        let received = Received {
            key: key.clone(),
            request: msg,
            upstream,
        };
        let ctx = Context::new(now, &self.cfg, received, groups, out);
        self.store(shard_i, id, key, ctx);
    }

    fn forward_stateless(
        &self,
        msg: &Message,
        src: Destination,
        target: &Target,
        route: &RouteEdit,
        out: &mut Vec<Command>,
    ) {
        let dest = target.dest;
        let incoming = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        let branch = fnv(&[
            incoming.as_bytes(),
            msg.request_uri_str().unwrap_or_default().as_bytes(),
            dest.addr.to_string().as_bytes(),
        ]);
        let (received, rport) = via_fixes(msg, src);
        let fwd = forward_to(
            route,
            target.uri.as_deref(),
            &target.path,
            &received,
            &rport,
        );
        let branch = format!("{STATELESS}{branch:x}");
        if let Some(p) = self.prepare(msg, dest, &branch, false, fwd) {
            out.push(Command::Send {
                dest: p.dest,
                data: p.request,
            });
        }
    }

    /// Writes the request for one branch: our Via (and Record-Route) for the interface that
    /// reaches `dest`. A UDP request too large for the path MTU goes over TCP instead
    /// (RFC 3261 §18.1.1) when we listen on TCP. `None` when no interface reaches `dest`.
    fn prepare(
        &self,
        msg: &Message,
        dest: Destination,
        branch: &str,
        record_route: bool,
        fwd: Forward<'_>,
    ) -> Option<Prepared> {
        let build = |dest: Destination| {
            let local = self.cfg.advertised_for(dest.protocol, dest.addr)?;
            let via = format!(
                "SIP/2.0/{} {};branch={branch};rport",
                dest.protocol.via_token(),
                sock_text(local)
            );
            let rr = (record_route && self.cfg.record_route)
                .then(|| self::record_route(dest.protocol, local));
            let request = forward_request(
                msg,
                &Forward {
                    via: &via,
                    record_route: rr.as_deref(),
                    ..fwd
                },
            );
            Some(Prepared {
                dest,
                request,
                fallback: None,
            })
        };
        let prepared = build(dest)?;
        if dest.protocol == Protocol::Udp && prepared.request.len() > MAX_UDP_REQUEST {
            if let Some(tcp) = build(Destination::new(Protocol::Tcp, dest.addr)) {
                return Some(Prepared {
                    fallback: Some((dest, prepared.request)),
                    ..tcp
                });
            }
        }
        Some(prepared)
    }

    /// CANCEL (§16.10): answer 200 and cancel the matching INVITE's branches, or 481.
    fn handle_cancel(&self, now: Instant, msg: &Message, src: Destination, out: &mut Vec<Command>) {
        let Ok(target) = TransactionKey::cancel_target(msg) else {
            return;
        };
        let shard_i = Self::key_shard(&target);
        let mut shard = self.shard(shard_i);
        let Some(&id) = shard.by_key.get(&target) else {
            drop(shard);
            return self.reply(msg, src, 481, reason(481), &[], out);
        };
        self.reply(msg, src, 200, reason(200), &[], out);
        if let Some(ctx) = shard.contexts.get_mut(&id) {
            ctx.cancel(now, &self.cfg, out);
            if let Some(d) = ctx.next_deadline() {
                shard.timers.push(Reverse((d, id)));
            }
        }
    }

    fn handle_response(&self, now: Instant, resp: Message, out: &mut Vec<Command>) {
        let Ok(via) = resp.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        if let Some((id, index)) = stateful_branch(branch) {
            let mut shard = self.shard((id % SHARDS as u64) as usize);
            if let Some(ctx) = shard.contexts.get_mut(&id) {
                ctx.on_response(now, &self.cfg, index, resp, out);
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
    fn locate(&self, now: Instant, hop: NextHop<'_>) -> Located {
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

    /// Stores the answer to a [`Command::Resolve`] lookup: the addresses of `host` (none: it
    /// does not resolve), valid for `ttl` (at least a few seconds).
    pub fn dns_answer(&self, now: Instant, host: &str, addrs: Vec<IpAddr>, ttl: Duration) {
        self.dns.insert(now, host, addrs, ttl);
    }

    /// Where to send a request for a binding: its Path, the connection it registered over
    /// (TCP), or its contact URI. `Err(host)` when a name must be looked up first.
    fn binding_target(&self, now: Instant, b: &Binding) -> Option<Result<Target, String>> {
        let located = match b.path.first() {
            Some(first) => {
                let na = sip_message::header::NameAddr::parse_bracketed(first).ok()?;
                self.locate(now, next_hop(na.uri.as_sip()?)?)
            }
            None => self.locate(now, next_hop(Uri::parse(&b.contact).ok()?.as_sip()?)?),
        };
        let dest = match located {
            Located::Ready(d) => d,
            Located::Pending(host) => return Some(Err(host)),
            Located::Unreachable => return None,
        };
        // A client registered over TCP is reached over its connection while that is open.
        let connection = b
            .source
            .strip_prefix("tcp:")
            .and_then(|a| a.parse().ok())
            .filter(|_| dest.protocol == Protocol::Tcp && b.path.is_empty());
        Some(Ok(Target {
            uri: Some(b.contact.clone()),
            path: b.path.clone(),
            dest: Destination { connection, ..dest },
        }))
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

/// Bindings grouped by q, highest first (each group is forked in parallel).
fn group_by_q(bindings: &[Binding]) -> Vec<Vec<&Binding>> {
    let mut groups: Vec<Vec<&Binding>> = Vec::new();
    for b in bindings {
        match groups.last_mut() {
            Some(g) if g[0].q == b.q => g.push(b),
            _ => groups.push(vec![b]),
        }
    }
    groups
}

/// What a next hop resolves to at the moment.
enum Located {
    Ready(Destination),
    /// This lower-case host name must be looked up first.
    Pending(String),
    Unreachable,
}

/// One place a request is forwarded to.
#[derive(Debug)]
struct Target {
    /// New Request-URI, if it changes (a registered contact).
    uri: Option<String>,
    /// Route values to add (the binding's Path).
    path: Vec<String>,
    /// The next hop.
    dest: Destination,
}

/// The changes for one target: Route pre-processing, the target's Request-URI and Path, and
/// the RFC 3581 parameters; Via and Record-Route are added per interface by `prepare`.
fn forward_to<'a>(
    route: &'a RouteEdit,
    uri: Option<&'a str>,
    path: &'a [String],
    received: &'a Option<String>,
    rport: &'a Option<String>,
) -> Forward<'a> {
    Forward {
        request_uri: uri.or(route.new_uri.as_deref()),
        pop_route: route.pop_route,
        drop_routes: route.drop_routes,
        remove: route.remove,
        push_routes: path,
        received: received.as_deref(),
        rport: rport.as_deref(),
        ..Forward::default()
    }
}

/// RFC 3581 parameters for the received request's top Via: `received` when the source IP
/// differs from sent-by (or rport was asked for), and `rport` with the source port.
fn via_fixes(msg: &Message, src: Destination) -> (Option<String>, Option<String>) {
    let Ok(via) = msg.top_via() else {
        return (None, None);
    };
    let wants_rport = via.rport() == Some(None);
    let differs = via.host.ip() != Some(src.addr.ip());
    let received = (differs || wants_rport).then(|| src.addr.ip().to_string());
    let rport = wants_rport.then(|| src.addr.port().to_string());
    (received, rport)
}

fn sock_text(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => v.to_string(),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

fn record_route(protocol: Protocol, local: SocketAddr) -> String {
    match protocol {
        Protocol::Udp => format!("<sip:{};lr>", sock_text(local)),
        Protocol::Tcp => format!("<sip:{};transport=tcp;lr>", sock_text(local)),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
