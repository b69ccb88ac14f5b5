//! Flow tokens (RFC 5626 §5.2): a Record-Route entry of ours that faces a WebSocket client
//! names the connection the client is on (`;ft=`), so that the other party's in-dialog
//! requests reach the client over it (its Contact, `*.invalid`, leads nowhere). The token
//! is the connection's remote address under a MAC of the route secret: no party can make
//! one that leads into another's connection.

use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};

use sip_message::Protocol;
use siphasher::sip::SipHasher24;

use crate::route_key::RouteSecret;

/// The Record-Route parameter that carries the token.
pub(crate) const PARAM: &str = "ft";

/// The MAC of a flow: its protocol and remote address under the secret.
fn mac(secret: &RouteSecret, protocol: Protocol, addr: SocketAddr) -> u64 {
    let mut h = SipHasher24::new_with_key(&secret.0);
    // Apart from the route keys made with the same secret.
    h.write(b"flow");
    h.write(protocol.name().as_bytes());
    match addr.ip() {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    h.write_u16(addr.port());
    h.finish()
}

/// The token of the flow over `protocol` from `addr`: the address's bytes, its port and
/// the MAC, in lower-case hex.
pub(crate) fn token(secret: &RouteSecret, protocol: Protocol, addr: SocketAddr) -> String {
    use std::fmt::Write;
    let mut t = String::with_capacity(52);
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    for b in ip.iter().chain(&addr.port().to_be_bytes()) {
        let _ = write!(t, "{b:02x}");
    }
    let _ = write!(t, "{:016x}", mac(secret, protocol, addr));
    t
}

/// The flow a token names, when its MAC holds for `protocol`.
pub(crate) fn verify(secret: &RouteSecret, protocol: Protocol, token: &str) -> Option<SocketAddr> {
    if !token.is_ascii() {
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
    (given == mac(secret, protocol, addr)).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: RouteSecret = RouteSecret([7; 16]);

    #[test]
    fn a_token_names_its_flow_and_nothing_else() {
        for a in ["192.0.2.7:50123", "[2001:db8::1]:443"] {
            let addr: SocketAddr = a.parse().unwrap();
            let t = token(&KEY, Protocol::Ws, addr);
            assert_eq!(verify(&KEY, Protocol::Ws, &t), Some(addr), "{a}");
            assert_eq!(verify(&KEY, Protocol::Wss, &t), None, "another protocol");
            assert_eq!(verify(&RouteSecret([8; 16]), Protocol::Ws, &t), None);
            // Any digit changed (address, port or MAC) breaks it.
            for i in 0..t.len() {
                let mut forged = t.clone().into_bytes();
                forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
                let forged = String::from_utf8(forged).unwrap();
                assert_eq!(verify(&KEY, Protocol::Ws, &forged), None, "{forged}");
            }
        }
        for junk in [
            "",
            "00",
            "zz",
            "c000020700",
            "é0000000000000000000000000000",
        ] {
            assert_eq!(verify(&KEY, Protocol::Ws, junk), None, "{junk}");
        }
    }
}
