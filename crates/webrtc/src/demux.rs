//! What a datagram on a WebRTC leg's port is, by its first byte (RFC 7983 §7), and whether
//! an RTP-range packet is RTCP (RFC 5761 §4).

/// The kinds of packet one port carries under rtcp-mux and BUNDLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// STUN (ICE's connectivity checks): 0–3.
    Stun,
    /// DTLS: 20–63.
    Dtls,
    /// SRTP: 128–191, not RTCP.
    Rtp,
    /// SRTCP: 128–191 with a packet type of 192–223.
    Rtcp,
    /// Anything else (ZRTP, TURN channels, junk).
    Other,
}

/// The kind of `packet`.
pub fn kind(packet: &[u8]) -> Kind {
    match packet.first() {
        Some(0..=3) => Kind::Stun,
        Some(20..=63) => Kind::Dtls,
        Some(128..=191) if packet.get(1).is_some_and(|t| (192..=223).contains(t)) => Kind::Rtcp,
        Some(128..=191) => Kind::Rtp,
        _ => Kind::Other,
    }
}
