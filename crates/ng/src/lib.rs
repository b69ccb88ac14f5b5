//! rtpengine's ng control protocol, sans-IO. A datagram is a cookie (any token), a space
//! and a bencoded dictionary; the reply repeats the cookie. A SIP proxy (Kamailio's or
//! OpenSIPS's rtpengine module, or ferrosip) asks a media relay to `ping`, `offer`,
//! `answer`, `delete`, `query`, `list` or give its `statistics`.
//!
//! Both ways: a relay reads [`Request::parse`] and writes a [`Reply`]; a proxy writes
//! [`Request::encode`] and reads [`Reply::parse`]. Offers, answers and deletes map to the
//! relay's own [`relay::MediaRequest`].

mod reply;
mod request;

pub use reply::{Reply, Totals};
pub use request::{Command, Flags, Request};

/// Why a datagram is not an ng message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgError(pub String);

impl std::fmt::Display for NgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NgError {}

/// The cookie and the dictionary of a datagram.
fn split(data: &[u8]) -> Result<(&[u8], Dict), NgError> {
    let space = data
        .iter()
        .position(|&b| b == b' ')
        .ok_or_else(|| NgError("no cookie".into()))?;
    let (cookie, rest) = (&data[..space], &data[space + 1..]);
    if cookie.is_empty() {
        return Err(NgError("empty cookie".into()));
    }
    match serde_bencode::from_bytes(rest) {
        Ok(Value::Dict(d)) => Ok((cookie, d)),
        Ok(_) => Err(NgError("not a dictionary".into())),
        Err(e) => Err(NgError(format!("bencode: {e}"))),
    }
}

/// `cookie`, a space, and `dict` bencoded.
fn join(cookie: &[u8], dict: Dict) -> Vec<u8> {
    let mut out = cookie.to_vec();
    out.push(b' ');
    // A dictionary of strings, integers and lists always encodes.
    out.extend(serde_bencode::to_bytes(&Value::Dict(dict)).unwrap_or_default());
    out
}

use serde_bencode::value::Value;

type Dict = std::collections::HashMap<Vec<u8>, Value>;

/// The string under `key`, if it is one.
fn text(d: &Dict, key: &str) -> Option<String> {
    match d.get(key.as_bytes())? {
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

/// The strings of the list under `key` (a single string counts as a list of one).
fn texts(d: &Dict, key: &str) -> Vec<String> {
    match d.get(key.as_bytes()) {
        Some(Value::List(l)) => l
            .iter()
            .filter_map(|v| match v {
                Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
                _ => None,
            })
            .collect(),
        Some(Value::Bytes(b)) => String::from_utf8(b.clone()).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn bytes(s: impl Into<Vec<u8>>) -> Value {
    Value::Bytes(s.into())
}

#[cfg(test)]
mod tests;
