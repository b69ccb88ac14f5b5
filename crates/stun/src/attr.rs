//! Attribute types (RFC 5389 §18.2, RFC 3489 §11.2, RFC 8445 for ICE).

pub(crate) const MAPPED_ADDRESS: u16 = 0x0001;
pub(crate) const RESPONSE_ADDRESS: u16 = 0x0002;
pub(crate) const CHANGE_REQUEST: u16 = 0x0003;
pub(crate) const USERNAME: u16 = 0x0006;
pub(crate) const MESSAGE_INTEGRITY: u16 = 0x0008;
pub(crate) const ERROR_CODE: u16 = 0x0009;
pub(crate) const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
pub(crate) const REALM: u16 = 0x0014;
pub(crate) const NONCE: u16 = 0x0015;
pub(crate) const XOR_MAPPED_ADDRESS: u16 = 0x0020;
pub(crate) const FINGERPRINT: u16 = 0x8028;

/// What FINGERPRINT's CRC-32 is XORed with (RFC 5389 §15.5).
pub(crate) const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Comprehension-required attributes (below 0x8000) this server knows: a request that
/// carries them is answered (the credentials are not checked: this server asks for none).
pub(crate) fn understood(kind: u16) -> bool {
    matches!(
        kind,
        MAPPED_ADDRESS
            | RESPONSE_ADDRESS
            | CHANGE_REQUEST
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | REALM
            | NONCE
            | XOR_MAPPED_ADDRESS
    )
}
