//! What the relay reads of an RTP packet: whether it is media at all, and its sequence
//! number, to count the ones missing.

/// True for what a media stream carries, by its first byte (RFC 7983): RTP and RTCP
/// (128–191), and the key exchanges of encrypted calls, DTLS-SRTP (20–63) and ZRTP
/// (16–19). Not STUN (0–3, ICE's, which the relay removes) nor anything else.
pub(crate) fn is_media(packet: &[u8]) -> bool {
    packet
        .first()
        .is_some_and(|b| matches!(b, 16..=63 | 128..=191))
}

/// True for RTCP (RFC 5761 §4: packet types 192–223, read as payload types 64–95 with the
/// marker bit, which RTP beside it must not use).
pub(crate) fn is_rtcp(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| b >> 6 == 2)
        && packet.get(1).is_some_and(|t| (192..=223).contains(t))
}

/// The sequence number of a packet that is not RTCP ([`is_rtcp`]), if it is RTP (RFC 3550
/// §5.1: version 2, 12 bytes of header at least); `None` for anything else (DTLS, junk).
pub(crate) fn sequence(packet: &[u8]) -> Option<u16> {
    match packet {
        [b0, _, s0, s1, ..] if b0 >> 6 == 2 && packet.len() >= 12 => {
            Some(u16::from_be_bytes([*s0, *s1]))
        }
        _ => None,
    }
}

/// True when `now` comes after `last` (modulo 2^16): not a duplicate nor a late packet.
pub(crate) fn ahead(last: u16, now: u16) -> bool {
    let d = now.wrapping_sub(last);
    d != 0 && d < 0x8000
}

/// Packets missing between `last` and `now`, which is [`ahead`] of it.
pub(crate) fn gap(last: u16, now: u16) -> u64 {
    u64::from(now.wrapping_sub(last) - 1)
}
