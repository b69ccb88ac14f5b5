//! Requests: what a proxy asks a relay.

use std::net::IpAddr;

use relay::{MediaOp, MediaRequest, Peer};
use serde_bencode::value::Value;

use crate::{bytes, join, split, text, texts, Dict, NgError};

/// One request, with the cookie its reply must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Matches the reply to the request (and a retransmission to the first reply).
    pub cookie: Vec<u8>,
    /// What is asked.
    pub command: Command,
}

/// The commands a relay answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Are you there? (`pong`)
    Ping,
    /// An SDP offer or answer, or the end of a call: the relay's own request, with the
    /// flags it came with.
    Media(MediaRequest, Flags),
    /// A call's counters.
    Query {
        /// Its Call-ID.
        call_id: String,
    },
    /// The calls the relay holds.
    List,
    /// The relay's counters.
    Statistics,
}

/// The flags a proxy commonly sends with an offer or answer (rtpengine's names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `replace: origin`: the `o=` line names the relay.
    pub replace_origin: bool,
    /// `flags: trust-address`: the SDP's address is trusted over the signalling source.
    pub trust_address: bool,
    /// `ICE: remove` (candidates are always removed: they would lead around the relay).
    pub ice_remove: bool,
    /// `transport-protocol`, when asked: `UDP/TLS/RTP/SAVPF` for a browser, `RTP/AVP` for a
    /// phone (the relay bridges them), or the SDP's own.
    pub transport_protocol: Option<String>,
    /// Everything else given in `flags`, `replace`, `rtcp-mux` and `direction`, as it came
    /// (accepted; the relay has one interface, latches symmetrically and leaves rtcp-mux
    /// as offered).
    pub other: Vec<String>,
}

fn op_name(op: MediaOp) -> &'static str {
    match op {
        MediaOp::Offer => "offer",
        MediaOp::Answer => "answer",
        MediaOp::Delete => "delete",
    }
}

impl Request {
    /// Reads a request datagram.
    pub fn parse(data: &[u8]) -> Result<Request, NgError> {
        let (cookie, d) = split(data)?;
        let command = text(&d, "command").ok_or_else(|| NgError("no command".into()))?;
        let command = match command.as_str() {
            "ping" => Command::Ping,
            "list" => Command::List,
            "statistics" => Command::Statistics,
            "query" => Command::Query {
                call_id: text(&d, "call-id").ok_or_else(|| NgError("no call-id".into()))?,
            },
            "offer" => media(&d, MediaOp::Offer)?,
            "answer" => media(&d, MediaOp::Answer)?,
            "delete" => media(&d, MediaOp::Delete)?,
            other => return Err(NgError(format!("unknown command {other:?}"))),
        };
        Ok(Request {
            cookie: cookie.to_vec(),
            command,
        })
    }

    /// Writes the datagram for this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Dict::new();
        let name = match &self.command {
            Command::Ping => "ping",
            Command::List => "list",
            Command::Statistics => "statistics",
            Command::Query { call_id } => {
                d.insert(b"call-id".to_vec(), bytes(call_id.as_str()));
                "query"
            }
            Command::Media(m, flags) => {
                d.insert(b"call-id".to_vec(), bytes(m.call_id.as_str()));
                d.insert(b"from-tag".to_vec(), bytes(m.from_tag.as_str()));
                if !m.to_tag.is_empty() || m.op == MediaOp::Answer {
                    d.insert(b"to-tag".to_vec(), bytes(m.to_tag.as_str()));
                }
                if m.op != MediaOp::Delete {
                    d.insert(b"sdp".to_vec(), bytes(m.sdp.clone()));
                    encode_flags(&mut d, flags, m.source);
                    encode_receiver(&mut d, m, flags);
                    if m.receiver_ipv6 {
                        d.insert(b"address family".to_vec(), bytes("IP6"));
                    }
                }
                op_name(m.op)
            }
        };
        d.insert(b"command".to_vec(), bytes(name));
        join(&self.cookie, d)
    }
}

fn media(d: &Dict, op: MediaOp) -> Result<Command, NgError> {
    let need = |key: &str| text(d, key).ok_or_else(|| NgError(format!("no {key}")));
    let call_id = need("call-id")?;
    let from_tag = match op {
        // A delete may name the call alone.
        MediaOp::Delete => text(d, "from-tag").unwrap_or_default(),
        _ => need("from-tag")?,
    };
    let to_tag = match op {
        MediaOp::Answer => need("to-tag")?,
        _ => text(d, "to-tag").unwrap_or_default(),
    };
    let sdp = match op {
        MediaOp::Delete => Vec::new(),
        _ => match d.get(b"sdp".as_slice()) {
            Some(Value::Bytes(b)) => b.clone(),
            _ => return Err(NgError("no sdp".into())),
        },
    };
    let mut flags = Flags::default();
    let mut source = None;
    // `received from` (Kamailio: `received-from`): ["IP4", "192.0.2.1"], where the
    // signalling came from.
    for key in ["received-from", "received from"] {
        if let [_, addr] = texts(d, key).as_slice() {
            source = addr.parse::<IpAddr>().ok();
        }
    }
    for f in texts(d, "flags") {
        match f.as_str() {
            "trust-address" => flags.trust_address = true,
            "SIP-source-address" => flags.trust_address = false,
            _ => flags.other.push(f),
        }
    }
    for r in texts(d, "replace") {
        match r.as_str() {
            "origin" => flags.replace_origin = true,
            _ => flags.other.push(format!("replace-{r}")),
        }
    }
    let ice = text(d, "ICE");
    flags.ice_remove = ice.as_deref() == Some("remove");
    flags.transport_protocol = text(d, "transport-protocol");
    // Who the SDP goes to: the transport it is to have says, else ICE's flag (`force`:
    // a browser, `remove`: a phone), else it speaks what the sender does.
    let receiver = match (flags.transport_protocol.as_deref(), ice.as_deref()) {
        (Some(p), _) if p.to_ascii_uppercase().starts_with("UDP/TLS/RTP/SAVP") => Peer::WebRtc,
        // Older guides' `RTP/SAVPF` with `ICE=force`: a browser too.
        (Some("RTP/SAVPF" | "RTP/SAVP"), Some("force" | "force-relay")) => Peer::WebRtc,
        (Some("RTP/AVP" | "RTP/AVPF"), _) => Peer::Plain,
        (None, Some("force" | "force-relay")) => Peer::WebRtc,
        (None, Some("remove")) => Peer::Plain,
        _ => Peer::AsSender,
    };
    for key in ["DTLS", "SDES"] {
        if let Some(v) = text(d, key) {
            flags.other.push(format!("{key}={v}"));
        }
    }
    for m in texts(d, "rtcp-mux") {
        flags.other.push(format!("rtcp-mux-{m}"));
    }
    for dir in texts(d, "direction") {
        flags.other.push(format!("direction={dir}"));
    }
    let request = MediaRequest {
        op,
        call_id,
        from_tag,
        to_tag,
        sdp,
        source,
        receiver_ipv6: text(d, "address family").as_deref() == Some("IP6"),
        receiver,
        // ng does not say: an answer is taken as the call's.
        carrier: None,
        caller: None,
        authenticated: false,
    };
    Ok(Command::Media(request, flags))
}

/// Who the SDP goes to, as rtpengine's flags say it (unless the flags say it already), as
/// Kamailio's WebRTC gateway configuration does.
fn encode_receiver(d: &mut Dict, m: &MediaRequest, flags: &Flags) {
    if flags.transport_protocol.is_some() {
        return;
    }
    let (protocol, ice, mux) = match m.receiver {
        Peer::AsSender => return,
        Peer::WebRtc => ("UDP/TLS/RTP/SAVPF", "force", "offer"),
        Peer::Plain => ("RTP/AVP", "remove", "demux"),
    };
    d.insert(b"transport-protocol".to_vec(), bytes(protocol));
    d.insert(b"ICE".to_vec(), bytes(ice));
    let mux = match (m.receiver, m.op) {
        (Peer::WebRtc, MediaOp::Answer) => "accept",
        _ => mux,
    };
    d.insert(b"rtcp-mux".to_vec(), Value::List(vec![bytes(mux)]));
    // Not DTLS=passive: rtpengine may have finished ICE with a browser before the answer
    // and started DTLS as the client, and passive would leave both ends clients.
    if m.receiver == Peer::Plain {
        d.insert(b"DTLS".to_vec(), bytes("off"));
    }
    d.insert(b"SDES".to_vec(), Value::List(vec![bytes("off")]));
    if m.receiver == Peer::WebRtc {
        match d
            .entry(b"flags".to_vec())
            .or_insert_with(|| Value::List(Vec::new()))
        {
            Value::List(list) => list.push(bytes("generate-mid")),
            other => *other = Value::List(vec![bytes("generate-mid")]),
        }
    }
}

fn encode_flags(d: &mut Dict, flags: &Flags, source: Option<IpAddr>) {
    let mut list = Vec::new();
    if flags.trust_address {
        list.push(bytes("trust-address"));
    }
    if !list.is_empty() {
        d.insert(b"flags".to_vec(), Value::List(list));
    }
    let mut replace = vec![bytes("session-connection")];
    if flags.replace_origin {
        replace.push(bytes("origin"));
    }
    d.insert(b"replace".to_vec(), Value::List(replace));
    if flags.ice_remove {
        d.insert(b"ICE".to_vec(), bytes("remove"));
    }
    if let Some(p) = &flags.transport_protocol {
        d.insert(b"transport-protocol".to_vec(), bytes(p.as_str()));
    }
    if let Some(ip) = source {
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let from = vec![bytes(family), bytes(ip.to_string())];
        d.insert(b"received-from".to_vec(), Value::List(from));
    }
}
