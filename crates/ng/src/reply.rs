//! Replies: what a relay answers.

use serde_bencode::value::Value;

use crate::{bytes, join, split, text, Dict, NgError};

/// The counters a `query` or `statistics` reply carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Calls held.
    pub sessions: u64,
    /// Packets relayed.
    pub packets: u64,
    /// Bytes relayed.
    pub bytes: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Of the packets and bytes, RTCP's, where counted apart (a call's `query`): Kamailio's
    /// `$rtpstat` reads both.
    pub rtcp: Option<(u64, u64)>,
}

/// One reply, with the cookie of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To `ping`.
    Pong,
    /// Done; the rewritten SDP for an offer or answer.
    Ok {
        /// The SDP, for an offer or answer.
        sdp: Option<Vec<u8>>,
    },
    /// A call's or the relay's counters (`query`, `statistics`).
    Counters(Totals),
    /// The calls held (`list`).
    Calls(Vec<String>),
    /// Refused, and why.
    Error(String),
}

impl Reply {
    /// Writes the reply to the request with `cookie`.
    pub fn encode(&self, cookie: &[u8]) -> Vec<u8> {
        let mut d = Dict::new();
        let result = match self {
            Reply::Pong => "pong",
            Reply::Ok { sdp } => {
                if let Some(s) = sdp {
                    d.insert(b"sdp".to_vec(), bytes(s.clone()));
                }
                "ok"
            }
            Reply::Counters(t) => {
                let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
                let counts = |packets: u64, bytes: u64, errors: u64| {
                    let mut c = Dict::new();
                    c.insert(b"packets".to_vec(), int(packets));
                    c.insert(b"bytes".to_vec(), int(bytes));
                    c.insert(b"errors".to_vec(), int(errors));
                    Value::Dict(c)
                };
                let (rtcp_packets, rtcp_bytes) = t.rtcp.unwrap_or_default();
                let mut totals = Dict::new();
                // Drops are not told apart: they count under RTP.
                let rtp = counts(
                    t.packets.saturating_sub(rtcp_packets),
                    t.bytes.saturating_sub(rtcp_bytes),
                    t.dropped,
                );
                totals.insert(b"RTP".to_vec(), rtp);
                if t.rtcp.is_some() {
                    totals.insert(b"RTCP".to_vec(), counts(rtcp_packets, rtcp_bytes, 0));
                }
                d.insert(b"totals".to_vec(), Value::Dict(totals));
                d.insert(b"sessions".to_vec(), int(t.sessions));
                "ok"
            }
            Reply::Calls(calls) => {
                let list = calls.iter().map(|c| bytes(c.as_str())).collect();
                d.insert(b"calls".to_vec(), Value::List(list));
                "ok"
            }
            Reply::Error(why) => {
                d.insert(b"error-reason".to_vec(), bytes(why.as_str()));
                "error"
            }
        };
        d.insert(b"result".to_vec(), bytes(result));
        join(cookie, d)
    }

    /// Reads a reply datagram: its cookie, and the reply. Counters and call lists are read
    /// as `Ok` (a proxy asks for offers, answers, deletes and pings).
    pub fn parse(data: &[u8]) -> Result<(Vec<u8>, Reply), NgError> {
        let (cookie, d) = split(data)?;
        let reply = match text(&d, "result").as_deref() {
            Some("pong") => Reply::Pong,
            Some("ok") => Reply::Ok {
                sdp: match d.get(b"sdp".as_slice()) {
                    Some(Value::Bytes(b)) => Some(b.clone()),
                    _ => None,
                },
            },
            Some("error") => Reply::Error(text(&d, "error-reason").unwrap_or_default()),
            other => return Err(NgError(format!("unknown result {other:?}"))),
        };
        Ok((cookie.to_vec(), reply))
    }
}
