//! Sessions, their streams and the packets between their sides.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::pool::PortPool;
use crate::rtp;

/// A call, as the relay knows it: its Call-ID and the caller's From tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId {
    /// The Call-ID.
    pub call_id: String,
    /// The From tag of the offer's sender.
    pub from_tag: String,
}

/// One side of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Who sent the offer.
    Offerer,
    /// Who answered it.
    Answerer,
}

/// The relay's ports of each stream of a session (`None`: not relayed).
pub type SessionPorts = Vec<Option<StreamPorts>>;

/// What each side of each stream sent: (offerer, answerer) per stream.
pub type SessionStats = Vec<Option<(Stats, Stats)>>;

/// What one side sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets relayed.
    pub packets: u64,
    /// Bytes relayed.
    pub bytes: u64,
    /// Of those, RTCP's packets and bytes.
    pub rtcp_packets: u64,
    /// (See `rtcp_packets`.)
    pub rtcp_bytes: u64,
    /// RTP packets missing from the sequence numbers seen.
    pub lost: u64,
    /// Packets dropped: from another address than the one latched (on a WebRTC leg: one
    /// that passed no connectivity check).
    pub dropped: u64,
    /// SRTP refused on a WebRTC leg: a wrong authentication tag, a replay, too short.
    pub refused: u64,
    /// When the last packet came.
    pub last: Option<Instant>,
    pub(crate) last_seq: Option<u16>,
}

impl Stats {
    /// Counts a packet relayed, which came on the RTP port or the RTCP one (`rtcp_port`);
    /// gives the RTP packets found missing before it (none for a fax's, `raw`).
    pub(crate) fn count(&mut self, now: Instant, packet: &[u8], rtcp_port: bool, raw: bool) -> u64 {
        self.packets += 1;
        self.bytes += packet.len() as u64;
        self.last = Some(now);
        if raw {
            // Not RTP: no sequence numbers to count losses in.
        } else if rtp::is_rtcp(packet) {
            self.rtcp_packets += 1;
            self.rtcp_bytes += packet.len() as u64;
        } else if !rtcp_port {
            if let Some(seq) = rtp::sequence(packet) {
                match self.last_seq {
                    Some(last) if !rtp::ahead(last, seq) => {}
                    Some(last) => {
                        self.last_seq = Some(seq);
                        let gap = rtp::gap(last, seq);
                        self.lost += gap;
                        return gap;
                    }
                    None => self.last_seq = Some(seq),
                }
            }
        }
        0
    }
}

/// What the relay did since it started, over every session (ended ones too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sessions now.
    pub sessions: usize,
    /// Port pairs free now.
    pub ports_free: usize,
    /// Packets relayed.
    pub packets: u64,
    /// Bytes relayed.
    pub bytes: u64,
    /// Packets dropped: from another address than the one latched, or to an unknown port.
    pub dropped: u64,
    /// RTP packets missing from the sequence numbers seen.
    pub lost: u64,
    /// SRTP packets WebRTC legs refused (a wrong authentication tag, a replay).
    pub refused: u64,
    /// Of `packets`, those the kernel forwarded by itself ([`Relay::with_offload`]).
    pub kernel_packets: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.sessions += o.sessions;
        self.ports_free += o.ports_free;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.dropped += o.dropped;
        self.lost += o.lost;
        self.refused += o.refused;
        self.kernel_packets += o.kernel_packets;
    }
}

/// Where a packet goes: out of our port `from`, to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// Our port to send from (the one the other side sends to, so that it latches us).
    pub from: u16,
    /// The other side's address.
    pub to: SocketAddr,
}

/// Why a packet is not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// No stream has this port.
    UnknownPort,
    /// Not from the address this side latched to (strict source), or, before it latched,
    /// not RTP from the address its SDP or its signalling names.
    WrongSource,
    /// The other side's address is not known yet (no answer).
    NoDestination,
    /// Not media: RTP, RTCP (version 2), DTLS or ZRTP.
    NotRtp,
    /// ICE or DTLS on a WebRTC leg: taken by the leg, whose answers wait in
    /// [`Relay::poll_transmit`].
    Taken,
    /// Refused by a WebRTC leg: SRTP whose tag is wrong, a replay, media before the leg
    /// is keyed, or the leg failed (counted in its side's `refused`).
    Refused,
}

/// The relay's ports of one stream in the SDP each side gets: the answerer is told
/// `for_answerer`, the offerer `for_offerer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPorts {
    /// The RTP port the offerer sends to (in the answer it gets).
    pub for_offerer: u16,
    /// The RTP port the answerer sends to (in the offer it gets).
    pub for_answerer: u16,
}

/// One side of one stream.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// Our RTP port this side sends to (RTCP on the next one).
    pub(crate) port: u16,
    /// Its RTP address as its SDP gives it.
    expected: Option<SocketAddr>,
    /// The address its signalling came from (behind NAT, its media comes from there too).
    signalled: Option<IpAddr>,
    /// Its signalling came from a trusted peer (an edge proxy, an SBC): its media may come
    /// from anywhere, and is latched from its first packet.
    via_trusted: bool,
    /// Where its RTP and RTCP really come from, and when each last came.
    pub(crate) latched: [Option<SocketAddr>; 2],
    pub(crate) heard: [Option<Instant>; 2],
    /// The source each channel's flow was installed in the kernel for (`None`: not).
    pub(crate) offloaded: [Option<SocketAddr>; 2],
    pub(crate) stats: Stats,
    /// This side is a browser: the relay's WebRTC leg facing it (ICE-lite, DTLS-SRTP,
    /// rtcp-mux on the RTP port).
    pub(crate) leg: Option<Box<webrtc::Leg>>,
}

/// How long a side's latched source may be silent before a packet from where its SDP or
/// signalling says latches it anew (its NAT gave it a new mapping, it roamed).
pub(crate) const RELEARN: Duration = Duration::from_secs(5);

/// How long a session whose last SDP put every stream on hold lives without a packet (as
/// rtpengine's `silent-timeout`): a held call sends nothing.
pub(crate) const HELD: Duration = Duration::from_secs(3600);

impl Endpoint {
    fn new(port: u16) -> Endpoint {
        Endpoint {
            port,
            expected: None,
            signalled: None,
            via_trusted: false,
            latched: [None; 2],
            heard: [None; 2],
            offloaded: [None; 2],
            stats: Stats::default(),
            leg: None,
        }
    }

    /// True when this side may latch to `src`: the address its SDP names or its
    /// signalling came from (any, through a trusted peer). Anyone else's first packet
    /// would take its media (RTP Bleed).
    fn may_latch(&self, src: SocketAddr) -> bool {
        let ip = src.ip().to_canonical();
        self.via_trusted
            || self.expected.is_some_and(|e| e.ip().to_canonical() == ip)
            || self.signalled.is_some_and(|s| s.to_canonical() == ip)
    }

    /// Takes a packet from `src` on the RTP or RTCP port (`rtcp`), latching to it if this
    /// side may (it was `told` our port, and `src` is where its SDP or signalling says);
    /// from anyone else it is dropped and counted.
    pub(crate) fn accept(
        &mut self,
        now: Instant,
        src: SocketAddr,
        rtcp: bool,
        told: bool,
    ) -> Result<(), Dropped> {
        let c = usize::from(rtcp);
        match self.latched[c] {
            Some(a) if a == src => {}
            // Not latched yet, or silent so long that its NAT may have moved it.
            None if told && self.may_latch(src) => self.latched[c] = Some(src),
            Some(_) if self.silent(c, now) && self.may_latch(src) => {
                self.latched[c] = Some(src);
            }
            _ => {
                self.stats.dropped += 1;
                return Err(Dropped::WrongSource);
            }
        }
        self.heard[c] = Some(now);
        Ok(())
    }

    /// True when the source latched for channel `c` (RTP 0, RTCP 1) sent nothing for
    /// [`RELEARN`].
    fn silent(&self, c: usize, now: Instant) -> bool {
        self.heard[c].is_none_or(|t| now.saturating_duration_since(t) >= RELEARN)
    }

    /// What this side's SDP and signalling (from a trusted peer, or not) now say. What it
    /// latched to is forgotten: its packets are learnt again (a re-INVITE that moved it,
    /// a new NAT mapping after a hold, another fork's answer).
    fn update(&mut self, expected: SocketAddr, signalled: Option<IpAddr>, via_trusted: bool) {
        self.latched = [None; 2];
        self.expected = Some(expected);
        self.signalled = signalled;
        self.via_trusted = via_trusted;
    }

    /// Where packets for this side go: its latched source, else its SDP's address (RTCP
    /// on the port after RTP's). A private SDP address of a party whose signalling came
    /// from a public one (not a trusted peer's) is behind NAT: until it latches, its NAT's
    /// address if of its family (its early media reaches it, and a stranger's SDP leads
    /// nowhere into our networks), else nowhere.
    pub(crate) fn destination(&self, rtcp: bool) -> Option<SocketAddr> {
        self.latched[usize::from(rtcp)].or_else(|| {
            let mut a = self.expected?;
            let public = self
                .signalled
                .map(|s| s.to_canonical())
                .filter(|s| !nat::is_private(*s) && !s.is_loopback() && !self.via_trusted);
            if let Some(nat) = public.filter(|_| nat::is_private(a.ip())) {
                // Of the other family, its NAT's address is not known: nothing goes to
                // it (nor into the private networks a stranger's SDP names) till it
                // latches.
                if nat.is_ipv4() != a.ip().to_canonical().is_ipv4() {
                    return None;
                }
                a.set_ip(nat);
            }
            if rtcp {
                a.set_port(a.port().wrapping_add(1));
            }
            Some(a)
        })
    }
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) offerer: Endpoint,
    pub(crate) answerer: Endpoint,
    /// A fax's UDPTL (T.38), relayed as it comes: not RTP.
    raw: bool,
    /// An SDP said what each side speaks (WebRTC or plain): later ones keep it unless told.
    pub(crate) kinds_known: bool,
}

#[derive(Debug)]
pub(crate) struct Session {
    id: SessionId,
    pub(crate) streams: Vec<Option<Stream>>,
    /// When it was made, last offered or answered, or last saw a packet.
    pub(crate) last: Instant,
    /// The tag of the party whose answer it holds.
    answerer: Option<String>,
    /// An answer came: the media timeout applies (before, the call may ring a while).
    answered: bool,
    /// The answerer's SDP went to the offerer, which only then knows the ports it sends
    /// to: before, a packet there is a stranger's guess, and latches nothing.
    answer_sent: bool,
    /// Its last SDP put every stream on hold: it lives [`HELD`] without a packet.
    held: bool,
    /// Whom its streams count against while it rings (an IPv4 address, an IPv6 /64).
    source: Option<IpAddr>,
    /// Its caller neither authenticated nor is trusted: while it rings, its streams count
    /// in the share of the pool strangers may hold.
    stranger: bool,
    /// The offer that made it came in a response (the answer then comes in a request).
    offer_in_response: bool,
}

/// Where an offer came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    /// The address its signalling came from: the offerer's (behind NAT, its media's too).
    pub from: Option<IpAddr>,
    /// Whom its streams count against while the call rings: the caller, the sender of the
    /// INVITE, also when the callee's response made the offer.
    pub charged: Option<IpAddr>,
    /// It came in a response (the callee's, to an INVITE without SDP): the answer comes in
    /// a request (ACK, PRACK).
    pub in_response: bool,
    /// The caller authenticated: its ringing streams are not in the strangers' share.
    pub authenticated: bool,
    /// It came inside an established dialog (a re-INVITE): a session it makes (the call's
    /// ended on a long silence) is an answered call's.
    pub in_dialog: bool,
}

impl From<Option<IpAddr>> for Origin {
    /// An offer in a request, charged to its own sender.
    fn from(from: Option<IpAddr>) -> Origin {
        Origin {
            from,
            charged: from,
            in_response: false,
            authenticated: false,
            in_dialog: false,
        }
    }
}

/// What counts as one source: an IPv4 address, or an IPv6 /64 (one subscriber's network).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

/// How long a session without an answer lives at least: a call may ring for timer C
/// (180 s by default) before its 200 comes.
pub const UNANSWERED: Duration = Duration::from_secs(300);

/// The relay's state: its sessions and ports.
#[derive(Debug)]
pub struct Relay {
    pool: PortPool,
    /// The maps a packet looks in hash fast: their keys are ours, not a stranger's
    /// (Call-IDs and tags, in `ids`, keep std's hash).
    pub(crate) sessions: HashMap<u64, Session, ahash::RandomState>,
    pub(crate) ids: HashMap<SessionId, u64>,
    /// Each RTP port handed out: its session, stream and the side that sends to it.
    pub(crate) by_port: HashMap<u16, (u64, usize, Side), ahash::RandomState>,
    next: u64,
    timeout: Duration,
    /// Most streams one source may hold in sessions not answered yet (0: no limit), and
    /// the sources exempt (trusted peers).
    ringing_limit: usize,
    /// Most streams callers that neither authenticated nor are exempt may hold, together,
    /// in sessions not answered yet: a quarter of the pool's pairs (half its ports), so
    /// that strangers calling from many addresses leave the rest to subscribers' calls.
    strangers_limit: usize,
    exempt: Vec<ipnet::IpNet>,
    /// Counters since start (the gauges are filled in by [`Relay::totals`]).
    pub(crate) totals: Totals,
    /// What WebRTC legs need: the relay's DTLS identity and the address its candidates
    /// name (`None`: no WebRTC, every side plain).
    pub(crate) webrtc: Option<crate::bridge::WebRtc>,
    /// The sessions with WebRTC legs (whose timers [`Relay::handle_timeouts`] runs).
    pub(crate) with_legs: HashSet<u64, ahash::RandomState>,
    /// Datagrams legs send out of our ports (ICE answers, DTLS records).
    pub(crate) out: VecDeque<(u16, webrtc::Transmit)>,
    /// The last packet [`Relay::on_packet`] relayed, when it is not the one that came
    /// (SRTP made plain, or plain made SRTP).
    pub(crate) rewritten: Option<Vec<u8>>,
    /// Latched flows go to the kernel ([`Relay::with_offload`]), and the changes wait here.
    pub(crate) offload: bool,
    pub(crate) offloads: VecDeque<crate::Offload>,
}

impl Relay {
    /// A relay over these ports; a session with no packet for `timeout` ends.
    pub fn new(pool: PortPool, timeout: Duration) -> Relay {
        Relay {
            pool,
            sessions: HashMap::default(),
            ids: HashMap::new(),
            by_port: HashMap::default(),
            next: 0,
            timeout,
            ringing_limit: 0,
            strangers_limit: usize::MAX,
            exempt: Vec::new(),
            totals: Totals::default(),
            webrtc: None,
            with_legs: HashSet::default(),
            out: VecDeque::new(),
            rewritten: None,
            offload: false,
            offloads: VecDeque::new(),
        }
    }

    /// An offer: `media` has the offerer's RTP address per stream (`None`: not relayed, a
    /// declined stream), `origin` where it came from. Gives the ports per stream, the same
    /// again for a re-offer of a session that has them; `None` when the pool is exhausted,
    /// or the party charged holds too many ringing streams (nothing is kept then).
    pub fn offer(
        &mut self,
        now: Instant,
        id: &SessionId,
        media: &[Option<SocketAddr>],
        origin: impl Into<Origin>,
    ) -> Option<SessionPorts> {
        let Origin {
            from,
            charged,
            in_response,
            authenticated,
            in_dialog,
        } = origin.into();
        // A re-INVITE's session is an answered call's: charged to no one.
        let charged = charged.filter(|_| !in_dialog);
        let source = charged.map(source_of);
        let exempt = charged.is_some_and(|ip| self.trusted(ip));
        let via_trusted = from.is_some_and(|ip| self.trusted(ip));
        let stranger = source.is_some() && !exempt && !authenticated;
        if !exempt && self.over_ringing_limit(id, media, source, stranger) {
            return None;
        }
        let key = match self.ids.get(id) {
            Some(&k) => k,
            // Nothing to relay: no session for it.
            None if media.iter().all(Option::is_none) => return Some(vec![None; media.len()]),
            None => {
                let k = self.next;
                self.next += 1;
                let s = Session {
                    id: id.clone(),
                    streams: Vec::new(),
                    last: now,
                    answerer: None,
                    answered: in_dialog,
                    answer_sent: false,
                    held: false,
                    source,
                    stranger,
                    offer_in_response: in_response,
                };
                self.sessions.insert(k, s);
                self.ids.insert(id.clone(), k);
                k
            }
        };
        // First the ports of new streams, then the addresses: a refused re-offer leaves the
        // streams the call has as they were (RFC 3264 §8).
        let mut taken = Vec::new();
        for (i, addr) in media.iter().enumerate() {
            let session = self.sessions.get_mut(&key)?;
            if session.streams.len() <= i {
                session.streams.resize_with(i + 1, || None);
            }
            if addr.is_some() && session.streams[i].is_none() {
                if self.add_stream(key, i).is_none() {
                    // Exhausted: give back what this offer took, and the session if new.
                    self.give_back(key, &taken);
                    return None;
                }
                taken.push(i);
            }
        }
        let session = self.sessions.get_mut(&key)?;
        for (stream, addr) in session.streams.iter_mut().zip(media) {
            if let (Some(s), Some(addr)) = (stream.as_mut(), addr) {
                s.unload(&mut self.offloads);
                s.offerer.update(*addr, from, via_trusted);
            }
        }
        session.last = now;
        Some(self.ports(key, media.len()))
    }

    /// An SDP from the answerer's side, the party with tag `tag` (its dialog's): `media` has
    /// its RTP address per stream, `from` the address its signalling came from. One that
    /// leaves the call `ringing` (early media; the answerer's own offer; an answer in a
    /// request, whose tags anyone could forge) does not answer it, and its streams still
    /// count against its source's limit. Gives the ports per stream; `None` without an offer.
    pub fn answer(
        &mut self,
        now: Instant,
        id: &SessionId,
        media: &[Option<SocketAddr>],
        from: Option<IpAddr>,
        tag: &str,
        ringing: bool,
    ) -> Option<SessionPorts> {
        let key = *self.ids.get(id)?;
        let via_trusted = from.is_some_and(|ip| self.trusted(ip));
        for (i, addr) in media.iter().enumerate() {
            let Some(addr) = addr else { continue };
            let session = self.sessions.get_mut(&key)?;
            if session.streams.len() <= i {
                session.streams.resize_with(i + 1, || None);
            }
            // A stream the answerer's side adds (its re-INVITE offering video) gets ports
            // too, when any are left; not while the call rings (an answer has the offer's
            // streams, and more would escape the caller's limit).
            if session.streams[i].is_none()
                && (!session.answered || self.add_stream(key, i).is_none())
            {
                continue;
            }
            let session = self.sessions.get_mut(&key)?;
            if let Some(s) = session.streams[i].as_mut() {
                s.unload(&mut self.offloads);
                s.answerer.update(*addr, from, via_trusted);
            }
        }
        let session = self.sessions.get_mut(&key)?;
        if !tag.is_empty() {
            session.answerer = Some(tag.to_owned());
        }
        session.answered |= !ringing;
        session.answer_sent = true;
        session.last = now;
        Some(self.ports(key, media.len()))
    }

    /// True when session `id`'s call was answered by another party than the one with tag
    /// `tag`: a 2xx of another fork that crossed the first one's, which the call does not
    /// follow (and a BYE to it ends nothing).
    pub fn answered_by_other(&self, id: &SessionId, tag: &str) -> bool {
        let session = self.ids.get(id).and_then(|k| self.sessions.get(k));
        session.is_some_and(|s| {
            s.answered && !tag.is_empty() && s.answerer.as_deref().is_some_and(|t| t != tag)
        })
    }

    /// The last SDP of session `id` put every stream on hold (`sendonly`, `inactive`,
    /// `0.0.0.0`), or took them off it.
    pub fn set_held(&mut self, id: &SessionId, held: bool) {
        if let Some(s) = self.ids.get(id).and_then(|k| self.sessions.get_mut(k)) {
            s.held = held;
        }
    }

    /// The streams `raw` of session `id` carry a fax's UDPTL (T.38): relayed as they come.
    pub fn set_raw(&mut self, id: &SessionId, raw: &[usize]) {
        if let Some(s) = self.ids.get(id).and_then(|k| self.sessions.get_mut(k)) {
            for (i, stream) in s.streams.iter_mut().enumerate() {
                if let Some(stream) = stream {
                    stream.raw = raw.contains(&i);
                }
            }
        }
    }

    /// True for an address of a trusted peer.
    fn trusted(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|n| n.contains(&ip.to_canonical()))
    }

    /// Whether SDP in a request from the answerer's side, the party with tag `tag`, may
    /// update session `id`: the answer to an offer its callee made in a response, or the
    /// answerer's own re-offer. Anyone may send a request with the tags swapped.
    pub fn takes_request_from_answerer(&self, id: &SessionId, tag: &str) -> bool {
        let session = self.ids.get(id).and_then(|k| self.sessions.get(k));
        session.is_some_and(|s| s.offer_in_response || s.answerer.as_deref() == Some(tag))
    }

    /// The call of session `id` was answered (its callee's 2xx offered media): its streams
    /// no longer count as ringing.
    pub fn mark_answered(&mut self, id: &SessionId) {
        if let Some(s) = self.ids.get(id).and_then(|k| self.sessions.get_mut(k)) {
            s.answered = true;
        }
    }

    /// Ends the session of call `call_id` between the parties with tags `a` and `b` (either
    /// may be the caller's, either empty): not when the other tag names another party than
    /// the one whose answer the session holds (a BYE to another fork's 2xx). With one tag
    /// alone (a CANCEL, a failed INVITE), a session the callee's late offer made ends too.
    /// With neither (ng's `delete` with a Call-ID alone), every session of the call ends.
    pub fn delete_dialog(&mut self, call_id: &str, a: &str, b: &str) -> bool {
        if a.is_empty() && b.is_empty() {
            let all: Vec<SessionId> = self
                .sessions
                .values()
                .filter(|s| s.id.call_id == call_id)
                .map(|s| s.id.clone())
                .collect();
            for id in &all {
                self.remove(id);
            }
            return !all.is_empty();
        }
        let (a, b) = if a.is_empty() { (b, a) } else { (a, b) };
        if b.is_empty() {
            // A CANCEL or failure names the caller alone: a late offer's session is the
            // callee's (made by its 18x/2xx), with the caller's tag as the answerer's, or
            // no answer yet.
            let late: Vec<SessionId> = self
                .sessions
                .values()
                .filter(|s| s.id.call_id == call_id && s.id.from_tag != a)
                .filter(|s| s.answerer.as_deref().is_none_or(|t| t == a))
                .map(|s| s.id.clone())
                .collect();
            for id in &late {
                self.remove(id);
            }
            if !late.is_empty()
                && !self.ids.contains_key(&SessionId {
                    call_id: call_id.to_owned(),
                    from_tag: a.to_owned(),
                })
            {
                return true;
            }
        }
        for (caller, other) in [(a, b), (b, a)] {
            let id = SessionId {
                call_id: call_id.to_owned(),
                from_tag: caller.to_owned(),
            };
            let Some(session) = self.ids.get(&id).and_then(|k| self.sessions.get(k)) else {
                continue;
            };
            let theirs = session.answerer.as_deref();
            if other.is_empty() || theirs.is_none_or(|t| t == other) {
                return self.remove(&id);
            }
            return false;
        }
        false
    }

    /// Limits the streams one source (an IPv4 address, an IPv6 /64) may hold in sessions not
    /// answered yet: a stranger may call a subscriber without authenticating, and each
    /// ringing call holds its ports for minutes. 0: no limit. Sources in `exempt` (trusted
    /// peers: a carrier's trunk rings many calls at once) have none. With a limit, callers
    /// that neither authenticated nor are exempt hold, together, at most half the pool's
    /// ports in calls not answered yet.
    pub fn with_ringing_limit(mut self, streams: usize, exempt: Vec<ipnet::IpNet>) -> Relay {
        self.ringing_limit = streams;
        self.strangers_limit = match streams {
            0 => usize::MAX,
            _ => self.pool.available() / 4,
        };
        self.exempt = exempt;
        self
    }

    /// The streams `source` holds in sessions not answered yet.
    pub fn ringing_streams(&self, source: IpAddr) -> usize {
        self.ringing(Some(source_of(source))).0
    }

    /// The streams in sessions not answered yet: `source`'s, and strangers' in all.
    fn ringing(&self, source: Option<IpAddr>) -> (usize, usize) {
        let (mut theirs, mut strangers) = (0, 0);
        for s in self.sessions.values().filter(|s| !s.answered) {
            let n = s.streams.iter().flatten().count();
            if s.source.is_some() && s.source == source {
                theirs += n;
            }
            if s.stranger {
                strangers += n;
            }
        }
        (theirs, strangers)
    }

    /// True when the streams an offer would add to session `id` (new, or not answered
    /// yet) take its source past its limit, or strangers past theirs. A scan of the
    /// sessions: offers are rare beside packets.
    fn over_ringing_limit(
        &self,
        id: &SessionId,
        media: &[Option<SocketAddr>],
        source: Option<IpAddr>,
        stranger: bool,
    ) -> bool {
        let Some(source) = source.filter(|_| self.ringing_limit > 0) else {
            return false;
        };
        let session = self.ids.get(id).and_then(|k| self.sessions.get(k));
        if session.is_some_and(|s| s.answered) {
            return false;
        }
        // A re-offer's streams count against whom the call's do, wherever it came from.
        let (source, stranger) =
            session.map_or((Some(source), stranger), |s| (s.source, s.stranger));
        let Some(source) = source else {
            return false;
        };
        let has = |i: usize| session.is_some_and(|s| s.streams.get(i).is_some_and(Option::is_some));
        let added = (0..media.len())
            .filter(|&i| media[i].is_some() && !has(i))
            .count();
        let (theirs, strangers) = self.ringing(Some(source));
        added > 0
            && (theirs + added > self.ringing_limit
                || stranger && strangers + added > self.strangers_limit)
    }

    /// Gives stream `i` of session `key` a pair facing each side; `None` when the pool has
    /// not two left (nothing taken then).
    fn add_stream(&mut self, key: u64, i: usize) -> Option<()> {
        let a = self.pool.take()?;
        let Some(b) = self.pool.take() else {
            self.pool.give(a);
            return None;
        };
        self.by_port.insert(a, (key, i, Side::Offerer));
        self.by_port.insert(b, (key, i, Side::Answerer));
        let session = self.sessions.get_mut(&key)?;
        session.streams[i] = Some(Stream {
            offerer: Endpoint::new(a),
            answerer: Endpoint::new(b),
            raw: false,
            kinds_known: false,
        });
        Some(())
    }

    /// The ports of session `id`'s first `n` streams.
    pub fn ports_of(&self, id: &SessionId, n: usize) -> SessionPorts {
        match self.ids.get(id) {
            Some(&key) => self.ports(key, n),
            None => vec![None; n],
        }
    }

    fn ports(&self, key: u64, n: usize) -> SessionPorts {
        let Some(session) = self.sessions.get(&key) else {
            return vec![None; n];
        };
        (0..n)
            .map(|i| {
                session.streams.get(i)?.as_ref().map(|s| StreamPorts {
                    for_offerer: s.offerer.port,
                    for_answerer: s.answerer.port,
                })
            })
            .collect()
    }

    /// Undoes an offer that could not get its ports: the streams it made, and the session
    /// if it has no other.
    fn give_back(&mut self, key: u64, streams: &[usize]) {
        if let Some(session) = self.sessions.get_mut(&key) {
            for &i in streams {
                if let Some(mut s) = session.streams[i].take() {
                    s.unload(&mut self.offloads);
                    for port in [s.offerer.port, s.answerer.port] {
                        self.by_port.remove(&port);
                        self.pool.give(port);
                    }
                }
            }
            if session.streams.iter().all(Option::is_none) {
                let id = session.id.clone();
                self.remove(&id);
            }
        }
    }

    /// Which session an SDP of the sender with tag `sender` belongs to, and its side there:
    /// the offerer's when a session was made with that tag, the answerer's when one was made
    /// with the other party's tag `other` (its re-INVITE, its answer); `None` without either.
    pub fn side_of(&self, call_id: &str, sender: &str, other: &str) -> Option<(SessionId, Side)> {
        let id = |tag: &str| SessionId {
            call_id: call_id.to_owned(),
            from_tag: tag.to_owned(),
        };
        let mine = id(sender);
        if self.ids.contains_key(&mine) {
            return Some((mine, Side::Offerer));
        }
        let theirs = id(other);
        self.ids
            .contains_key(&theirs)
            .then_some((theirs, Side::Answerer))
    }

    /// Ends a session: its ports go back to the pool.
    fn remove(&mut self, id: &SessionId) -> bool {
        let Some(key) = self.ids.remove(id) else {
            return false;
        };
        self.with_legs.remove(&key);
        if let Some(session) = self.sessions.remove(&key) {
            for mut s in session.streams.into_iter().flatten() {
                s.unload(&mut self.offloads);
                for port in [s.offerer.port, s.answerer.port] {
                    self.by_port.remove(&port);
                    self.pool.give(port);
                }
            }
        }
        true
    }

    /// Ends the sessions that saw no packet for the media timeout (one not answered yet,
    /// ringing, for [`UNANSWERED`] at least); gives their ids.
    pub fn expire(&mut self, now: Instant) -> Vec<SessionId> {
        let limit = |s: &Session| match (s.held, s.answered) {
            (true, _) => self.timeout.max(HELD),
            (false, true) => self.timeout,
            (false, false) => self.timeout.max(UNANSWERED),
        };
        let dead: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| now.saturating_duration_since(s.last) >= limit(s))
            .map(|s| s.id.clone())
            .collect();
        for id in &dead {
            self.remove(id);
        }
        dead
    }

    /// A packet arrived on our port `port` from `src`: where to send it, or why not.
    pub fn on_packet(
        &mut self,
        now: Instant,
        port: u16,
        src: SocketAddr,
        packet: &[u8],
    ) -> Result<Forward, Dropped> {
        if self.rewritten.is_some() {
            self.rewritten = None;
        }
        let forward = self.relay_packet(now, port, src, packet);
        match forward {
            Ok(_) => {
                self.totals.packets += 1;
                self.totals.bytes += packet.len() as u64;
            }
            Err(Dropped::NoDestination | Dropped::Taken) => {}
            Err(Dropped::Refused) => self.totals.refused += 1,
            Err(_) => self.totals.dropped += 1,
        }
        forward
    }

    /// What to send for the packet the last [`Relay::on_packet`] relayed, when it is not
    /// the packet that came: SRTP from a browser made plain, or plain RTP made SRTP for one.
    pub fn rewritten(&self) -> Option<&[u8]> {
        self.rewritten.as_deref()
    }

    fn relay_packet(
        &mut self,
        now: Instant,
        port: u16,
        src: SocketAddr,
        packet: &[u8],
    ) -> Result<Forward, Dropped> {
        let rtcp = port % 2 == 1;
        let &(key, i, side) = self.by_port.get(&(port & !1)).ok_or(Dropped::UnknownPort)?;
        let session = self.sessions.get_mut(&key).ok_or(Dropped::UnknownPort)?;
        // The offerer learns its ports from the answer: before, a packet is a guess.
        let told = side == Side::Answerer || session.answer_sent;
        let stream = session.streams[i].as_mut().ok_or(Dropped::UnknownPort)?;
        let raw = stream.raw;
        let (from, to) = match side {
            Side::Offerer => (&mut stream.offerer, &mut stream.answerer),
            Side::Answerer => (&mut stream.answerer, &mut stream.offerer),
        };
        if from.leg.is_some() || to.leg.is_some() {
            let arrival = crate::bridge::Arrival {
                now,
                src,
                data: packet,
                rtcp_port: rtcp,
                told,
            };
            let f = crate::bridge::relay(&arrival, from, to, &mut self.out, &mut self.totals);
            if f.is_ok() || f == Err(Dropped::Taken) {
                session.last = now;
            }
            return f.map(|(forward, data)| {
                self.rewritten = data;
                forward
            });
        }
        // Only media (RTP, RTCP, DTLS, ZRTP; a fax's UDPTL on its stream) is relayed: the
        // relay is no path for anything else.
        if !raw && !rtp::is_media(packet) {
            return Err(Dropped::NotRtp);
        }
        let before = from.latched[usize::from(rtcp)];
        from.accept(now, src, rtcp, told)?;
        let dest = to.destination(rtcp).ok_or(Dropped::NoDestination)?;
        let forward = Forward {
            from: to.port + u16::from(rtcp),
            to: dest,
        };
        if self.offload && !raw {
            stream.offload(side, before, usize::from(rtcp), &mut self.offloads);
        }
        let from = match side {
            Side::Offerer => &mut stream.offerer,
            Side::Answerer => &mut stream.answerer,
        };
        // While the kernel forwards its RTP, a packet that still comes here (its neighbour
        // not resolved yet, too big) is not compared with the sequence.
        let kernel = from.offloaded[0].is_some() && !rtcp;
        self.totals.lost += from.stats.count(now, packet, rtcp, raw || kernel);
        session.last = now;
        Ok(forward)
    }

    /// What each side of each stream of a session sent: (offerer, answerer) per stream.
    pub fn stats(&self, id: &SessionId) -> Option<SessionStats> {
        let session = self.sessions.get(self.ids.get(id)?)?;
        Some(
            session
                .streams
                .iter()
                .map(|s| s.as_ref().map(|s| (s.offerer.stats, s.answerer.stats)))
                .collect(),
        )
    }

    /// Which streams of a session have ports (empty without the session): what
    /// [`Relay::undo_offer`] keeps.
    pub fn streams(&self, id: &SessionId) -> Vec<bool> {
        let session = self.ids.get(id).and_then(|k| self.sessions.get(k));
        session.map_or(Vec::new(), |s| {
            s.streams.iter().map(Option::is_some).collect()
        })
    }

    /// Undoes an offer whose ports could not be used: the streams it added go (all of them,
    /// and the session, if it was new); those in `before` ([`Relay::streams`]) stay.
    pub fn undo_offer(&mut self, id: &SessionId, before: &[bool]) {
        let Some(&key) = self.ids.get(id) else {
            return;
        };
        let added: Vec<usize> = self.sessions.get(&key).map_or(Vec::new(), |s| {
            (0..s.streams.len())
                .filter(|&i| s.streams[i].is_some() && !before.get(i).copied().unwrap_or(false))
                .collect()
        });
        self.give_back(key, &added);
    }

    /// Frees the ports of the streams of session `id` that an answer declined (port 0):
    /// such a stream carries no media (RFC 3264 §6), and an offer that takes it up again
    /// gets new ports. Not while the call rings (its 2xx may yet accept the stream). True
    /// when it freed any.
    pub fn decline(&mut self, id: &SessionId, streams: &[usize]) -> bool {
        let Some(session) = self.ids.get(id).and_then(|k| self.sessions.get_mut(k)) else {
            return false;
        };
        if !session.answered {
            return false;
        }
        let mut freed = false;
        for &i in streams {
            if let Some(mut s) = session.streams.get_mut(i).and_then(Option::take) {
                s.unload(&mut self.offloads);
                for port in [s.offerer.port, s.answerer.port] {
                    self.by_port.remove(&port);
                    self.pool.give(port);
                }
                freed = true;
            }
        }
        freed
    }

    /// True when a stream holds RTP port `port`.
    pub fn holds_port(&self, port: u16) -> bool {
        self.by_port.contains_key(&port)
    }

    /// The counters since start, with the sessions and free ports now.
    pub fn totals(&self) -> Totals {
        Totals {
            sessions: self.sessions.len(),
            ports_free: self.pool.available(),
            ..self.totals
        }
    }

    /// Every session with its counters.
    pub fn list(&self) -> Vec<(SessionId, SessionStats)> {
        self.sessions
            .values()
            .filter_map(|s| Some((s.id.clone(), self.stats(&s.id)?)))
            .collect()
    }

    /// Port pairs left.
    pub fn ports_available(&self) -> usize {
        self.pool.available()
    }
}
