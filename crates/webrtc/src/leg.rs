//! One WebRTC leg of a relayed stream, sans-IO: the relay is an ICE-lite agent (`is`) that
//! answers the browser's connectivity checks on its one port, a DTLS endpoint (`dimpl`)
//! whose peer must present the certificate its SDP's fingerprint names, and the SRTP
//! contexts the handshake keys. Media in comes out as plain RTP and RTCP; plain media out
//! goes in as SRTP, to the browser.
//!
//! Nothing is sent to, nor taken from, an address that has not passed a connectivity check
//! with our password, and media stops going to one that has not checked for
//! [`CONSENT`] (RFC 7675's timeout): a stranger's DTLS or SRTP sprayed at the port is
//! refused unread, and a browser that went away is not sent to for long.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dimpl::{Dtls, Output, SrtpProfile};
use is::stun::{StunMessage, StunPacket};
use is::{Candidate, IceAgent, IceAgentEvent, IceCreds, Protocol};
use sdp::{Fingerprint, IceCredentials, Setup};

use crate::demux::{kind, Kind};
use crate::identity::{matches, Identity};
use crate::srtp::{Profile, Refusals, Srtp};

/// Sources a leg answers checks from (per ICE session): a browser checks from a few; each
/// new one is a candidate and a pair in the agent.
const MAX_SOURCES: usize = 16;

/// Candidate pairs an agent keeps: a browser checks from a few addresses at most.
const MAX_PAIRS: usize = 16;

/// How long media goes to an address after its last check (RFC 7675 §5.1: 30 s; browsers
/// check every few seconds).
pub const CONSENT: Duration = Duration::from_secs(30);

/// A datagram a leg sends out of its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes.
    pub to: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What became of a datagram that reached a leg's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An SRTP packet, now plain RTP.
    Rtp(Vec<u8>),
    /// An SRTCP packet, now plain RTCP.
    Rtcp(Vec<u8>),
    /// ICE or DTLS, taken by the leg (its answers wait in [`Leg::poll_transmit`]).
    Handled,
    /// Not taken.
    Refused(Refusal),
}

/// Why a datagram was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// From an address that passed no connectivity check (or a check that failed), or a
    /// check from one source too many.
    Unchecked,
    /// Media before the handshake keyed SRTP and the peer's certificate was verified.
    NotKeyed,
    /// SRTP refused: a bad authentication tag, a replay, a malformed packet.
    Srtp,
    /// Neither STUN, DTLS nor (S)RTP.
    NotMedia,
    /// The leg failed: the peer's certificate is not the one its SDP names.
    Failed,
}

/// What a leg counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// SRTP and SRTCP refused, by cause.
    pub srtp: Refusals,
    /// Datagrams from addresses that passed no check.
    pub unchecked: u64,
    /// Media before the leg was keyed.
    pub not_keyed: u64,
}

/// The far end's parameters, from its SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Its ICE credentials.
    pub ice: IceCredentials,
    /// Its certificate's fingerprint.
    pub fingerprint: Fingerprint,
    /// Its DTLS role (`None`: not said, taken as `actpass`).
    pub setup: Option<Setup>,
    /// Its `a=mid`, which SDP towards it keeps.
    pub mid: Option<String>,
}

/// Where the DTLS handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Handshaking, or done but the peer's certificate not yet checked.
    Handshake,
    /// Keyed, the peer's certificate checked: media flows.
    Keyed,
    /// The peer's certificate is not its SDP's; a new fingerprint starts again.
    Failed,
}

/// One WebRTC leg: ICE-lite, DTLS-SRTP and SRTP on one port (rtcp-mux, BUNDLE).
pub struct Leg {
    identity: Identity,
    local: SocketAddr,
    ice: IceAgent,
    dtls: Dtls,
    /// We are the DTLS client (the peer said `a=setup:passive`).
    active: bool,
    state: State,
    remote: Option<Remote>,
    /// A browser's offer that restarts ICE or DTLS, and our new credentials for it: taken
    /// when our answer goes ([`Leg::commit`]); a refused offer leaves the leg as it was.
    pending: Option<(Remote, IceCreds)>,
    /// The peer's certificate, held till its fingerprint is known.
    peer_cert: Option<Vec<u8>>,
    /// SRTP keys, held till the certificate is checked.
    keys: Option<(Vec<u8>, SrtpProfile)>,
    /// (inbound, outbound).
    srtp: Option<(Srtp, Srtp)>,
    /// The addresses whose checks were taken in this ICE session ([`MAX_SOURCES`] at
    /// most), with when each last checked.
    checked: Vec<(SocketAddr, Instant)>,
    nominated: Option<SocketAddr>,
    /// Where the last authenticated SRTP came from: media goes back there.
    media_from: Option<SocketAddr>,
    /// Where the peer's DTLS came from.
    dtls_peer: Option<SocketAddr>,
    dtls_timeout: Option<Instant>,
    out: VecDeque<Transmit>,
    stats: LegStats,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leg")
            .field("local", &self.local)
            .field("state", &self.state)
            .field("nominated", &self.nominated)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Fresh ICE credentials from the system's random source: 24 characters of ufrag
/// (RFC 8839 §5.4: at least 4) and 32 of password (at least 22, 128 bits).
fn credentials() -> IceCreds {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 56];
    // Without the system's random source nothing here is safe: fail loudly.
    getrandom::fill(&mut bytes).expect("the system's random source");
    let text: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect();
    IceCreds {
        ufrag: text[..24].to_owned(),
        pass: text[24..].to_owned(),
    }
}

impl Leg {
    /// A leg whose one candidate is `local` (the address the SDP names: the relay's
    /// announced address and the port); the DTLS server until told otherwise.
    pub fn new(identity: &Identity, local: SocketAddr, now: Instant) -> Leg {
        let mut ice = IceAgent::new(credentials());
        ice.set_ice_lite(true);
        ice.set_controlling(false);
        ice.set_max_candidate_pairs(MAX_PAIRS);
        if let Ok(c) = Candidate::host(local, "udp") {
            ice.add_local_candidate(c);
        }
        Leg {
            dtls: Dtls::new_12(identity.config.clone(), identity.certificate.clone(), now),
            identity: identity.clone(),
            local,
            ice,
            active: false,
            state: State::Handshake,
            remote: None,
            pending: None,
            peer_cert: None,
            keys: None,
            srtp: None,
            checked: Vec::new(),
            nominated: None,
            media_from: None,
            dtls_peer: None,
            dtls_timeout: None,
            out: VecDeque::new(),
            stats: LegStats::default(),
            buf: vec![0; 2048],
        }
    }

    /// Our ICE credentials, for the SDP: the same for the call's life, new only when the
    /// peer restarts ICE (the new ones from the offer that does, till it is answered).
    pub fn credentials(&self) -> IceCredentials {
        let c = match &self.pending {
            Some((_, local)) => local,
            None => self.ice.local_credentials(),
        };
        IceCredentials {
            ufrag: c.ufrag.clone(),
            pwd: c.pass.clone(),
        }
    }

    /// The peer's `a=mid`, if it said one.
    pub fn mid(&self) -> Option<&str> {
        self.remote.as_ref()?.mid.as_deref()
    }

    /// Our candidate's address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Our `a=setup` in an SDP we send: `actpass` in an offer before the peer said
    /// anything, else the role taken.
    pub fn setup(&self, offer: bool) -> Setup {
        match (offer && self.remote.is_none(), self.active) {
            (true, _) => Setup::ActPass,
            (false, true) => Setup::Active,
            (false, false) => Setup::Passive,
        }
    }

    /// The peer's parameters, from an SDP it sent (`offer`, or an answer); checks that came
    /// before (a browser answering our offer checks at once) wait for them. The same again
    /// changes nothing (a re-INVITE for hold keeps everything). In an offer, a new ufrag is
    /// an ICE restart (we take new credentials too, RFC 8839 §4.4.1.1.1, and keep the DTLS
    /// session) and a new fingerprint a new DTLS session: both wait for our answer
    /// ([`Leg::commit`]). An answer with others (another fork's) is taken as it is.
    pub fn set_remote(&mut self, now: Instant, remote: Remote, offer: bool) {
        let Some(old) = &self.remote else {
            self.ice.set_remote_credentials(creds(&remote.ice));
            self.active = remote.setup == Some(Setup::Passive);
            self.dtls.set_active(self.active);
            self.remote = Some(remote);
            self.pending = None;
            self.settled(now);
            return;
        };
        let same_ice = old.ice == remote.ice;
        let same_cert = old.fingerprint == remote.fingerprint;
        if same_ice && same_cert {
            self.pending = None;
            if let Some(r) = self.remote.as_mut() {
                r.mid = remote.mid;
            }
            return;
        }
        match offer {
            true => self.pending = Some((remote, credentials())),
            false => self.apply(now, remote, None),
        }
    }

    /// Takes the peer's offer that restarted ICE or DTLS, now that our answer (with
    /// [`Leg::credentials`]) goes to it.
    pub fn commit(&mut self, now: Instant) {
        if let Some((remote, local)) = self.pending.take() {
            self.apply(now, remote, Some(local));
        }
    }

    /// New remote parameters (and our new credentials, for an ICE restart).
    fn apply(&mut self, now: Instant, remote: Remote, local: Option<IceCreds>) {
        let Some(old) = self.remote.take() else {
            return;
        };
        if old.ice != remote.ice {
            match local {
                Some(local) => self.ice.ice_restart(local, true),
                None => self
                    .ice
                    .ice_restart(self.ice.local_credentials().clone(), true),
            }
            self.ice.set_remote_credentials(creds(&remote.ice));
            self.checked.clear();
            self.nominated = None;
            self.media_from = None;
        }
        if old.fingerprint != remote.fingerprint {
            self.active = remote.setup == Some(Setup::Passive);
            self.restart_dtls(now);
        }
        self.remote = Some(remote);
        self.settled(now);
    }

    /// After new remote parameters: checks that waited are answered, and the certificate
    /// checked if it came.
    fn settled(&mut self, now: Instant) {
        self.drain_ice(now);
        if self.active {
            self.drain_dtls(now);
        }
        if self.state == State::Handshake {
            self.check_peer();
        }
    }

    /// A new DTLS session in the role taken (the peer's certificate changed, or it ended
    /// the last one).
    fn restart_dtls(&mut self, now: Instant) {
        self.dtls = Dtls::new_12(
            self.identity.config.clone(),
            self.identity.certificate.clone(),
            now,
        );
        self.dtls.set_active(self.active);
        self.state = State::Handshake;
        self.peer_cert = None;
        self.keys = None;
        self.srtp = None;
        self.dtls_timeout = None;
    }

    /// True once media flows: keyed, the peer's certificate checked.
    pub fn keyed(&self) -> bool {
        self.state == State::Keyed
    }

    /// When `addr` last passed a check.
    fn checked_at(&self, addr: SocketAddr) -> Option<Instant> {
        self.checked
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|&(_, t)| t)
    }

    /// Where media for the peer goes at `now`: where its authenticated media comes from,
    /// else the address it nominated, else the last one that passed a check; none that
    /// has not checked for [`CONSENT`].
    pub fn destination(&self, now: Instant) -> Option<SocketAddr> {
        let fresh = |a: &SocketAddr| {
            self.checked_at(*a)
                .is_some_and(|t| now.saturating_duration_since(t) < CONSENT)
        };
        self.media_from
            .filter(fresh)
            .or(self.nominated.filter(fresh))
            .or_else(|| {
                let latest = self.checked.iter().max_by_key(|(_, t)| *t);
                latest.map(|&(a, _)| a).filter(fresh)
            })
    }

    /// What it counted.
    pub fn stats(&self) -> LegStats {
        let mut s = self.stats;
        if let Some((inbound, _)) = &self.srtp {
            s.srtp = inbound.refused();
        }
        s
    }

    /// A datagram from `src` reached the leg's port (an IPv4 source as a dual-stack socket
    /// gives it, IPv4-mapped, is taken as IPv4: the family of our candidate).
    pub fn receive(&mut self, now: Instant, src: SocketAddr, packet: &[u8]) -> Received {
        let src = SocketAddr::new(src.ip().to_canonical(), src.port());
        let checked = |l: &Leg| l.media_from == Some(src) || l.checked_at(src).is_some();
        match kind(packet) {
            Kind::Stun => self.stun(now, src, packet),
            Kind::Dtls => self.dtls(now, src, packet),
            Kind::Rtp | Kind::Rtcp if !checked(self) => self.unchecked(),
            Kind::Rtp | Kind::Rtcp if self.state == State::Failed => {
                Received::Refused(Refusal::Failed)
            }
            Kind::Rtp | Kind::Rtcp if self.srtp.is_none() => {
                self.stats.not_keyed += 1;
                Received::Refused(Refusal::NotKeyed)
            }
            Kind::Rtp => self.unprotect(src, packet, false),
            Kind::Rtcp => self.unprotect(src, packet, true),
            Kind::Other => Received::Refused(Refusal::NotMedia),
        }
    }

    fn unchecked(&mut self) -> Received {
        self.stats.unchecked += 1;
        Received::Refused(Refusal::Unchecked)
    }

    fn unprotect(&mut self, src: SocketAddr, packet: &[u8], rtcp: bool) -> Received {
        let Some((inbound, _)) = self.srtp.as_mut() else {
            return Received::Refused(Refusal::NotKeyed);
        };
        let plain = match rtcp {
            false => inbound.unprotect_rtp(packet).map(Received::Rtp),
            true => inbound.unprotect_rtcp(packet).map(Received::Rtcp),
        };
        match plain {
            Some(p) => {
                self.media_from = Some(src);
                p
            }
            None => Received::Refused(Refusal::Srtp),
        }
    }

    /// Plain RTP or RTCP for the peer at `now`: protected, and where it goes; `None` while
    /// the leg is not keyed or knows no address of the peer that consents.
    pub fn protect(&mut self, now: Instant, packet: &[u8]) -> Option<Transmit> {
        let to = self.destination(now)?;
        let (_, outbound) = self.srtp.as_mut()?;
        let data = match kind(packet) {
            Kind::Rtcp => outbound.protect_rtcp(packet)?,
            Kind::Rtp => outbound.protect_rtp(packet)?,
            _ => return None,
        };
        Some(Transmit { to, data })
    }

    fn stun(&mut self, now: Instant, src: SocketAddr, packet: &[u8]) -> Received {
        let Ok(message) = StunMessage::parse(packet) else {
            return Received::Refused(Refusal::NotMedia);
        };
        let request = message.is_binding_request();
        // A request without USERNAME is no check of ours (and `is` wants one); a check
        // with our password from one source too many is refused before the agent makes
        // a candidate of it.
        if request && message.split_username().is_none() {
            return self.unchecked();
        }
        let new_source = request && self.checked_at(src).is_none();
        if new_source && (self.checked.len() >= MAX_SOURCES || !self.ice.accepts_message(&message))
        {
            return self.unchecked();
        }
        let packet = StunPacket {
            proto: Protocol::Udp,
            source: src,
            destination: self.local,
            message,
        };
        self.ice.handle_timeout(now);
        if !self.ice.handle_packet(now, packet) {
            return self.unchecked();
        }
        if request {
            match self.checked.iter_mut().find(|(a, _)| *a == src) {
                Some((_, t)) => *t = now,
                None => self.checked.push((src, now)),
            }
        }
        self.drain_ice(now);
        // A DTLS client waits for an address to send its hello to.
        if self.active {
            self.drain_dtls(now);
        }
        Received::Handled
    }

    fn drain_ice(&mut self, now: Instant) {
        self.ice.handle_timeout(now);
        while let Some(event) = self.ice.poll_event() {
            if let IceAgentEvent::NominatedSend { destination, .. } = event {
                self.nominated = Some(destination);
            }
        }
        while let Some(t) = self.ice.poll_transmit() {
            self.out.push_back(Transmit {
                to: t.destination,
                data: t.contents.to_vec(),
            });
        }
    }

    fn dtls(&mut self, now: Instant, src: SocketAddr, packet: &[u8]) -> Received {
        if self.checked_at(src).is_none() {
            return self.unchecked();
        }
        if self.state == State::Failed {
            return Received::Refused(Refusal::Failed);
        }
        self.dtls_peer = Some(src);
        let fed = self
            .dtls
            .handle_timeout(now)
            .and_then(|()| self.dtls.handle_packet(packet));
        if let Err(e) = fed {
            // A fatal error (a forged alert, a flood of fragments): a handshake starts
            // over; keyed media goes on with its keys.
            tracing::debug!(error = %e, "WebRTC leg: DTLS error");
            if self.state == State::Handshake {
                self.restart_dtls(now);
            }
            return Received::Handled;
        }
        self.drain_dtls(now);
        Received::Handled
    }

    /// Takes what the DTLS endpoint has for us: records to send, the peer's certificate,
    /// the keys, its next timer. Nothing is taken while there is nowhere to send to (a
    /// client's hello waits for the browser's first check).
    fn drain_dtls(&mut self, now: Instant) {
        let Some(to) = self.dtls_peer.or_else(|| self.destination(now)) else {
            return;
        };
        loop {
            match self.dtls.poll_output(&mut self.buf) {
                Output::Packet(p) => self.out.push_back(Transmit {
                    to,
                    data: p.to_vec(),
                }),
                Output::BufferTooSmall { needed } => self.buf.resize(needed, 0),
                Output::Timeout(t) => {
                    self.dtls_timeout = Some(t);
                    break;
                }
                Output::PeerCert(der) => self.peer_cert = Some(der.to_vec()),
                Output::KeyingMaterial(km, profile) => self.keys = Some((km.to_vec(), profile)),
                Output::CloseNotify => {
                    // The peer ended the session: media stops, its keys forgotten, until a
                    // new handshake.
                    self.restart_dtls(now);
                    return;
                }
                _ => {}
            }
        }
        if self.state == State::Handshake {
            self.check_peer();
        }
    }

    /// Once the peer's certificate, its SDP's fingerprint and the keys are all known: the
    /// certificate is checked and SRTP keyed, or the leg fails.
    fn check_peer(&mut self) {
        let (Some(cert), Some(remote)) = (&self.peer_cert, &self.remote) else {
            return;
        };
        if !matches(&remote.fingerprint, cert) {
            tracing::info!("WebRTC leg: the peer's certificate is not the one its SDP names");
            self.state = State::Failed;
            return;
        }
        let Some((km, profile)) = &self.keys else {
            return;
        };
        if let Some(srtp) = keyed(km, *profile, self.active) {
            self.srtp = Some(srtp);
            self.state = State::Keyed;
        }
    }

    /// A datagram to send out of the leg's port: checks' answers, DTLS records.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When [`Leg::handle_timeout`] is next due: a DTLS retransmission while handshaking.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dtls_timeout.filter(|_| self.state == State::Handshake)
    }

    /// Time passed: DTLS retransmits a flight, or starts over when it gives up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Handshake {
            return;
        }
        if self.dtls_timeout.is_some_and(|t| t <= now) {
            self.dtls_timeout = None;
            if let Err(e) = self.dtls.handle_timeout(now) {
                tracing::debug!(error = %e, "WebRTC leg: DTLS handshake timed out");
                self.restart_dtls(now);
                return;
            }
            self.drain_dtls(now);
        }
    }
}

fn creds(c: &IceCredentials) -> IceCreds {
    IceCreds {
        ufrag: c.ufrag.clone(),
        pass: c.pwd.clone(),
    }
}

/// The SRTP contexts (inbound, outbound) the keying material gives (RFC 5764 §4.2: the
/// client's key, the server's key, the client's salt, the server's salt).
pub(crate) fn keyed(km: &[u8], profile: SrtpProfile, client: bool) -> Option<(Srtp, Srtp)> {
    let profile = match profile {
        SrtpProfile::AES128_CM_SHA1_80 => Profile::AesCm128HmacSha1_80,
        SrtpProfile::AEAD_AES_128_GCM => Profile::AeadAes128Gcm,
        SrtpProfile::AEAD_AES_256_GCM => Profile::AeadAes256Gcm,
        _ => return None,
    };
    let (k, s) = profile.key_and_salt_len();
    if km.len() < 2 * (k + s) {
        return None;
    }
    let (client_key, server_key) = (&km[..k], &km[k..2 * k]);
    let (client_salt, server_salt) = (&km[2 * k..2 * k + s], &km[2 * k + s..2 * (k + s)]);
    let theirs = |c| match c {
        true => (server_key, server_salt),
        false => (client_key, client_salt),
    };
    let (in_key, in_salt) = theirs(client);
    let (out_key, out_salt) = theirs(!client);
    let inbound = Srtp::new(profile, in_key, in_salt).ok()?;
    let outbound = Srtp::new(profile, out_key, out_salt).ok()?;
    Some((inbound, outbound))
}
