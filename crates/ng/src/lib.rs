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

/// The cookie of a datagram, if it has one: a request that cannot be read still gets its
/// error reply (a proxy that gets none takes the relay for dead).
pub fn cookie_of(data: &[u8]) -> Option<&[u8]> {
    let space = data.iter().take(MAX_COOKIE + 1).position(|&b| b == b' ')?;
    (space > 0).then(|| &data[..space])
}

/// The cookie and the dictionary of a datagram.
fn split(data: &[u8]) -> Result<(&[u8], Dict), NgError> {
    let cookie = cookie_of(data).ok_or_else(|| NgError("no cookie, or one too long".into()))?;
    let rest = &data[cookie.len() + 1..];
    if nesting(rest) > MAX_NESTING {
        return Err(NgError("nested too deep".into()));
    }
    match serde_bencode::from_bytes(rest) {
        Ok(Value::Dict(d)) => Ok((cookie, d)),
        Ok(_) => Err(NgError("not a dictionary".into())),
        Err(e) => Err(NgError(format!("bencode: {e}"))),
    }
}

/// The longest cookie read (rtpengine's modules send a few dozen bytes).
const MAX_COOKIE: usize = 64;

/// The deepest nesting of lists and dictionaries read: ng messages nest three deep; the
/// decoder recurses, and a datagram of nested lists would exhaust the stack.
const MAX_NESTING: usize = 16;

/// How deep the lists and dictionaries of a bencoded value nest (strings skipped by their
/// length, so that their bytes count for nothing); stops counting past `MAX_NESTING`.
fn nesting(data: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < data.len() && deepest <= MAX_NESTING {
        match data[i] {
            b'l' | b'd' => {
                depth += 1;
                deepest = deepest.max(depth);
                i += 1;
            }
            b'e' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'i' => {
                i += data[i..]
                    .iter()
                    .position(|&b| b == b'e')
                    .unwrap_or(data.len())
                    + 1
            }
            b'0'..=b'9' => {
                let colon = data[i..].iter().position(|&b| b == b':');
                let len = colon.and_then(|c| {
                    std::str::from_utf8(&data[i..i + c])
                        .ok()?
                        .parse::<usize>()
                        .ok()
                });
                match (colon, len) {
                    (Some(c), Some(len)) => i = i.saturating_add(c + 1).saturating_add(len),
                    _ => return deepest,
                }
            }
            _ => return deepest,
        }
    }
    deepest
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
