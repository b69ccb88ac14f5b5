//! A STUN Binding server (RFC 5389), sans-IO: [`answer`] takes a datagram and the address it
//! came from and gives the response to send back, if any. It tells a client behind NAT the
//! public address and port its packets come from (XOR-MAPPED-ADDRESS, with FINGERPRINT), on
//! the SIP ports beside SIP ([`is_stun`] tells them apart by the first byte, RFC 7983) and on
//! a port of its own ([`PORT`]). Classic RFC 3489 clients (no magic cookie) get
//! MAPPED-ADDRESS (RFC 5389 §12.2); a request asking for a reply from another address
//! (CHANGE-REQUEST) gets none, as this server has no other address (RFC 5780 is not done).
//! Binding indications (keepalives) are absorbed. [`AnswerLimit`] bounds the answers one
//! address gets.

mod attr;
mod limit;
mod parse;
mod write;

use std::net::SocketAddr;

pub use limit::{AnswerLimit, PER_SECOND};
pub use parse::{parse, Binding, ParseError};

/// The STUN port (RFC 5389 §9).
pub const PORT: u16 = 3478;

/// The magic cookie of RFC 5389 messages.
pub(crate) const COOKIE: u32 = 0x2112_A442;

/// True when a datagram is STUN rather than SIP: its first byte is 0 to 3 (RFC 7983 §7;
/// SIP starts with a letter, or with CR/LF in a keepalive) and it is at least a header long.
pub fn is_stun(packet: &[u8]) -> bool {
    packet.len() >= 20 && packet[0] <= 3
}

/// The response to `packet`, a STUN message that came from `source`: a Binding success
/// response for a Binding request, 420 (Unknown Attribute) for one that requires attributes
/// we do not understand, nothing for anything else (responses, indications, other methods,
/// malformed messages, a wrong FINGERPRINT, a CHANGE-REQUEST we cannot honour).
pub fn answer(packet: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    match parse(packet).ok()? {
        Binding::Request {
            id,
            classic,
            unknown,
            change,
        } => {
            if change {
                return None;
            }
            Some(if !unknown.is_empty() && !classic {
                write::unknown_attributes(&id, &unknown)
            } else {
                write::success(&id, classic, source)
            })
        }
        Binding::Indication => None,
    }
}

#[cfg(test)]
mod tests;
