//! One WebRTC leg of a relayed stream, sans-IO: the relay is an ICE-lite agent (`is`) that
//! answers the browser's connectivity checks on its one port, a DTLS endpoint (`dimpl`)
//! whose peer must present the certificate its SDP's fingerprint names, and the SRTP
//! contexts the handshake keys. Media in comes out as plain RTP and RTCP; plain media out
//! goes in as SRTP, to the address the browser nominated.
//!
//! Nothing is sent to, nor taken from, an address that has not passed a connectivity check
//! with our password: a stranger's DTLS or SRTP sprayed at the port is refused unread.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use dimpl::{Dtls, Output, SrtpProfile};
use is::stun::{StunMessage, StunPacket};
use is::{Candidate, IceAgent, IceAgentEvent, IceCreds, Protocol};
use sdp::{Fingerprint, IceCredentials, Setup};

use crate::demux::{kind, Kind};
use crate::identity::{matches, Identity};
use crate::srtp::{Profile, Refusals, Srtp};

/// Addresses that passed a check a leg remembers (the browser's candidates it checked
/// from); an older one makes room for a new one.
const CHECKED: usize = 8;

/// Candidate pairs an agent keeps: a browser checks from a few addresses at most.
const MAX_PAIRS: usize = 16;

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
    /// From an address that passed no connectivity check (or a check that failed).
    Unchecked,
    /// Media before the handshake keyed SRTP and the peer's certificate was verified.
    NotKeyed,
    /// SRTP refused: a bad authentication tag, a replay, a malformed packet.
    Srtp,
    /// Neither STUN, DTLS nor (S)RTP.
    NotMedia,
    /// The leg failed: the peer's certificate is not the one its SDP names, or the
    /// handshake broke.
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
}

/// Where the DTLS handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Handshaking, or done but the peer's certificate not yet checked.
    Handshake,
    /// Keyed, the peer's certificate checked: media flows.
    Keyed,
    /// Broken for good; a new fingerprint (a new DTLS session) starts again.
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
    /// The peer's certificate, held till its fingerprint is known.
    peer_cert: Option<Vec<u8>>,
    /// SRTP keys, held till the certificate is checked.
    keys: Option<(Vec<u8>, SrtpProfile)>,
    /// (inbound, outbound).
    srtp: Option<(Srtp, Srtp)>,
    /// Addresses that passed a check, the latest last.
    checked: VecDeque<SocketAddr>,
    nominated: Option<SocketAddr>,
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
            peer_cert: None,
            keys: None,
            srtp: None,
            checked: VecDeque::new(),
            nominated: None,
            dtls_peer: None,
            dtls_timeout: None,
            out: VecDeque::new(),
            stats: LegStats::default(),
            buf: vec![0; 2048],
        }
    }

    /// Our ICE credentials, for the SDP: the same for the call's life, new only when the
    /// peer restarts ICE.
    pub fn credentials(&self) -> IceCredentials {
        let c = self.ice.local_credentials();
        IceCredentials {
            ufrag: c.ufrag.clone(),
            pwd: c.pass.clone(),
        }
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

    /// The peer's parameters, from an SDP it sent (an offer or an answer); checks that came
    /// before (a browser answering our offer checks at once) wait for them. A new ufrag is
    /// an ICE restart: we take new credentials too (RFC 8839 §4.4.1.1.1), and keep the
    /// DTLS session. A new fingerprint is a new DTLS session. The same again changes
    /// nothing (a re-INVITE for hold keeps everything).
    pub fn set_remote(&mut self, now: Instant, remote: Remote) {
        let old = self.remote.take();
        match &old {
            None => self.ice.set_remote_credentials(creds(&remote.ice)),
            Some(o) if o.ice.ufrag != remote.ice.ufrag || o.ice.pwd != remote.ice.pwd => {
                self.ice.ice_restart(credentials(), true);
                self.ice.set_remote_credentials(creds(&remote.ice));
                self.checked.clear();
                self.nominated = None;
            }
            Some(_) => {}
        }
        let new_session = old
            .as_ref()
            .is_some_and(|o| o.fingerprint != remote.fingerprint);
        if new_session {
            self.restart_dtls(now);
        }
        // The peer waits (passive): we connect. Only before the handshake started.
        let active = remote.setup == Some(Setup::Passive);
        if active != self.active && (old.is_none() || new_session) {
            self.active = active;
            self.dtls.set_active(active);
            self.drain_dtls();
        }
        self.remote = Some(remote);
        // Checks that came before the SDP are answered now.
        self.drain_ice(now);
        if self.state == State::Handshake {
            self.check_peer();
        }
    }

    /// A new DTLS session (the peer's certificate changed).
    fn restart_dtls(&mut self, now: Instant) {
        self.dtls = Dtls::new_12(
            self.identity.config.clone(),
            self.identity.certificate.clone(),
            now,
        );
        self.active = false;
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

    /// Where media for the peer goes: the address it nominated, else the last one that
    /// passed a check.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.nominated.or_else(|| self.checked.back().copied())
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
        match kind(packet) {
            Kind::Stun => self.stun(now, src, packet),
            Kind::Dtls => self.dtls(now, src, packet),
            Kind::Rtp | Kind::Rtcp if !self.checked.contains(&src) => self.unchecked(),
            Kind::Rtp | Kind::Rtcp if self.state == State::Failed => {
                Received::Refused(Refusal::Failed)
            }
            Kind::Rtp | Kind::Rtcp if self.srtp.is_none() => {
                self.stats.not_keyed += 1;
                Received::Refused(Refusal::NotKeyed)
            }
            Kind::Rtp => self.unprotect(packet, false),
            Kind::Rtcp => self.unprotect(packet, true),
            Kind::Other => Received::Refused(Refusal::NotMedia),
        }
    }

    fn unchecked(&mut self) -> Received {
        self.stats.unchecked += 1;
        Received::Refused(Refusal::Unchecked)
    }

    fn unprotect(&mut self, packet: &[u8], rtcp: bool) -> Received {
        let Some((inbound, _)) = self.srtp.as_mut() else {
            return Received::Refused(Refusal::NotKeyed);
        };
        let plain = match rtcp {
            false => inbound.unprotect_rtp(packet).map(Received::Rtp),
            true => inbound.unprotect_rtcp(packet).map(Received::Rtcp),
        };
        plain.unwrap_or(Received::Refused(Refusal::Srtp))
    }

    /// Plain RTP or RTCP for the peer: protected, and where it goes; `None` while the leg
    /// is not keyed or knows no address of the peer.
    pub fn protect(&mut self, packet: &[u8]) -> Option<Transmit> {
        let to = self.destination()?;
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
        // A request without USERNAME is no check of ours (and `is` wants one).
        if message.is_binding_request() && message.split_username().is_none() {
            return self.unchecked();
        }
        let request = message.is_binding_request();
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
            self.checked.retain(|a| *a != src);
            if self.checked.len() == CHECKED {
                self.checked.pop_front();
            }
            self.checked.push_back(src);
        }
        self.drain_ice(now);
        // A DTLS client waits for an address to send its hello to.
        if self.active {
            self.drain_dtls();
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
        if !self.checked.contains(&src) {
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
            tracing::debug!(error = %e, "WebRTC leg: DTLS failed");
            self.state = State::Failed;
            return Received::Refused(Refusal::Failed);
        }
        self.drain_dtls();
        Received::Handled
    }

    /// Takes what the DTLS endpoint has for us: records to send, the peer's certificate,
    /// the keys, its next timer.
    fn drain_dtls(&mut self) {
        let to = self.dtls_peer.or_else(|| self.destination());
        loop {
            match self.dtls.poll_output(&mut self.buf) {
                Output::Packet(p) => {
                    if let Some(to) = to {
                        self.out.push_back(Transmit {
                            to,
                            data: p.to_vec(),
                        });
                    }
                }
                Output::BufferTooSmall { needed } => self.buf.resize(needed, 0),
                Output::Timeout(t) => {
                    self.dtls_timeout = Some(t);
                    break;
                }
                Output::PeerCert(der) => self.peer_cert = Some(der.to_vec()),
                Output::KeyingMaterial(km, profile) => self.keys = Some((km.to_vec(), profile)),
                Output::CloseNotify => {
                    // The peer ended the session: media stops until a new one.
                    self.srtp = None;
                    self.state = State::Handshake;
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
        match keyed(km, *profile, self.active) {
            Some(srtp) => {
                self.srtp = Some(srtp);
                self.state = State::Keyed;
            }
            None => self.state = State::Failed,
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

    /// Time passed: DTLS retransmits a flight, or gives up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Handshake {
            return;
        }
        if self.dtls_timeout.is_some_and(|t| t <= now) {
            self.dtls_timeout = None;
            if let Err(e) = self.dtls.handle_timeout(now) {
                tracing::debug!(error = %e, "WebRTC leg: DTLS handshake timed out");
                self.state = State::Failed;
                return;
            }
            self.drain_dtls();
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
