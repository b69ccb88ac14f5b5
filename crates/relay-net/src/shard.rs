//! One thread's share of the relay: its sessions and the sockets of their ports, whatever
//! the backend that moves the packets ([`crate::epoll`] or [`crate::uring`]).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use relay::{
    Carrier, MediaError, Origin, PortPool, Relay, SessionId, SessionPorts, SessionStats, Side,
    StreamPorts, Totals, WebRtcStream,
};
use sdp::WebRtcLeg;
use tokio::sync::oneshot;

use crate::kernel::Offloaded;

/// What an SDP says of its streams besides their addresses.
#[derive(Debug)]
pub(crate) struct Marks {
    /// The streams it declines (port 0).
    pub(crate) declined: Vec<usize>,
    /// It puts every stream on hold.
    pub(crate) held: bool,
    /// The streams that carry a fax's UDPTL.
    pub(crate) raw: Vec<usize>,
}

impl Marks {
    pub(crate) fn of(s: &sdp::Session<'_>) -> Marks {
        Marks {
            declined: relay::declined_streams(s),
            held: relay::holds(s),
            raw: relay::raw_streams(s),
        }
    }
}

/// What the rest of the server asks of a shard.
#[derive(Debug)]
pub(crate) enum Control {
    /// An SDP of the party with tag `sender` (the other one's: `other`); a session is
    /// made for it when `create` and there is none.
    Update {
        call_id: String,
        sender: String,
        other: String,
        media: Vec<Option<SocketAddr>>,
        /// What the SDP says of its streams besides their addresses (`None`: no SDP).
        marks: Option<Marks>,
        origin: Origin,
        create: bool,
        /// The message the SDP came in (`None`: not known, over ng).
        carrier: Option<Carrier>,
        /// What the SDP says of WebRTC, per stream.
        webrtc: Vec<WebRtcStream>,
        reply: oneshot::Sender<Result<Updated, MediaError>>,
    },
    /// Ends the session of the dialog between the parties with these tags.
    Delete {
        call_id: String,
        tags: (String, String),
        reply: oneshot::Sender<bool>,
    },
    /// The shard's counters.
    Totals { reply: oneshot::Sender<Totals> },
    /// The shard's sessions, with their counters.
    List {
        reply: oneshot::Sender<Vec<(SessionId, SessionStats)>>,
    },
}

/// What an SDP's update gives: the sender's side, the ports per stream and, per stream,
/// the relay's WebRTC leg facing a browser receiver.
pub(crate) type Updated = (Side, SessionPorts, Vec<Option<WebRtcLeg>>);

/// Shard `i` of `n`'s ports: the pairs whose RTP port over 2 is `i` modulo `n`, in a
/// random order (a stranger cannot tell which port the next call gets, to spray it first).
pub(crate) fn ports_of(range: &RangeInclusive<u16>, i: usize, n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = relay::pairs(range)
        .filter(|p| usize::from(p / 2) % n == i)
        .collect();
    // Fisher–Yates, with std's per-process random hash keys as the source.
    let random = std::collections::hash_map::RandomState::new();
    for k in (1..ports.len()).rev() {
        let j = (std::hash::BuildHasher::hash_one(&random, k) % (k as u64 + 1)) as usize;
        ports.swap(k, j);
    }
    ports
}

/// The sockets of a shard's ports, as a backend keeps them.
pub(crate) trait Sockets {
    /// True when `port` has a socket.
    fn has(&self, port: u16) -> bool;
    /// Gives `port` a socket: one bound now, or its own still closing, taken back.
    fn open(&mut self, bind: IpAddr, port: u16) -> std::io::Result<()>;
    /// Closes the sockets of the ports `keep` refuses.
    fn retain(&mut self, keep: impl Fn(u16) -> bool);
    /// Sends `data` from `port`'s socket to `to` at once (a full send buffer drops it).
    fn send_now(&mut self, port: u16, data: &[u8], to: SocketAddr);
}

/// What a shard's sessions may do.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// A session with no packet for this long ends.
    pub(crate) timeout: Duration,
    /// Streams one source may hold in calls not answered yet (0: no limit), but those
    /// in `exempt`.
    pub(crate) ringing_per_source: usize,
    pub(crate) exempt: Vec<ipnet::IpNet>,
    /// The relay's DTLS identity and the address its candidates name: its sessions may
    /// face browsers (`None`: plain RTP only).
    pub(crate) webrtc: Option<(webrtc::Identity, IpAddr)>,
    /// The kernel's forwarding path, which takes the streams once latched (`None`: all
    /// packets through the relay's sockets).
    pub(crate) kernel: Option<std::sync::Arc<relay_kernel::KernelPath>>,
}

/// A shard: its relay (the sessions) and the sockets of their ports.
pub(crate) struct Shard<S> {
    pub(crate) relay: Relay,
    bind: IpAddr,
    pub(crate) sockets: S,
    /// When a refused offer was last logged.
    last_refusal: Option<Instant>,
    /// The shard's flows in the kernel's forwarding path.
    kernel: Option<Offloaded>,
}

impl<S: Sockets> Shard<S> {
    pub(crate) fn new(bind: IpAddr, ports: Vec<u16>, limits: Limits, sockets: S) -> Self {
        let mut relay = Relay::new(PortPool::from_ports(ports), limits.timeout)
            .with_ringing_limit(limits.ringing_per_source, limits.exempt);
        if limits.kernel.is_some() {
            relay = relay.with_offload();
        }
        Shard {
            relay: match limits.webrtc {
                Some((identity, announce)) => relay.with_webrtc(identity, announce),
                None => relay,
            },
            bind,
            sockets,
            last_refusal: None,
            kernel: limits.kernel.map(Offloaded::new),
        }
    }

    /// A packet that reached `port` from `src`: the port to send it from and where to, or
    /// `None` when it is not relayed (dropped, or taken by a WebRTC leg). What to send is
    /// the packet as it came, or what `relay.rewritten()` gives (a WebRTC leg's SRTP made
    /// plain, or plain made SRTP).
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        port: u16,
        src: SocketAddr,
        packet: &[u8],
    ) -> Option<(u16, SocketAddr)> {
        let f = self.relay.on_packet(now, port, src, packet);
        self.flush();
        if let Some(k) = &mut self.kernel {
            k.apply(&mut self.relay);
        }
        let f = f.ok()?;
        Some((f.from, self.reach(f.to)))
    }

    /// An IPv4 party is reached from a dual-stack socket at its mapped address.
    fn reach(&self, to: SocketAddr) -> SocketAddr {
        match (self.bind, to) {
            (IpAddr::V6(_), SocketAddr::V4(v4)) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            (_, to) => to,
        }
    }

    /// Sends what WebRTC legs have to send (ICE answers, DTLS records).
    fn flush(&mut self) {
        while let Some((port, t)) = self.relay.poll_transmit() {
            let to = self.reach(t.to);
            self.sockets.send_now(port, &t.data, to);
        }
    }

    /// True when WebRTC legs have timers: [`Shard::timers`] is due every [`LEG_TICK`].
    pub(crate) fn has_legs(&self) -> bool {
        self.relay.has_legs()
    }

    /// WebRTC legs' timers: DTLS flights resent.
    pub(crate) fn timers(&mut self, now: Instant) {
        self.relay.handle_timeouts(now);
        self.flush();
    }

    /// Once a second: ends the sessions whose media stopped, and closes their sockets.
    pub(crate) fn tick(&mut self) {
        let now = Instant::now();
        if let Some(k) = &mut self.kernel {
            k.sync(&mut self.relay, now);
        }
        for id in self.relay.expire(now) {
            tracing::info!(call_id = %id.call_id, "media timeout: relay session ended");
        }
        self.close_unused();
    }

    /// Closes the sockets of ports no session holds any more (their flows leave the
    /// kernel first).
    fn close_unused(&mut self) {
        if let Some(k) = &mut self.kernel {
            k.apply(&mut self.relay);
        }
        let relay = &self.relay;
        self.sockets.retain(|port| relay.holds_port(port & !1));
    }

    /// Does what `msg` asks.
    pub(crate) fn control(&mut self, msg: Control) {
        match msg {
            Control::Update {
                call_id,
                sender,
                other,
                media,
                marks,
                origin,
                create,
                carrier,
                webrtc,
                reply,
            } => {
                let (id, side) = match self.relay.side_of(&call_id, &sender, &other) {
                    Some((id, side)) => (id, Some(side)),
                    None => {
                        let from_tag = sender.clone();
                        (SessionId { call_id, from_tag }, None)
                    }
                };
                // Another fork's 2xx that crossed the first one's: the call stays with the
                // first (over ng, where a 2xx is not told from an 18x, the last answer is
                // taken).
                let crossed = side == Some(Side::Answerer)
                    && carrier == Some(Carrier::Final)
                    && self.relay.answered_by_other(&id, &sender);
                let updated = match side {
                    Some(Side::Answerer)
                        if carrier == Some(Carrier::Request)
                            && !self.relay.takes_request_from_answerer(&id, &sender) =>
                    {
                        // Not taken (a stranger's, or another early fork's UPDATE): the
                        // request goes on as it came, not refused for want of ports.
                        Err(MediaError::NoSession)
                    }
                    Some(Side::Answerer) if crossed => {
                        Ok((Side::Answerer, self.relay.ports_of(&id, media.len())))
                    }
                    Some(Side::Answerer) => {
                        let now = Instant::now();
                        // Only an answer in a 2xx (or over ng) answers the call: a request
                        // "from the answerer" may be a stranger's, with the tags swapped.
                        let ringing = create || !matches!(carrier, None | Some(Carrier::Final));
                        let mut answered =
                            self.relay
                                .answer(now, &id, &media, origin.from, &sender, ringing);
                        // A stream its side added has new ports to bind.
                        if let Some(ports) = &answered {
                            if self.open(ports).is_err() {
                                tracing::warn!(call_id = %id.call_id, "media relay: a new stream's ports cannot be bound");
                            }
                        }
                        // Streams the answer declines give their ports back.
                        let declined = marks.as_ref().map_or(&[][..], |m| &m.declined);
                        if self.relay.decline(&id, declined) {
                            for &i in declined {
                                if let Some(p) = answered.as_mut().and_then(|a| a.get_mut(i)) {
                                    *p = None;
                                }
                            }
                            self.close_unused();
                        }
                        answered
                            .map(|p| (Side::Answerer, p))
                            .ok_or(MediaError::NoSession)
                    }
                    Some(Side::Offerer) => self.offer(&id, &media, origin, carrier),
                    None if create => self.offer(&id, &media, origin, carrier),
                    None => Err(MediaError::NoSession),
                };
                if let (Ok(_), Some(m), false) = (&updated, &marks, crossed) {
                    self.relay.set_held(&id, m.held);
                    self.relay.set_raw(&id, &m.raw);
                }
                let updated = updated.map(|(side, ports)| {
                    let legs = match (crossed, marks.is_some()) {
                        (false, true) => {
                            self.relay
                                .set_webrtc(Instant::now(), &id, side, &webrtc, create)
                        }
                        _ => vec![None; ports.len()],
                    };
                    (side, ports, legs)
                });
                self.flush();
                if let Some(k) = &mut self.kernel {
                    k.apply(&mut self.relay);
                }
                let _ = reply.send(updated);
            }
            Control::Delete {
                call_id,
                tags,
                reply,
            } => {
                let found = self.relay.delete_dialog(&call_id, &tags.0, &tags.1);
                self.close_unused();
                let _ = reply.send(found);
            }
            Control::Totals { reply } => {
                let _ = reply.send(self.relay.totals());
            }
            Control::List { reply } => {
                let _ = reply.send(self.relay.list());
            }
        }
    }

    /// An offer from the offerer's side of session `id` (made if new), its ports bound. A
    /// pair another program holds a port of goes to the end of the pool and the offer is
    /// made again with others, a bounded number of times (never a loop on "Address already
    /// in use"); a failed offer undoes only the streams it added (a re-offer's call goes
    /// on). `None` when no ports are left or can be bound.
    fn offer(
        &mut self,
        id: &SessionId,
        media: &[Option<SocketAddr>],
        origin: Origin,
        carrier: Option<Carrier>,
    ) -> Result<(Side, SessionPorts), MediaError> {
        let before = self.relay.streams(id);
        for _ in 0..8 {
            let Some(offered) = self.relay.offer(Instant::now(), id, media, origin) else {
                break;
            };
            match self.open(&offered) {
                Ok(()) => {
                    // An offer in a 2xx (the callee's, its INVITE had none) answers the call.
                    if carrier == Some(Carrier::Final) {
                        self.relay.mark_answered(id);
                    }
                    return Ok((Side::Offerer, offered));
                }
                Err(busy) => {
                    self.relay.undo_offer(id, &before);
                    self.close_unused();
                    if let Unbound::Failed = busy {
                        break;
                    }
                }
            }
        }
        self.relay.undo_offer(id, &before);
        self.close_unused();
        let (from, charged) = (origin.from, origin.charged);
        let ringing = charged.map(|ip| self.relay.ringing_streams(ip));
        // Once a second at most: a flood of refused calls does not flood the log.
        let now = Instant::now();
        if self
            .last_refusal
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last_refusal = Some(now);
            tracing::warn!(call_id = %id.call_id, ?from, ?charged, available = self.relay.ports_available(), ?ringing, "media relay: no ports for the offer (none left, its source holds too many in calls not answered yet, or callers that did not authenticate hold half the ports in such calls)");
        }
        Err(MediaError::NoPorts)
    }

    /// Gives every port of `ports` (RTP and RTCP of each side) a socket.
    fn open(&mut self, ports: &[Option<StreamPorts>]) -> Result<(), Unbound> {
        let wanted = ports
            .iter()
            .flatten()
            .flat_map(|p| [p.for_offerer, p.for_answerer])
            .flat_map(|p| [p, p + 1]);
        for port in wanted {
            if self.sockets.has(port) {
                continue;
            }
            match self.sockets.open(self.bind, port) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::debug!(port, error = %e, "media relay: the port is taken; another pair");
                    return Err(Unbound::Taken);
                }
                Err(e) => {
                    tracing::warn!(port, error = %e, "media relay: cannot bind the port");
                    return Err(Unbound::Failed);
                }
            }
        }
        Ok(())
    }
}

/// Why ports could not be bound.
enum Unbound {
    /// Another program holds a port of the pair (Linux hands out ephemeral ports from
    /// 32768 up, inside the default range): the pair goes to the end of the pool, tried
    /// again when its turn comes round, and the offer takes others.
    Taken,
    /// Another failure, which another port would not cure.
    Failed,
}

/// How often WebRTC legs' timers are looked at (a DTLS flight is resent after a second at
/// first).
pub(crate) const LEG_TICK: Duration = Duration::from_millis(50);

/// The largest packet relayed (bigger ones are dropped, by both backends).
pub(crate) const MAX_PACKET: usize = 2048;

/// A non-blocking UDP socket bound to `port` of `bind`.
/// One bound to `::` takes IPv4 too, whatever `net.ipv6.bindv6only` says.
pub(crate) fn bind(bind: IpAddr, port: u16) -> std::io::Result<std::net::UdpSocket> {
    let addr = SocketAddr::new(bind, port);
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if bind.is_ipv6() && bind.is_unspecified() {
        sock.set_only_v6(false)?;
    }
    sock.bind(&addr.into())?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    /// Also where the system makes IPv6 sockets IPv6-only: in a network namespace of its
    /// own with `net.ipv6.bindv6only = 1` (as root; elsewhere, under the default).
    #[test]
    fn a_socket_on_the_ipv6_wildcard_takes_both_families() {
        std::thread::spawn(|| {
            // SAFETY: unshare changes this thread's network namespace alone.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
                std::fs::write("/proc/sys/net/ipv6/bindv6only", "1").expect("sysctl");
                let plain = std::net::UdpSocket::bind("[::]:0").expect("bind");
                assert!(socket2::SockRef::from(&plain).only_v6().expect("option"));
            }
            let sock = super::bind("::".parse().expect("ip"), 0).expect("bind");
            assert!(!socket2::SockRef::from(&sock).only_v6().expect("option"));
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn a_shards_ports_are_its_share_in_a_random_order() {
        let range = 30000..=31999;
        let (a, b) = (super::ports_of(&range, 1, 2), super::ports_of(&range, 1, 2));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        let share: Vec<u16> = relay::pairs(&range).filter(|p| (p / 2) % 2 == 1).collect();
        assert_eq!(sorted, share);
        assert_ne!(a, b, "two shufflings of 500 pairs");
        assert_ne!(a, share, "not in order");
    }
}
