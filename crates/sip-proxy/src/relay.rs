//! Forwarding (`t_relay`, `forward`): the destination set becomes branches, each written
//! for the interface that reaches it, after its branch route; CANCEL (§16.10).

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::net::SocketAddr;

use registrar::Binding;
use sip_message::header::NameAddr;
use sip_message::{push_socket_addr, Message, Method, Protocol, Uri};
use sip_transaction::TransactionKey;

use crate::branch::{new_stateful_branch, new_stateless_branch, Upstream};
use crate::checks::loop_hash;
use crate::context::{Followed, Prepared, Rare};
use crate::core::{Core, Located};
use crate::forward::{fnv, forward_request, Forward};
use crate::reply::reason;
use crate::route_key::Issued;
use crate::routing::{Edits, Phase, RouteCtx};
use crate::shard::Shards;
use crate::suspend::{Parked, RelayState};
use crate::target::{next_hop, Destination, Lookup};
use crate::Command;

/// The parameter of our Record-Route entries that marks a dialog whose media goes through
/// the relay (`is_media_relayed()` finds it in its in-dialog requests' Route).
pub(crate) const MEDIA_PARAM: &str = "rtprelay";

/// Most other addresses of a name a branch fails over to.
const MAX_ALTERNATIVES: usize = 3;

/// Largest request sent over UDP: 200 bytes under the common 1500-byte path MTU
/// (RFC 3261 §18.1.1).
const MAX_UDP_REQUEST: usize = 1300;

/// One place a request is forwarded to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// New Request-URI, if it changes.
    uri: Option<String>,
    /// Route values to add (a binding's Path).
    path: Vec<String>,
    /// The next hop.
    dest: Destination,
    /// Where to try next when `dest` fails (no answer, a transport error, 503): the other
    /// addresses of a name (RFC 3263 §4.3).
    alternatives: Rare<Destination>,
    /// A client that registered over UDP: reached over UDP whatever the request's size (it
    /// may listen on nothing else, or sit behind a NAT that lets only that through).
    udp_only: bool,
    /// A client behind NAT, reached at this source of its REGISTER: the Contact of its
    /// replies is fixed to it, so that the caller's requests reach it there too.
    nat: Option<SocketAddr>,
}

/// A list boxed when it has anything in it.
fn boxed<T>(list: Vec<T>) -> Rare<T> {
    (!list.is_empty()).then(|| Box::new(list))
}

/// How a forwarded request is record-routed.
#[derive(Clone, Copy)]
struct Recording {
    /// The interface the request came in on, when it is record-routed.
    inbound: Option<(Protocol, SocketAddr)>,
    /// Our key for its dialog.
    issued: Option<Issued>,
    /// Where it came from.
    src: Destination,
}

/// Why a destination set gives no target.
enum Unrouted {
    /// These must be looked up first.
    Pending(Vec<Lookup>),
    /// No target can be reached: answer with this status.
    Unreachable(u16),
}

impl Core {
    /// `t_relay()` (stateful) or `forward()` in a request route. False when the request
    /// could not be relayed (it is then answered 503 or 480). A next hop whose name is not
    /// known yet parks the request until it is looked up; the relay then goes on from there.
    pub(crate) fn relay(&self, c: &mut RouteCtx<'_>, stateful: bool) -> bool {
        let msg = c.msg;
        let Some(method) = msg.method() else {
            return false;
        };
        if stateful && method == Method::Cancel {
            self.handle_cancel(c);
            return true;
        }
        let stateful = stateful && method != Method::Ack;
        if stateful && c.stateful {
            tracing::warn!(target: "script", "t_relay: the request was relayed or answered already");
            return false;
        }
        if let Some(relayed) = self.media_first(c, stateful) {
            return relayed;
        }
        if let Some(key) = c.edits.route.key {
            if crate::route_key::refreshes_target(method) {
                let secret = &self.config().route_secret;
                let fixed = c.edits.contact;
                crate::route_key::note_request_refresh(secret, &self.refreshed, key, msg, fixed);
            }
        }
        match self.targets(c) {
            Ok(groups) => self.relay_to(c, groups, stateful),
            Err(Unrouted::Pending(_)) if c.txn.is_none() && method != Method::Ack => {
                self.too_busy(c)
            }
            // An ACK waits in a context of its own, counted like a transaction: with none
            // left it is dropped (the 2xx it acknowledges is retransmitted, and so is it).
            Err(Unrouted::Pending(_)) if c.txn.is_none() && self.at_capacity() => false,
            Err(Unrouted::Pending(hosts)) if !c.resumed => {
                let state = Box::new(RelayState::of(c, stateful));
                let resolve = self.park(c.now, c.txn, hosts, Parked::Relay(state));
                c.out.push(resolve);
                c.stateful = true;
                true
            }
            Err(Unrouted::Pending(_)) => self.unreachable(c, 503),
            Err(Unrouted::Unreachable(code)) => self.unreachable(c, code),
        }
    }

    /// No target can be reached: the request is answered `code`.
    fn unreachable(&self, c: &mut RouteCtx<'_>, code: u16) -> bool {
        let why = match code {
            503 => "Service Unavailable (cannot resolve next hop)",
            c => reason(c),
        };
        self.respond(c, code, why, &[]);
        false
    }

    /// Sends the request to its targets: the first one statelessly, or every one in a
    /// branch of the request's context.
    fn relay_to(
        &self,
        c: &mut RouteCtx<'_>,
        groups: VecDeque<Vec<Target>>,
        stateful: bool,
    ) -> bool {
        // A request of a followed call's dialog: its CSeq noted, and a BYE ends it once
        // answered (relayed without state, once its answer is no longer awaited).
        let now = c.now;
        let bye = self
            .dialogs
            .request(|| self.unix_ms(now), c.msg, c.to_tag());
        if !stateful {
            let Some(t) = groups.front().and_then(|g| g.first()) else {
                return false;
            };
            self.forward_stateless(c.msg, c.src, t, &c.edits, c.out);
            return true;
        }
        let Some(id) = c.txn else {
            return self.too_busy(c);
        };
        let (groups, _) = self.prepare_groups(c, id, 0, groups);
        if groups.iter().all(Vec::is_empty) {
            return self.unreachable(c, 480);
        }
        let routing = c.tx_routing();
        let refresh_key = (c.edits.route.key).filter(|_| {
            c.msg
                .method()
                .is_some_and(crate::route_key::refreshes_target)
        });
        let (msg, src, authenticated) = (c.msg, c.src, c.auth_user.is_some());
        let source = src.addr.ip();
        let media = c.edits.media;
        let (follow, now_ms) = (c.edits.dialog, self.unix_ms(c.now));
        let profiles = std::mem::take(&mut c.edits.profiles);
        let (now, cfg, out) = (c.now, self.config(), &mut *c.out);
        let started = self.with_ctx(id, |ctx| {
            // The mark `media_first` gave it while its SDP was with the relay, or one now.
            ctx.media = match media {
                true => ctx.media.take().or_else(|| {
                    let browser = src.protocol.is_websocket();
                    crate::media::MediaMark::of(msg, source, authenticated, browser).map(Box::new)
                }),
                false => None,
            };
            let started = ctx.start(now, cfg, groups, routing, refresh_key, out);
            // `dlg_manage()`: the call is followed from its INVITE, once it is relayed.
            if started && follow {
                // Over UDP the caller is where its INVITE came from (behind NAT, its Via
                // may name a private port); a stream client over its connection.
                let upstream = match src.protocol.is_reliable() {
                    true => crate::core::upstream_of(msg, src),
                    false => src,
                };
                let followed = self.dialogs.invite(now_ms, msg, upstream, profiles);
                ctx.dialog = followed.map(|k| Box::new(Followed::Invite(k)));
            }
            if let Some(bye) = bye.filter(|_| started) {
                ctx.dialog = Some(Box::new(Followed::Bye(bye)));
            }
            started
        });
        c.stateful = true;
        started == Some(true)
    }

    /// `t_relay()` in a failure route: new branches for the same transaction. False when
    /// there is nothing to relay to.
    pub(crate) fn relay_more(&self, c: &mut RouteCtx<'_>) -> bool {
        let Some(f) = c.failure else {
            return false;
        };
        let groups = match self.targets(c) {
            Ok(g) => g,
            Err(Unrouted::Pending(hosts)) if !c.resumed => {
                // The relay goes on once the names are known.
                c.effects.parked = Some((hosts, Box::new(RelayState::of(c, true))));
                return true;
            }
            Err(_) => return false,
        };
        let (groups, next) = self.prepare_groups(c, f.id, f.next_branch, groups);
        if groups.iter().all(Vec::is_empty) {
            return false;
        }
        if let Some(f) = c.failure.as_mut() {
            f.next_branch = next;
        }
        c.effects.groups.extend(groups);
        true
    }

    /// The destination set as target groups, highest q first (each group forked in
    /// parallel, groups in turn).
    fn targets(&self, c: &RouteCtx<'_>) -> Result<VecDeque<Vec<Target>>, Unrouted> {
        let mut pending = Vec::new();
        let mut found: Vec<(u16, Target)> = Vec::new();
        let main = match (&c.set.du, &c.set.binding) {
            (Some(du), b) => self.uri_target(c, du, b.as_ref().map_or(&[][..], |b| &b.path)),
            (None, Some(b)) => self.binding_target(c.now, b, c.msg),
            (None, None) if c.edits.route.next_is_route => {
                let skip = c.edits.route.pop_routes;
                let route = c.msg.routes().filter_map(Result::ok).nth(skip);
                route
                    .and_then(|r| self.locate_uri(c.now, &r.uri, c.msg))
                    .map(|l| {
                        l.map(|(dest, alternatives)| Target {
                            uri: c.set.ruri.clone(),
                            path: Vec::new(),
                            dest,
                            alternatives: boxed(alternatives),
                            udp_only: false,
                            nat: None,
                        })
                    })
            }
            // Towards a client on a connection, named by a flow token.
            (None, None) if c.edits.route.flow.is_some() => c
                .edits
                .route
                .flow
                .as_deref()
                .and_then(|&(protocol, addr)| self.token_target(c, protocol, addr)),
            (None, None) => c.ruri().and_then(|u| self.uri_target(c, u, &[])),
        };
        let q = c.set.binding.as_ref().map_or(1000, |b| b.q);
        let all = std::iter::once((q, main)).chain(
            c.set
                .branches
                .iter()
                .map(|b| (b.q, self.binding_target(c.now, b, c.msg))),
        );
        for (q, t) in all {
            match t {
                Some(Ok(t)) => found.push((q, t)),
                Some(Err(host)) => pending.push(host),
                None => {}
            }
        }
        if !pending.is_empty() {
            let mut unique: Vec<Lookup> = Vec::with_capacity(pending.len());
            for p in pending {
                if !unique.contains(&p) {
                    unique.push(p);
                }
            }
            return Err(Unrouted::Pending(unique));
        }
        if found.is_empty() {
            let from_location = c.set.binding.is_some() && c.set.du.is_none();
            return Err(Unrouted::Unreachable(if from_location { 480 } else { 503 }));
        }
        // Stable: equal q keep their order.
        found.sort_by_key(|(q, _)| Reverse(*q));
        let mut groups: VecDeque<Vec<Target>> = VecDeque::new();
        let mut last_q = None;
        for (q, t) in found {
            match groups.back_mut() {
                Some(g) if last_q == Some(q) => g.push(t),
                _ => groups.push_back(vec![t]),
            }
            last_q = Some(q);
        }
        Ok(groups)
    }

    /// The target of an in-dialog request that follows a flow token to the client's
    /// connection from `addr`: over WebSocket, the connection alone; over TCP or TLS, where
    /// the Request-URI leads, over the connection while it is open (a phone's Contact may
    /// name a port it does not listen on, or an address its certificate does not show).
    fn token_target(
        &self,
        c: &RouteCtx<'_>,
        protocol: Protocol,
        addr: SocketAddr,
    ) -> Option<Result<Target, Lookup>> {
        let flow = Target {
            uri: c.set.ruri.clone(),
            path: Vec::new(),
            dest: Destination::flow(protocol, addr),
            alternatives: None,
            udp_only: false,
            nat: None,
        };
        if protocol.is_websocket() {
            return Some(Ok(flow));
        }
        match c.ruri().and_then(|u| self.uri_target(c, u, &[])) {
            Some(Ok(mut t)) if t.dest.protocol == protocol => {
                t.dest.connection = Some(addr);
                Some(Ok(t))
            }
            Some(Err(lookup)) => Some(Err(lookup)),
            _ => Some(Ok(flow)),
        }
    }

    /// A target reached through `next` (a URI: `$du` or the Request-URI), with the
    /// Request-URI of the destination set and `path` pushed as Route.
    fn uri_target(
        &self,
        c: &RouteCtx<'_>,
        next: &str,
        path: &[String],
    ) -> Option<Result<Target, Lookup>> {
        let uri = c.uri(next)?;
        Some(
            self.locate_uri(c.now, &uri, c.msg)?
                .map(|(dest, alternatives)| Target {
                    uri: c.set.ruri.clone(),
                    path: path.to_vec(),
                    dest,
                    alternatives: boxed(alternatives),
                    udp_only: false,
                    nat: None,
                }),
        )
    }

    /// Where a URI leads now, and where next if that fails: `None` when nowhere, `Err`
    /// when a name must be looked up.
    fn locate_uri(
        &self,
        now: std::time::Instant,
        uri: &Uri<'_>,
        msg: &Message,
    ) -> Option<Result<(Destination, Vec<Destination>), Lookup>> {
        match self.locate(now, next_hop(uri.as_sip()?)?, msg) {
            Located::Ready(d, next) => Some(Ok((d, next))),
            Located::Pending(host) => Some(Err(host)),
            Located::Unreachable => None,
        }
    }

    /// Where to send a request for a binding: its Path, the connection it registered over
    /// (TCP, TLS; WebSocket only ever so), or its contact URI. `Err(host)` when a name must
    /// be looked up first.
    fn binding_target(
        &self,
        now: std::time::Instant,
        b: &Binding,
        msg: &Message,
    ) -> Option<Result<Target, Lookup>> {
        let mut target = self.flow_target(now, b, msg)?;
        if let (Ok(t), Some(_)) = (&mut target, b.reg_id) {
            // RFC 5626 §5.3: the instance's other flows, should this one fail.
            let all = self.location.lookup(&b.aor, self.unix(now));
            let others = registrar::other_flows(&all, b).into_iter();
            let dests = others.filter_map(|o| Some(self.flow_target(now, o, msg)?.ok()?.dest));
            let mut alternatives = t.alternatives.take().map_or_else(Vec::new, |a| *a);
            alternatives.extend(dests);
            t.alternatives = boxed(alternatives);
        }
        Some(target)
    }

    /// [`Self::binding_target`] for the binding alone (none of its instance's other flows).
    fn flow_target(
        &self,
        now: std::time::Instant,
        b: &Binding,
        msg: &Message,
    ) -> Option<Result<Target, Lookup>> {
        let contact = Uri::parse(&b.contact).ok()?;
        let mut nat = None;
        let flow = match b.source_is_websocket() {
            true => b.source_addr().filter(|(p, _)| p.is_websocket()),
            false => None,
        };
        let located = match (b.path.first(), nat_source(b, &contact)) {
            (None, _) if flow.is_some() => {
                let (protocol, addr) = flow?;
                Ok((Destination::flow(protocol, addr), Vec::new()))
            }
            (Some(first), _) => {
                let na = NameAddr::parse_bracketed(first).ok()?;
                self.locate_uri(now, &na.uri, msg)?
            }
            // Behind NAT: reached where its REGISTER came from (the Contact stays the
            // Request-URI).
            (None, Some((protocol, addr))) => {
                nat = Some(addr);
                Ok((Destination::new(protocol, addr), Vec::new()))
            }
            (None, _) => self.locate_uri(now, &contact, msg)?,
        };
        let (dest, alternatives) = match located {
            Ok(d) => d,
            Err(host) => return Some(Err(host)),
        };
        // A client registered over a connection (TCP, TLS) is reached over it while it is
        // open.
        let connection = (dest.protocol.is_reliable() && b.path.is_empty())
            .then(|| b.source_addr())
            .flatten()
            .filter(|(p, _)| *p == dest.protocol)
            .map(|(_, a)| a);
        let udp_only = b.source.starts_with("udp:") && dest.protocol == Protocol::Udp;
        Some(Ok(Target {
            uri: Some(b.contact.clone()),
            path: b.path.clone(),
            dest: Destination { connection, ..dest },
            alternatives: boxed(alternatives),
            udp_only: udp_only && b.path.is_empty(),
            nat,
        }))
    }

    /// Writes each target's request, after its branch route (which may change it or drop
    /// it). Branch `n` of context `id` gets index `first`, `first + 1`…; returns the groups
    /// and the index after the last.
    fn prepare_groups(
        &self,
        c: &mut RouteCtx<'_>,
        id: u64,
        first: usize,
        targets: VecDeque<Vec<Target>>,
    ) -> (VecDeque<Vec<Prepared>>, usize) {
        let lh = loop_hash(c.msg);
        let Some(fixes) = via_fixes(c.msg, c.src) else {
            return (VecDeque::new(), first);
        };
        let mut n = first;
        let mut groups = VecDeque::new();
        // Our Record-Route key for this request, made once (when a branch records the route).
        let issued = std::cell::OnceCell::new();
        for group in targets {
            let mut prepared = Vec::new();
            for mut t in group {
                let branch_edits = match c.tx.on_branch {
                    Some(route) => match self.branch_route(c, route, &mut t) {
                        Some(e) => Some(e),
                        None => continue,
                    },
                    None => None,
                };
                let edits = branch_edits.as_ref().unwrap_or(&c.edits);
                let secret = &self.config().branch_secret;
                let branch = new_stateful_branch(secret, (id, n), lh, &fixes.up);
                let fwd = fixes.forward(edits, t.uri.as_deref(), &t.path);
                let rr = edits.record_route;
                let key = rr.and_then(|_| {
                    *issued.get_or_init(|| self.issue(c.msg, edits.contact, edits.media))
                });
                let recording = Recording {
                    inbound: rr,
                    issued: key,
                    src: c.src,
                };
                if let Some(mut p) =
                    self.prepare(c.msg, t.dest, t.udp_only, &branch, recording, fwd)
                {
                    p.nat = t.nat;
                    // The same request for each address to fail over to, its branch
                    // marked with the attempt (a late answer to an earlier one is not
                    // taken for it).
                    let alternatives = t.alternatives.iter().flat_map(|a| a.iter());
                    for (k, &alt) in (1..).zip(alternatives.take(MAX_ALTERNATIVES)) {
                        let attempt = crate::context::attempt_index(n, k);
                        let branch = new_stateful_branch(secret, (id, attempt), lh, &fixes.up);
                        if let Some(a) = self.prepare(c.msg, alt, false, &branch, recording, fwd) {
                            let list = p.alternatives.get_or_insert_default();
                            list.push((a.dest, a.request));
                        }
                    }
                    prepared.push(p);
                    n += 1;
                }
            }
            groups.push_back(prepared);
        }
        (groups, n)
    }

    /// Runs a branch route for one target; `None` when it dropped the branch, else the
    /// branch's edits (its Request-URI may have changed in `t`).
    fn branch_route(
        &self,
        c: &mut RouteCtx<'_>,
        route: script::RouteId,
        t: &mut Target,
    ) -> Option<Edits> {
        let script = c.script;
        let mut b = RouteCtx::new(
            self,
            script,
            c.now,
            Phase::Branch,
            c.msg,
            c.src,
            c.local,
            c.out,
        );
        b.tx = c.tx.clone();
        b.edits = c.edits.clone();
        b.set.ruri = t.uri.clone().or_else(|| c.set.ruri.clone());
        let outcome = script.run_route(route, &mut b);
        if outcome == script::Outcome::Drop {
            return None;
        }
        if b.set.ruri != t.uri {
            t.uri = b.set.ruri.take();
        }
        Some(std::mem::take(&mut b.edits))
    }

    pub(crate) fn forward_stateless(
        &self,
        msg: &Message,
        src: Destination,
        target: &Target,
        edits: &Edits,
        out: &mut Vec<Command>,
    ) {
        let dest = target.dest;
        let Some(fixes) = via_fixes(msg, src) else {
            return;
        };
        let hash = fnv(&[
            fixes.branch.as_bytes(),
            msg.request_uri_str().unwrap_or_default().as_bytes(),
            dest.addr.to_string().as_bytes(),
        ]);
        let branch = new_stateless_branch(&self.config().branch_secret, hash, &fixes.up);
        let fwd = fixes.forward(edits, target.uri.as_deref(), &target.path);
        let rr = edits.record_route;
        let key = rr.and_then(|_| self.issue(msg, edits.contact, edits.media));
        let recording = Recording {
            inbound: rr,
            issued: key,
            src,
        };
        if let Some(p) = self.prepare(msg, dest, target.udp_only, &branch, recording, fwd) {
            out.push(Command::Send {
                dest: p.dest,
                data: p.request,
            });
        }
    }

    /// Writes the request for one branch: our Via (and Record-Route) for the interface that
    /// reaches `dest`. When the request came in on another transport, address family or
    /// interface (`record_route`, the inbound one), a second Record-Route names that one
    /// (RFC 5658), so that each side reaches us the way it did. An entry that faces a
    /// WebSocket client names its connection ([`crate::flow`]); two such clients get an
    /// entry each. A UDP request too large for
    /// the path MTU goes over TCP instead (RFC 3261 §18.1.1) when we listen on TCP, unless
    /// `udp_only` (a client that registered over UDP: a deliberate departure from that
    /// MUST, as Kamailio's default, for a phone may listen on nothing else or sit behind a
    /// NAT that lets only UDP in). `None` when no interface reaches `dest`.
    fn prepare(
        &self,
        msg: &Message,
        dest: Destination,
        udp_only: bool,
        branch: &str,
        recording: Recording,
        fwd: Forward<'_>,
    ) -> Option<Prepared> {
        let Recording {
            inbound: record_route,
            issued,
            src,
        } = recording;
        // (Only a TLS entry can be SIPS: the question is asked for those alone.)
        let tls = |p: Protocol| p == Protocol::Tls;
        let any_tls = tls(dest.protocol) || record_route.is_some_and(|(p, _)| tls(p));
        let sips = record_route.is_some() && any_tls && sips_request(msg, &fwd);
        let marks = (fwd.relay_media, sips);
        let key = issued.as_ref().map(Issued::as_str);
        let secret = &self.config().route_secret;
        let call_id = msg.call_id().unwrap_or_default();
        // The entry facing a client on a connection names it: its dialog's requests reach
        // it over the connection, whatever its Contact says.
        let flow_in = record_route
            .filter(|(p, _)| p.is_reliable() && src.protocol == *p)
            .map(|(p, _)| crate::flow::token(secret, p, src.addr, call_id));
        let build = |dest: Destination| {
            let local = self.config().advertised_for(dest.protocol, dest.addr)?;
            let local_text = self.local_text(local);
            let mut via = String::with_capacity(80);
            for part in [
                "SIP/2.0/",
                dest.protocol.via_token(),
                " ",
                &local_text,
                ";branch=",
                branch,
                ";rport",
            ] {
                via.push_str(part);
            }
            // Towards a WebSocket client, or a client reached over its own connection.
            let to = match dest.protocol {
                Protocol::Ws | Protocol::Wss => Some(dest.connection.unwrap_or(dest.addr)),
                Protocol::Udp => None,
                _ => dest.connection,
            };
            let flow_out = to.map(|to| crate::flow::token(secret, dest.protocol, to, call_id));
            let rr = record_route.map(|_| {
                let entry = (key, flow_out.as_deref());
                self::record_route(dest.protocol, &local_text, entry, marks)
            });
            let rr_in = record_route
                // Another interface, or a client's connection to name in an entry its own.
                .filter(|&inbound| inbound != (dest.protocol, local) || flow_in.is_some())
                .map(|(protocol, addr)| {
                    let entry = (key, flow_in.as_deref());
                    self::record_route(protocol, &self.local_text(addr), entry, marks)
                });
            let request = forward_request(
                msg,
                &Forward {
                    via: &via,
                    record_route: rr.as_deref(),
                    record_route_in: rr_in.as_deref(),
                    ..fwd
                },
            );
            Some(Prepared {
                dest,
                request,
                fallback: None,
                issued,
                nat: None,
                alternatives: None,
            })
        };
        let prepared = build(dest)?;
        if dest.protocol == Protocol::Udp && !udp_only && prepared.request.len() > MAX_UDP_REQUEST {
            if let Some(tcp) = build(Destination::new(Protocol::Tcp, dest.addr)) {
                return Some(Prepared {
                    fallback: Some((dest, prepared.request)),
                    ..tcp
                });
            }
        }
        Some(prepared)
    }

    /// The key of our Record-Route entries in `msg`, relayed (its Contact fixed to
    /// `contact`, when `fix_nated_contact()` asked).
    fn issue(&self, msg: &Message, contact: Option<SocketAddr>, media: bool) -> Option<Issued> {
        crate::route_key::issue(&self.config().route_secret, msg, contact, media)
    }

    /// CANCEL (§16.10): answer 200 and cancel the matching INVITE's branches, or 481.
    fn handle_cancel(&self, c: &mut RouteCtx<'_>) {
        let Ok(target) = TransactionKey::cancel_target(c.msg) else {
            return;
        };
        let mut cancelled = Vec::new();
        let found = {
            let target = self.shards().digest(&target);
            let mut shard = self.shards().lock(Shards::for_digest(target));
            let id = shard.by_key.get(&target).copied();
            let ctx = id.and_then(|id| Some((id, shard.contexts.get_mut(&id)?)));
            let found = ctx.map(|(id, ctx)| {
                ctx.cancel(c.now, self.config(), &mut cancelled);
                id
            });
            if let Some(id) = found {
                shard.settle(id);
            }
            // Answered and lingering: nothing to cancel, but a transaction it matched.
            found.is_some() || id.is_some_and(|id| shard.lingering.contains_key(&id))
        };
        if found {
            self.respond(c, 200, reason(200), &[]);
        } else {
            self.respond(c, 481, reason(481), &[]);
        }
        c.out.append(&mut cancelled);
    }
}

/// True when the request as forwarded has a SIPS Request-URI or first Route.
fn sips_request(msg: &Message, fwd: &Forward<'_>) -> bool {
    let sips = |uri: &str| {
        uri.get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
    };
    let ruri = fwd.request_uri.or_else(|| msg.request_uri_str());
    let route = match fwd.push_routes.first() {
        Some(r) => Some(crate::route_key::route_uri(r).to_owned()),
        None if fwd.drop_routes => None,
        None => msg
            .routes()
            .filter_map(Result::ok)
            .nth(fwd.pop_routes)
            .map(|r| r.uri.as_str().to_owned()),
    };
    ruri.is_some_and(sips) || route.as_deref().is_some_and(sips)
}

/// Where a binding's REGISTER came from, when its Contact (`contact`, parsed) says it is
/// behind NAT there: another address, or over UDP another port, unless the REGISTER's Via
/// named its source (a client that sends from one port and listens on another, as a
/// third-party registration does; Kamailio's default `nat_uac_test("19")` takes it at its
/// word too). An RFC 5626 flow (a `reg-id`) is always reached where it came from.
pub(crate) fn nat_source(b: &Binding, contact: &Uri<'_>) -> Option<(Protocol, SocketAddr)> {
    let (protocol, addr) = b.source_addr()?;
    let any_port = protocol.is_reliable() || (b.via_at_source && b.reg_id.is_none());
    nat::contact_behind_nat(contact, addr, any_port).then_some((protocol, addr))
}

/// The changes for one target: the script's edits, the target's Request-URI and Path, and
/// the RFC 3581 parameters; Via and Record-Route are added per interface by `prepare`.
fn forward_to<'a>(
    edits: &'a Edits,
    uri: Option<&'a str>,
    path: &'a [String],
    received: &'a Option<String>,
    rport: &'a Option<String>,
) -> Forward<'a> {
    let route = &edits.route;
    Forward {
        request_uri: uri.or(route.new_uri.as_deref()),
        pop_routes: route.pop_routes,
        drop_routes: route.drop_routes,
        remove: route.remove,
        push_routes: path,
        received: received.as_deref(),
        rport: rport.as_deref(),
        append: &edits.append,
        remove_named: &edits.remove,
        max_forwards: edits.max_forwards,
        fix_contact: edits.contact,
        body: edits.body.as_ref(),
        relay_media: edits.media,
        ..Forward::default()
    }
}

/// What forwarding does to the received request's top Via (RFC 3581: `received` when the
/// source IP differs from sent-by, rport was asked for or a `received` is there already;
/// `rport` with the source port when it is there at all), and where responses then go back
/// to (§18.2.2): always the source address, never one the sender wrote itself. The Via is
/// parsed once for both.
struct ViaFixes<'a> {
    received: Option<String>,
    rport: Option<String>,
    /// The Via's branch.
    branch: &'a str,
    up: Upstream<'a>,
}

impl ViaFixes<'_> {
    /// The forward of the request to `uri` (if it changes) through `path`, with these fixes.
    fn forward<'e>(
        &'e self,
        edits: &'e Edits,
        uri: Option<&'e str>,
        path: &'e [String],
    ) -> Forward<'e> {
        forward_to(edits, uri, path, &self.received, &self.rport)
    }
}

fn via_fixes(msg: &Message, src: Destination) -> Option<ViaFixes<'_>> {
    let via = msg.top_via().ok()?;
    let with_rport = via.rport().is_some();
    let add_received =
        via.host.ip() != Some(src.addr.ip()) || with_rport || via.received().is_some();
    let protocol = Protocol::from_token(via.transport);
    let port = match with_rport {
        true => src.addr.port(),
        false => via
            .port
            .unwrap_or(protocol.map_or(5060, Protocol::default_port)),
    };
    let branch = via.branch().unwrap_or_default();
    // A transport we cannot answer over (WS, SCTP… in a Via behind a front end) gets a tag
    // that vouches for nothing: the request goes on, a response that outlives it does not.
    let up = match protocol {
        Some(protocol) => Upstream::new(
            Destination::new(protocol, SocketAddr::new(src.addr.ip(), port)),
            branch,
        ),
        None => Upstream::nowhere(),
    };
    Some(ViaFixes {
        received: add_received.then(|| src.addr.ip().to_string()),
        rport: with_rport.then(|| src.addr.port().to_string()),
        branch,
        up,
    })
}

/// `a` as Via, Record-Route and stored next hops write it: `192.0.2.1:5060`,
/// `[2001:db8::1]:5060`.
pub(crate) fn sock_text(a: SocketAddr) -> String {
    let mut text = String::with_capacity(24);
    push_addr(&mut text, a);
    text
}

/// Appends [`sock_text`] of `a` (IPv4 without `fmt`: every followed call writes two). An
/// IPv6 address goes without its scope id, which a SIP URI cannot carry.
pub(crate) fn push_addr(out: &mut String, a: SocketAddr) {
    match a {
        SocketAddr::V4(_) => push_socket_addr(out, a),
        SocketAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "[{}]:{}", v6.ip(), v6.port());
        }
    }
}

/// Our Record-Route entry for an interface (`local`, as [`sock_text`] writes it), with the
/// dialog's key and the flow token of the WebSocket client it faces when there are, and
/// [`MEDIA_PARAM`] when its media goes through the relay (written in one buffer: every
/// relayed INVITE makes one or two).
fn record_route(
    protocol: Protocol,
    local: &str,
    (key, flow): (Option<&str>, Option<&str>),
    (media, sips): (bool, bool),
) -> String {
    let mut rr = String::with_capacity(72);
    // A SIPS request is record-routed with a SIPS URI (RFC 3261 §16.6 step 4) where its
    // hop is TLS; such a URI's transport is TLS without saying so.
    if sips && protocol == Protocol::Tls {
        rr.push_str("<sips:");
        rr.push_str(local);
    } else {
        rr.push_str("<sip:");
        rr.push_str(local);
        if protocol != Protocol::Udp {
            rr.push_str(";transport=");
            rr.push_str(protocol.name());
        }
    }
    rr.push_str(";lr");
    if media {
        rr.push(';');
        rr.push_str(MEDIA_PARAM);
    }
    for (param, value) in [(crate::route_key::PARAM, key), (crate::flow::PARAM, flow)] {
        if let Some(v) = value {
            rr.push(';');
            rr.push_str(param);
            rr.push('=');
            rr.push_str(v);
        }
    }
    rr.push('>');
    rr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::branch::{upstream_ok, BranchSecret};
    use crate::core::response_destination;
    use crate::tests::{msg, udp};

    /// What `via_fixes` predicts for the responses is what they will say once our Via is off.
    #[test]
    fn the_upstream_of_a_forward_is_where_its_responses_go() {
        let src = udp("203.0.113.5:40000");
        for via in [
            "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKa",
            "SIP/2.0/UDP 203.0.113.5:5060;rport;branch=z9hG4bKb",
            "SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKc",
            "SIP/2.0/UDP phone.example.net;rport;branch=z9hG4bKd",
            "SIP/2.0/UDP 203.0.113.5;received=198.51.100.1;branch=z9hG4bKe",
            "SIP/2.0/UDP 203.0.113.5:5060;received=198.51.100.7;rport=9999;branch=z9hG4bKg",
            "SIP/2.0/TCP 203.0.113.5:5070;rport=1;branch=z9hG4bKf",
        ] {
            let req = msg(&format!(
                "OPTIONS sip:bob@example.com SIP/2.0\nVia: {via}\nFrom: <sip:a@example.net>;tag=1\n\
To: <sip:bob@example.com>\nCall-ID: up\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
            ));
            let fixes = via_fixes(&req, src).expect(via);
            let mut e = req.edit();
            if let Some(r) = &fixes.received {
                e.set_top_via_param("received", Some(r));
            }
            if let Some(p) = &fixes.rport {
                e.set_top_via_param("rport", Some(p));
            }
            let forwarded = Message::parse(e.finish()).unwrap();
            let dest = response_destination(&forwarded).expect(via);
            assert_eq!(dest.addr.ip(), src.addr.ip(), "only ever the source: {via}");
            let ours = new_stateless_branch(&KEY, 1, &fixes.up);
            let top = forwarded.top_via().unwrap();
            let seen = Upstream::new(dest, top.branch().unwrap_or_default());
            assert!(upstream_ok(&KEY, &ours, &seen), "{via}");
        }
    }

    #[test]
    fn a_via_transport_we_cannot_answer_over_is_forwarded_but_vouches_for_nothing() {
        let req = msg("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/TLS 203.0.113.5:5061;branch=z9hG4bKt\n\
From: <sip:a@example.net>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: t\nCSeq: 1 OPTIONS\n\n");
        let fixes = via_fixes(&req, udp("203.0.113.5:5061")).expect("forwarded");
        let ours = new_stateless_branch(&KEY, 1, &fixes.up);
        let anywhere = Upstream::new(udp("203.0.113.5:5061"), "z9hG4bKt");
        assert!(!upstream_ok(&KEY, &ours, &anywhere));
    }

    const KEY: BranchSecret = BranchSecret(*b"0123456789abcdef");
}
