//! Reading an SDP body into the lines a relay rewrites.

use std::net::IpAddr;
use std::ops::Range;

/// Why a body is not SDP a relay can rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// Not UTF-8 text.
    NotText,
    /// The first line is not `v=0`.
    NoVersion,
    /// A line is not `x=value`.
    BadLine(usize),
    /// An `m=` line without a port, or a port that is no number.
    BadMedia(usize),
    /// A `c=` line that is not `IN IP4|IP6 address`.
    BadConnection(usize),
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdpError::NotText => f.write_str("SDP is not UTF-8 text"),
            SdpError::NoVersion => f.write_str("SDP does not start with v=0"),
            SdpError::BadLine(n) => write!(f, "SDP line {n} is not type=value"),
            SdpError::BadMedia(n) => write!(f, "SDP line {n}: bad m= line"),
            SdpError::BadConnection(n) => write!(f, "SDP line {n}: bad c= line"),
        }
    }
}

impl std::error::Error for SdpError {}

/// One line: its text (without the line ending) and its ending, as byte ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) text: Range<usize>,
    pub(crate) end: Range<usize>,
}

/// A `c=` line: where media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The address (`0.0.0.0` puts a stream on hold, RFC 2543 style).
    pub address: IpAddr,
    /// The index of the line.
    pub(crate) line: usize,
}

/// The direction of a stream (RFC 4566 §6), `sendrecv` when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv`, or nothing.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`…
    pub kind: String,
    /// The port; 0 declines the stream (RFC 3264 §6).
    pub port: u16,
    /// The transport (`RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`…).
    pub proto: String,
    /// Its own `c=`, if any (else the session's applies).
    pub connection: Option<Connection>,
    /// The port of `a=rtcp`, if given (RFC 3605).
    pub rtcp_port: Option<u16>,
    /// `a=rtcp-mux`: RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// The direction (the session's when the stream gives none).
    pub direction: Direction,
    pub(crate) line: usize,
    pub(crate) rtcp_line: Option<usize>,
    /// The lines of this section, `m=` included.
    pub(crate) lines: Range<usize>,
}

/// A parsed SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session<'a> {
    pub(crate) body: &'a str,
    pub(crate) lines: Vec<Line>,
    /// The session-level `c=`, if any.
    pub connection: Option<Connection>,
    /// The address in `o=`, with its line.
    pub(crate) origin: Option<(IpAddr, usize)>,
    /// The media sections, in order.
    pub media: Vec<Media>,
}

/// The ICE attributes (RFC 8839), removed towards peers that do plain RTP.
pub(crate) const ICE: [&str; 8] = [
    "candidate",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "remote-candidates",
    "end-of-candidates",
];

/// The lines of `body`, each with its ending (CRLF, or LF alone, or none at the end).
fn lines(body: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut at = 0;
    let b = body.as_bytes();
    while at < b.len() {
        let nl = b[at..].iter().position(|&c| c == b'\n').map(|i| at + i);
        let (text_end, next) = match nl {
            Some(i) if i > at && b[i - 1] == b'\r' => (i - 1, i + 1),
            Some(i) => (i, i + 1),
            None => (b.len(), b.len()),
        };
        out.push(Line {
            text: at..text_end,
            end: text_end..next,
        });
        at = next;
    }
    out
}

/// The address of `IN IP4|IP6 <address>[/ttl…]`.
fn address(value: &str) -> Option<IpAddr> {
    let mut parts = value.split(' ');
    let (net, kind, addr) = (parts.next()?, parts.next()?, parts.next()?);
    let addr = addr.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    let family_ok = match kind {
        "IP4" => ip.is_ipv4(),
        "IP6" => ip.is_ipv6(),
        _ => false,
    };
    (net == "IN" && family_ok).then_some(ip)
}

impl<'a> Session<'a> {
    /// Parses an SDP body. Lines the relay does not rewrite are not interpreted beyond
    /// `type=value`.
    pub fn parse(body: &'a [u8]) -> Result<Session<'a>, SdpError> {
        let body = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let lines = lines(body);
        let text = |i: usize| &body[lines[i].text.clone()];
        if lines.is_empty() || text(0).trim_end() != "v=0" {
            return Err(SdpError::NoVersion);
        }
        let mut s = Session {
            body,
            lines: Vec::new(),
            connection: None,
            origin: None,
            media: Vec::new(),
        };
        let mut session_direction = Direction::SendRecv;
        for i in 0..lines.len() {
            let line = text(i);
            if line.is_empty() {
                continue;
            }
            let (kind, value) = line.split_once('=').ok_or(SdpError::BadLine(i + 1))?;
            let media = s.media.last_mut();
            match (kind, media) {
                ("m", _) => {
                    let mut parts = value.split(' ');
                    let kind = parts.next().unwrap_or_default().to_owned();
                    let port = parts.next().and_then(|p| p.split('/').next());
                    let port = port.and_then(|p| p.parse().ok());
                    let port = port.ok_or(SdpError::BadMedia(i + 1))?;
                    let proto = parts.next().unwrap_or_default().to_owned();
                    if let Some(last) = s.media.last_mut() {
                        last.lines.end = i;
                    }
                    s.media.push(Media {
                        kind,
                        port,
                        proto,
                        connection: None,
                        rtcp_port: None,
                        rtcp_mux: false,
                        direction: session_direction,
                        line: i,
                        rtcp_line: None,
                        lines: i..lines.len(),
                    });
                }
                ("c", media) => {
                    let address = address(value).ok_or(SdpError::BadConnection(i + 1))?;
                    let c = Some(Connection { address, line: i });
                    match media {
                        Some(m) => m.connection = c,
                        None => s.connection = c,
                    }
                }
                ("o", None) => {
                    // o=<user> <sess-id> <version> IN IP4 <address>
                    let rest: Vec<&str> = value.splitn(4, ' ').collect();
                    s.origin = rest.get(3).and_then(|r| address(r)).map(|a| (a, i));
                }
                ("a", media) => {
                    let (name, attr) = value.split_once(':').unwrap_or((value, ""));
                    let direction = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    match (media, direction) {
                        (Some(m), Some(d)) => m.direction = d,
                        (None, Some(d)) => session_direction = d,
                        (Some(m), None) if name == "rtcp-mux" => m.rtcp_mux = true,
                        (Some(m), None) if name == "rtcp" => {
                            let port = attr.split(' ').next().and_then(|p| p.parse().ok());
                            m.rtcp_port = port;
                            m.rtcp_line = port.map(|_| i);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        s.lines = lines;
        Ok(s)
    }
}
