//! Reading a STUN message: its header, its attributes and its FINGERPRINT.

use crate::attr;

/// A Binding message this server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A Binding request.
    Request {
        /// Bytes 4 to 20 of the header: the magic cookie and the transaction id (RFC 5389),
        /// or the transaction id of a classic request (RFC 3489).
        id: [u8; 16],
        /// An RFC 3489 request: no magic cookie.
        classic: bool,
        /// Comprehension-required attributes this server does not understand (16 at most).
        unknown: Vec<u16>,
        /// A CHANGE-REQUEST asks for the reply from another address or port.
        change: bool,
    },
    /// A Binding indication: a keepalive, not answered.
    Indication,
}

/// Why a datagram is not a Binding message this server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than a header, or not starting with two zero bits.
    NotStun,
    /// The length field does not match the datagram, or is no multiple of 4.
    Length,
    /// An attribute runs past the end, or FINGERPRINT is not last.
    Attribute,
    /// FINGERPRINT does not match the message.
    Fingerprint,
    /// Another method or class than a Binding request or indication.
    NotBinding,
}

/// Parses a STUN message.
pub fn parse(packet: &[u8]) -> Result<Binding, ParseError> {
    if packet.len() < 20 || packet[0] & 0xC0 != 0 {
        return Err(ParseError::NotStun);
    }
    let kind = u16::from_be_bytes([packet[0], packet[1]]);
    let length = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if length % 4 != 0 || 20 + length != packet.len() {
        return Err(ParseError::Length);
    }
    let classic = packet[4..8] != crate::COOKIE.to_be_bytes();
    let (mut unknown, mut change) = (Vec::new(), false);
    let mut at = 20;
    while at < packet.len() {
        let header = packet.get(at..at + 4).ok_or(ParseError::Attribute)?;
        let kind = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value = packet
            .get(at + 4..at + 4 + len)
            .ok_or(ParseError::Attribute)?;
        let next = at + 4 + len.next_multiple_of(4);
        if next > packet.len() {
            return Err(ParseError::Attribute);
        }
        match kind {
            attr::FINGERPRINT => {
                if classic || len != 4 || next != packet.len() {
                    return Err(ParseError::Attribute);
                }
                let crc = crc32fast::hash(&packet[..at]) ^ attr::FINGERPRINT_XOR;
                if crc.to_be_bytes() != value {
                    return Err(ParseError::Fingerprint);
                }
            }
            attr::CHANGE_REQUEST if len == 4 => change = value[3] & 0x06 != 0,
            k if k < 0x8000
                && !attr::understood(k)
                && unknown.len() < 16
                && !unknown.contains(&k) =>
            {
                unknown.push(k);
            }
            _ => {}
        }
        at = next;
    }
    match kind {
        0x0001 => {
            let mut id = [0u8; 16];
            id.copy_from_slice(&packet[4..20]);
            Ok(Binding::Request {
                id,
                classic,
                unknown,
                change,
            })
        }
        0x0011 if !classic => Ok(Binding::Indication),
        _ => Err(ParseError::NotBinding),
    }
}
