//! Writing the responses: a Binding success, or 420 (Unknown Attribute).

use std::net::{IpAddr, SocketAddr};

use crate::attr;

/// A response header of `kind` for the request whose bytes 4 to 20 were `id`; its length is
/// set by [`finish`].
fn header(kind: u16, id: &[u8; 16]) -> Vec<u8> {
    let mut m = Vec::with_capacity(80);
    m.extend_from_slice(&kind.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(id);
    m
}

/// Appends an attribute, padded to 4 bytes.
fn attribute(m: &mut Vec<u8>, kind: u16, value: &[u8]) {
    m.extend_from_slice(&kind.to_be_bytes());
    m.extend_from_slice(&(value.len() as u16).to_be_bytes());
    m.extend_from_slice(value);
    m.resize(m.len().next_multiple_of(4), 0);
}

/// Sets the length field to what follows the header.
fn set_length(m: &mut [u8], length: usize) {
    m[2..4].copy_from_slice(&(length as u16).to_be_bytes());
}

/// Sets the length and, for an RFC 5389 message, appends FINGERPRINT (RFC 5389 §15.5: the
/// CRC covers the message with its length already counting FINGERPRINT).
fn finish(mut m: Vec<u8>, fingerprint: bool) -> Vec<u8> {
    if fingerprint {
        let with = m.len() - 20 + 8;
        set_length(&mut m, with);
        let crc = crc32fast::hash(&m) ^ attr::FINGERPRINT_XOR;
        attribute(&mut m, attr::FINGERPRINT, &crc.to_be_bytes());
    } else {
        let length = m.len() - 20;
        set_length(&mut m, length);
    }
    m
}

/// An address attribute's value (RFC 5389 §15.1, §15.2): XORed with the magic cookie and
/// the transaction id (`id`) when `xor` is given. An IPv4 peer seen on an IPv6 socket is
/// an IPv4 address.
fn address(source: SocketAddr, xor: Option<&[u8; 16]>) -> Vec<u8> {
    let mut v = vec![0];
    let ip = source.ip().to_canonical();
    let mut port = source.port().to_be_bytes();
    let mut octets = match ip {
        IpAddr::V4(a) => {
            v.push(0x01);
            a.octets().to_vec()
        }
        IpAddr::V6(a) => {
            v.push(0x02);
            a.octets().to_vec()
        }
    };
    if let Some(id) = xor {
        // The cookie is the first 4 bytes of `id`; IPv6 takes the transaction id too.
        for (p, k) in port.iter_mut().zip(id) {
            *p ^= k;
        }
        for (o, k) in octets.iter_mut().zip(id) {
            *o ^= k;
        }
    }
    v.extend_from_slice(&port);
    v.extend_from_slice(&octets);
    v
}

/// The Binding success response to request `id` from `source`: XOR-MAPPED-ADDRESS and
/// MAPPED-ADDRESS with FINGERPRINT, or MAPPED-ADDRESS alone for a `classic` request.
pub(crate) fn success(id: &[u8; 16], classic: bool, source: SocketAddr) -> Vec<u8> {
    let mut m = header(0x0101, id);
    if !classic {
        attribute(&mut m, attr::XOR_MAPPED_ADDRESS, &address(source, Some(id)));
    }
    attribute(&mut m, attr::MAPPED_ADDRESS, &address(source, None));
    finish(m, !classic)
}

/// The 420 (Unknown Attribute) error response to request `id`, listing `unknown`.
pub(crate) fn unknown_attributes(id: &[u8; 16], unknown: &[u16]) -> Vec<u8> {
    let mut m = header(0x0111, id);
    let mut error = vec![0, 0, 4, 20];
    error.extend_from_slice(b"Unknown Attribute");
    attribute(&mut m, attr::ERROR_CODE, &error);
    let list: Vec<u8> = unknown.iter().flat_map(|k| k.to_be_bytes()).collect();
    attribute(&mut m, attr::UNKNOWN_ATTRIBUTES, &list);
    finish(m, true)
}
