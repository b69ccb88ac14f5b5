//! Flow tokens (RFC 5626 §5.2): a Record-Route entry of ours that faces a WebSocket client
//! names the connection the client is on (`;ft=`), so that the other party's in-dialog
//! requests reach the client over it (its Contact, `*.invalid`, leads nowhere). The token
//! is the connection's remote address under a MAC of the route secret and the dialog's
//! Call-ID: no party can make one that leads into another's connection, nor carry one into
//! another dialog; and a request follows one only with the dialog's route key
//! ([`crate::route_key`]).

use std::collections::HashMap;
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use sip_message::Protocol;
use siphasher::sip::SipHasher24;

use crate::route_key::RouteSecret;

/// Most WebSocket connections whose address-of-record is remembered (more than the open
/// connections a server allows): past it, all are forgotten.
const MAX_REGISTERED: usize = 65_536;

/// Most addresses-of-record remembered per connection (a browser registers one or two).
const MAX_AORS: usize = 8;

/// The addresses-of-record each WebSocket connection registered, so that their bindings go
/// when it closes: a browser that is gone is not called (it gets a new binding when it
/// connects again).
#[derive(Debug, Default)]
pub(crate) struct Registered(Mutex<HashMap<(Protocol, SocketAddr), Vec<String>>>);

impl Registered {
    /// The connection over `protocol` from `remote` registered `aor`.
    pub(crate) fn note(&self, protocol: Protocol, remote: SocketAddr, aor: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REGISTERED && !map.contains_key(&(protocol, remote)) {
            map.clear();
        }
        let aors = map.entry((protocol, remote)).or_default();
        if !aors.iter().any(|a| a == aor) && aors.len() < MAX_AORS {
            aors.push(aor.to_owned());
        }
    }

    /// True while the connection over `protocol` from `remote`, which registered, is open.
    pub(crate) fn is_open(&self, protocol: Protocol, remote: SocketAddr) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.contains_key(&(protocol, remote))
    }

    /// The connection over `protocol` from `remote` closed: the addresses-of-record it
    /// registered.
    pub(crate) fn closed(&self, protocol: Protocol, remote: SocketAddr) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(protocol, remote))
            .unwrap_or_default()
    }
}

/// The Record-Route parameter that carries the token.
pub(crate) const PARAM: &str = "ft";

/// The MAC of a flow in a dialog: its protocol, remote address and Call-ID under a key of
/// its own derived from the secret.
fn mac(secret: &RouteSecret, protocol: Protocol, addr: SocketAddr, call_id: &str) -> u64 {
    let half = |label: &[u8]| {
        let mut derive = SipHasher24::new_with_key(&secret.0);
        derive.write(label);
        derive.finish().to_le_bytes()
    };
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&half(b"ferrosip flow token key 1\0"));
    key[8..].copy_from_slice(&half(b"ferrosip flow token key 2\0"));
    let mut h = SipHasher24::new_with_key(&key);
    h.write_usize(call_id.len());
    h.write(call_id.as_bytes());
    h.write(protocol.name().as_bytes());
    match addr.ip() {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    h.write_u16(addr.port());
    h.finish()
}

/// The token of the flow over `protocol` from `addr` in the dialog `call_id`: the address's
/// bytes, its port and the MAC, in lower-case hex.
pub(crate) fn token(
    secret: &RouteSecret,
    protocol: Protocol,
    addr: SocketAddr,
    call_id: &str,
) -> String {
    use std::fmt::Write;
    let mut t = String::with_capacity(52);
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    for b in ip.iter().chain(&addr.port().to_be_bytes()) {
        let _ = write!(t, "{b:02x}");
    }
    let _ = write!(t, "{:016x}", mac(secret, protocol, addr, call_id));
    t
}

/// The flow a token names, when its MAC holds for `protocol` in the dialog `call_id`.
pub(crate) fn verify(
    secret: &RouteSecret,
    protocol: Protocol,
    token: &str,
    call_id: &str,
) -> Option<SocketAddr> {
    // Lower-case hex digits only: one spelling per token.
    if !token
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let (address, mac_hex) = token.split_at_checked(token.len().checked_sub(16)?)?;
    let bytes: Vec<u8> = (0..address.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(address.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let (ip, port) = bytes.split_at_checked(bytes.len().checked_sub(2)?)?;
    let ip = match ip.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(ip).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(ip).ok()?),
        _ => return None,
    };
    let addr = SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]]));
    let given = u64::from_str_radix(mac_hex, 16).ok()?;
    (given == mac(secret, protocol, addr, call_id)).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: RouteSecret = RouteSecret([7; 16]);

    #[test]
    fn a_token_names_its_flow_and_nothing_else() {
        for a in ["192.0.2.7:50123", "[2001:db8::1]:443"] {
            let addr: SocketAddr = a.parse().unwrap();
            let t = token(&KEY, Protocol::Ws, addr, "c1");
            assert_eq!(verify(&KEY, Protocol::Ws, &t, "c1"), Some(addr), "{a}");
            assert_eq!(
                verify(&KEY, Protocol::Wss, &t, "c1"),
                None,
                "another protocol"
            );
            assert_eq!(verify(&KEY, Protocol::Ws, &t, "c2"), None, "another dialog");
            assert_eq!(verify(&RouteSecret([8; 16]), Protocol::Ws, &t, "c1"), None);
            let upper = t.to_ascii_uppercase();
            assert_eq!(
                verify(&KEY, Protocol::Ws, &upper, "c1"),
                None,
                "one spelling"
            );
            // Any digit changed (address, port or MAC) breaks it.
            for i in 0..t.len() {
                let mut forged = t.clone().into_bytes();
                forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
                let forged = String::from_utf8(forged).unwrap();
                assert_eq!(verify(&KEY, Protocol::Ws, &forged, "c1"), None, "{forged}");
            }
        }
        for junk in [
            "",
            "00",
            "zz",
            "c000020700",
            "é0000000000000000000000000000",
        ] {
            assert_eq!(verify(&KEY, Protocol::Ws, junk, "c1"), None, "{junk}");
        }
    }
}
