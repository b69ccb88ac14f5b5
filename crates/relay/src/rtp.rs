//! What the relay reads of an RTP packet: its sequence number, to count the ones missing.

/// The sequence number of an RTP packet (RFC 3550 §5.1: version 2, 12 bytes of header at
/// least), or `None` for anything else (RTCP, STUN, junk).
pub(crate) fn sequence(packet: &[u8]) -> Option<u16> {
    let b0 = *packet.first()?;
    let pt = packet.get(1)? & 0x7f;
    // RTCP's packet types 200–204 read as 72–76 here (RFC 5761 §4).
    (b0 >> 6 == 2 && packet.len() >= 12 && !(72..=76).contains(&pt))
        .then(|| u16::from_be_bytes([packet[2], packet[3]]))
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
