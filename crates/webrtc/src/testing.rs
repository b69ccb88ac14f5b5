//! A browser's media side, in memory, for tests and benchmarks (feature `testing`): a
//! full, controlling ICE agent (`is`), a DTLS client (`dimpl`) with a certificate of its
//! own, and SRTP keyed from its handshake — what Chrome does, without Chrome.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use dimpl::{Dtls, Output};
use is::stun::{StunMessage, StunPacket};
use is::{Candidate, IceAgent, IceAgentEvent, IceCreds, Protocol};
use sdp::{Fingerprint, IceCredentials, Setup};
use sha2::Digest;

use crate::{kind, Kind, Remote, Srtp};

/// A browser at `addr`, checking one relay candidate and handshaking with it.
pub struct Browser {
    /// Its address.
    pub addr: SocketAddr,
    /// Its ICE agent.
    pub ice: IceAgent,
    /// Its ICE credentials.
    pub creds: IceCreds,
    dtls: Dtls,
    fingerprint: Fingerprint,
    /// SRTP (inbound, outbound), once keyed.
    pub srtp: Option<(Srtp, Srtp)>,
    /// The DTLS handshake completed.
    pub connected: bool,
    /// A pair was nominated, and DTLS started.
    pub dtls_started: bool,
    /// Datagrams it sends: (to, bytes).
    pub out: Vec<(SocketAddr, Vec<u8>)>,
    buf: Vec<u8>,
}

impl Browser {
    /// A browser at `addr`, its peer not known yet ([`Browser::peer`]).
    pub fn new(now: Instant, addr: SocketAddr) -> Browser {
        let mut ufrag = [0u8; 8];
        getrandom::fill(&mut ufrag).expect("random");
        let creds = IceCreds {
            ufrag: ufrag.iter().map(|b| char::from(b'a' + b % 26)).collect(),
            pass: "browserpasswordbrowserpassword".to_owned(),
        };
        let mut ice = IceAgent::new(creds.clone());
        ice.set_controlling(true);
        ice.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let cert = dimpl::certificate::generate_self_signed_certificate().expect("cert");
        let fingerprint = Fingerprint {
            hash: "sha-256".to_owned(),
            digest: sha2::Sha256::digest(&cert.certificate).to_vec(),
        };
        let mut dtls = Dtls::new_12(Arc::new(dimpl::Config::default()), cert, now);
        dtls.set_active(true);
        Browser {
            addr,
            ice,
            creds,
            dtls,
            fingerprint,
            srtp: None,
            connected: false,
            dtls_started: false,
            out: Vec::new(),
            buf: vec![0; 2048],
        }
    }

    /// Its peer, from the SDP it got: the candidate `relay`, with credentials `theirs`
    /// and DTLS role `setup` (`active`: the browser is the DTLS server; else its client).
    pub fn peer(&mut self, relay: SocketAddr, theirs: &IceCredentials, setup: Option<Setup>) {
        if setup == Some(Setup::Active) {
            self.dtls.set_active(false);
        }
        self.ice
            .add_remote_candidate(Candidate::host(relay, "udp").expect("candidate"));
        self.ice.set_remote_credentials(IceCreds {
            ufrag: theirs.ufrag.clone(),
            pass: theirs.pwd.clone(),
        });
    }

    /// What its SDP says to the relay (`a=setup:active`, as Chrome answers and offers
    /// `actpass`).
    pub fn remote(&self) -> Remote {
        Remote {
            ice: IceCredentials {
                ufrag: self.creds.ufrag.clone(),
                pwd: self.creds.pass.clone(),
            },
            fingerprint: self.fingerprint.clone(),
            setup: Some(Setup::Active),
            mid: Some("0".to_owned()),
        }
    }

    /// The browser's offer, Chrome's shape with its real credentials and fingerprint: as
    /// JsSIP sends it once ICE gathering is done (its socket as the one host candidate, and as
    /// the default address), or (`gathered` false) as it is before any is gathered
    /// (`0.0.0.0`, port 9, which a browser with only mDNS host candidates sends too).
    pub fn offer(&self, gathered: bool) -> Vec<u8> {
        let r = self.remote();
        let fingerprint = crate::fingerprint_value(&r.fingerprint);
        let (ip, port) = (self.addr.ip(), self.addr.port());
        let (default, candidate) = match gathered {
            true => (
                format!(
                    "{port} UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 {ip}\r\na=rtcp:9 IN IP4 0.0.0.0"
                ),
                format!("a=candidate:1 1 udp 2122260223 {ip} {port} typ host generation 0\r\n"),
            ),
            false => (
                "9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0"
                    .to_owned(),
                String::new(),
            ),
        };
        format!(
            "v=0\r\no=- 46 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=audio {default}\r\n{candidate}\
a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:{fingerprint}\r\na=setup:actpass\r\na=mid:0\r\n\
a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\n",
            r.ice.ufrag, r.ice.pwd
        )
        .into_bytes()
    }

    /// Time passed: its checks, and once a pair is nominated its DTLS flights to `to`.
    pub fn tick(&mut self, now: Instant, to: SocketAddr) {
        self.ice.handle_timeout(now);
        while let Some(e) = self.ice.poll_event() {
            if matches!(e, IceAgentEvent::NominatedSend { .. }) {
                self.dtls_started = true;
            }
        }
        while let Some(t) = self.ice.poll_transmit() {
            self.out.push((t.destination, t.contents.to_vec()));
        }
        if self.dtls_started {
            let _ = self.dtls.handle_timeout(now);
            self.drain(to);
        }
    }

    fn drain(&mut self, to: SocketAddr) {
        loop {
            match self.dtls.poll_output(&mut self.buf) {
                Output::Packet(p) => self.out.push((to, p.to_vec())),
                Output::Timeout(_) => break,
                Output::Connected => self.connected = true,
                Output::KeyingMaterial(km, profile) => {
                    self.srtp =
                        Some(crate::leg::keyed(&km, profile, self.dtls.is_active()).expect("keys"));
                }
                _ => {}
            }
        }
    }

    /// A datagram from `from`: media comes out plain (`None` for anything else).
    pub fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
        match kind(data) {
            Kind::Stun => {
                let message = StunMessage::parse(data).ok()?;
                let packet = StunPacket {
                    proto: Protocol::Udp,
                    source: from,
                    destination: self.addr,
                    message,
                };
                self.ice.handle_packet(now, packet);
                None
            }
            Kind::Dtls => {
                self.dtls.handle_packet(data).ok()?;
                self.drain(from);
                None
            }
            Kind::Rtp => self.srtp.as_mut()?.0.unprotect_rtp(data),
            Kind::Rtcp => self.srtp.as_mut()?.0.unprotect_rtcp(data),
            Kind::Other => None,
        }
    }

    /// Plain RTP or RTCP, protected as it would send it.
    pub fn protect(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        let (_, out) = self.srtp.as_mut()?;
        match kind(packet) {
            Kind::Rtcp => out.protect_rtcp(packet),
            _ => out.protect_rtp(packet),
        }
    }
}

/// An RTP packet: PCMU, sequence `seq`, SSRC 0x1234, 160 bytes of payload.
pub fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0x12, 0x34];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend(std::iter::repeat_n(0xd5, 160));
    p
}

/// A receiver report from SSRC 0x1234, no blocks.
pub fn rtcp() -> Vec<u8> {
    vec![0x80, 201, 0, 1, 0, 0, 0x12, 0x34]
}
