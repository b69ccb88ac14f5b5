//! What a SIP proxy asks of a media relay, as rtpengine's ng protocol has it (an offer, an
//! answer or a delete, with the SDP), and the SDP side of it: the media addresses an SDP
//! names, and the copy of it that names the relay instead.

use std::net::{IpAddr, SocketAddr};

use sdp::{MediaRewrite, Rewrite, Session, Transport};

use crate::session::{SessionPorts, Side};

/// The kind of a [`MediaRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaOp {
    /// An SDP offer: a session is made for it when there is none.
    Offer,
    /// An SDP answer: only for a session an offer made.
    Answer,
    /// The call ended: its session goes.
    Delete,
}

/// The kind of SIP message an SDP came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A request: INVITE, UPDATE, ACK, PRACK (anyone may send one, forged tags and all).
    Request,
    /// A response that does not answer the call: a provisional one (early media), or a
    /// 2xx to a request other than an INVITE (an UPDATE while it rings).
    Provisional,
    /// A 2xx to an INVITE: the callee answered (a re-INVITE's: the call was). One without SDP
    /// (the offer and answer were made in 18x and PRACK) is an [`MediaOp::Answer`] with no
    /// SDP, which only tells the relay that.
    Final,
}

/// What the party an SDP goes to speaks (rtpengine's `transport-protocol`, `ICE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Peer {
    /// What the sender does, or in a stream the call has, what the receiver did.
    #[default]
    AsSender,
    /// A browser: ICE, DTLS-SRTP, rtcp-mux (`UDP/TLS/RTP/SAVPF`).
    WebRtc,
    /// A phone: plain RTP/AVP, no ICE.
    Plain,
}

/// One request to a media relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRequest {
    /// What is asked.
    pub op: MediaOp,
    /// The call's Call-ID.
    pub call_id: String,
    /// ng's `from-tag`: the tag of the offer's sender.
    pub from_tag: String,
    /// ng's `to-tag`: the tag of the answer's sender (empty when not known).
    pub to_tag: String,
    /// The SDP body (empty for a delete).
    pub sdp: Vec<u8>,
    /// Where the SDP's signalling came from: behind NAT, its media comes from there too.
    pub source: Option<IpAddr>,
    /// Where the call's INVITE came from: its streams count against that source while the
    /// call rings, also when the callee's response made the offer (`None`: `source`).
    pub caller: Option<IpAddr>,
    /// The caller authenticated: its streams, while the call rings, are not in the share
    /// of the pool that strangers may hold (not known over ng: false).
    pub authenticated: bool,
    /// The party the SDP goes to is on IPv6: the relay names its IPv6 address to it
    /// (rtpengine's `address family: IP6`), bridging the families.
    pub receiver_ipv6: bool,
    /// What the party the SDP goes to speaks: the relay bridges a browser and a phone.
    pub receiver: Peer,
    /// The message the SDP came in; `None` where it is not known (over ng). Only a 2xx
    /// response (or an answer over ng) answers a call: till then its streams count against
    /// its caller's limit of ringing ones.
    pub carrier: Option<Carrier>,
}

impl MediaRequest {
    /// The tags of the SDP's sender and of the other party.
    pub fn tags(&self) -> (&str, &str) {
        match self.op {
            MediaOp::Offer => (&self.from_tag, &self.to_tag),
            _ => (&self.to_tag, &self.from_tag),
        }
    }
}

/// Why a relay did not take an SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaError {
    /// The body is not SDP the relay can read.
    BadSdp,
    /// No ports are left (or none could be bound) for the offer.
    NoPorts,
    /// An answer for a call no offer made a session for.
    NoSession,
    /// The relay did not answer.
    Unavailable,
}

impl std::fmt::Display for MediaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MediaError::BadSdp => "the body is not SDP the relay can read",
            MediaError::NoPorts => "no media ports left",
            MediaError::NoSession => "unknown call: no relay session for this answer",
            MediaError::Unavailable => "the media relay did not answer",
        })
    }
}

/// The RTP address of each stream of `s`: `None` for a declined stream (port 0), one on
/// hold with the zero address, one without a connection address, or one over TCP (MSRP,
/// BFCP: the relay moves UDP alone, and leaves them as they are).
pub fn media_addresses(s: &Session<'_>) -> Vec<Option<SocketAddr>> {
    s.media
        .iter()
        .map(|m| {
            let tcp = m
                .proto
                .get(..3)
                .is_some_and(|p| p.eq_ignore_ascii_case("TCP"));
            if tcp {
                return None;
            }
            let c = m.connection.or(s.connection)?;
            (m.port != 0 && !c.address.is_unspecified()).then(|| SocketAddr::new(c.address, m.port))
        })
        .collect()
}

/// True when `s` puts every stream on hold: none both sends and receives (RFC 3264 §8.4:
/// `sendonly`, `inactive`, or the old `c=0.0.0.0`), declined ones aside.
pub fn holds(s: &Session<'_>) -> bool {
    media_addresses(s)
        .iter()
        .zip(&s.media)
        .all(|(a, m)| a.is_none() || m.direction != sdp::Direction::SendRecv)
}

/// The streams of `s` that carry a fax's UDPTL (T.38 over UDP): not RTP.
pub fn raw_streams(s: &Session<'_>) -> Vec<usize> {
    (0..s.media.len())
        .filter(|&i| s.media[i].proto.eq_ignore_ascii_case("udptl"))
        .collect()
}

/// The streams `s` declines (port 0).
pub fn declined_streams(s: &Session<'_>) -> Vec<usize> {
    (0..s.media.len())
        .filter(|&i| s.media[i].port == 0)
        .collect()
}

/// A copy of `s`, sent by `sender`, in which each relayed stream names `announce` and the
/// relay's port facing the receiver (RTCP on the next port, or on the same one with
/// `a=rtcp-mux`), the origin names `announce`, and ICE is gone (its candidates would lead
/// around the relay). A stream with a `transports` entry is written for a receiver that
/// speaks that instead (a browser: the relay's leg's ICE and DTLS; a phone: plain RTP).
/// With no stream relayed, it is the SDP as it came.
pub fn relayed_sdp(
    s: &Session<'_>,
    sender: Side,
    ports: &SessionPorts,
    announce: IpAddr,
    transports: Vec<Option<Transport>>,
) -> Vec<u8> {
    let media = s
        .media
        .iter()
        .zip(ports)
        .enumerate()
        .map(|(i, (m, p))| {
            let p = (*p)?;
            let port = match sender {
                Side::Offerer => p.for_answerer,
                Side::Answerer => p.for_offerer,
            };
            let rtcp_port = match (m.rtcp_mux, m.rtcp_port) {
                // A browser's rtcp-mux is the relay's leg's, not the phone's.
                _ if transports
                    .get(i)
                    .is_some_and(|t| t == &Some(Transport::Plain)) =>
                {
                    None
                }
                (true, _) => Some(port),
                (false, Some(_)) => Some(port + 1),
                (false, None) => None,
            };
            Some(MediaRewrite {
                address: announce,
                port,
                rtcp_port,
            })
        })
        .collect::<Vec<_>>();
    // Nothing relayed: the SDP goes on as it came.
    let relayed = media.iter().any(Option::is_some);
    s.rewrite(&Rewrite {
        media,
        origin: relayed.then_some(announce),
        strip_ice: relayed,
        transports,
    })
}
