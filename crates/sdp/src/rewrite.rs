//! Writing a copy of an SDP body with the relay's addresses and ports.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::parse::{Session, ICE};
use crate::transport::Transport;

/// Where one stream goes after the rewrite: the relay's address and ports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRewrite {
    /// The address the peer sends to.
    pub address: IpAddr,
    /// The RTP port.
    pub port: u16,
    /// The RTCP port: the RTP port with `a=rtcp-mux`, else `port + 1` when not given.
    pub rtcp_port: Option<u16>,
}

/// What to rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// One entry per `m=` section, in order: `None` (or a missing entry) leaves it as it is;
    /// a declined stream (port 0) is never changed.
    pub media: Vec<Option<MediaRewrite>>,
    /// The address for `o=` (rtpengine's `replace-origin`).
    pub origin: Option<IpAddr>,
    /// Remove the ICE attributes (towards a peer that does plain RTP).
    pub strip_ice: bool,
    /// Per `m=` section, what its receiver speaks when the relay bridges the stream to
    /// another transport (`None`, or a missing entry: what the sender does).
    pub transports: Vec<Option<Transport>>,
}

/// What becomes of one line.
pub(crate) enum Edit {
    Replace(String),
    Remove,
}

/// `c=IN IP4|IP6 <address>`.
fn connection_line(address: IpAddr) -> String {
    let family = if address.is_ipv4() { "IP4" } else { "IP6" };
    format!("c=IN {family} {address}")
}

impl Session<'_> {
    fn text(&self, i: usize) -> &str {
        &self.body[self.lines[i].text.clone()]
    }

    /// A copy of the body rewritten as `rw` says; the caller updates Content-Length. A
    /// stream put on hold with the zero address keeps it (the hold is the peer's to lift).
    pub fn rewrite(&self, rw: &Rewrite) -> Vec<u8> {
        let mut edits: HashMap<usize, Edit> = HashMap::new();
        // Lines to add after a line: a stream that needs a `c=` of its own.
        let mut inserts: HashMap<usize, Vec<String>> = HashMap::new();
        // The session's c= takes the first rewritten stream's address (streams without a
        // c= of their own that go elsewhere get one).
        let session_to = self
            .media
            .iter()
            .zip(&rw.media)
            .find_map(|(m, r)| r.filter(|_| m.port != 0 && m.connection.is_none()))
            .map(|r| r.address);
        // A browser's zero address means no candidates gathered, not hold: a stream that
        // changes transport names the relay whatever its sender's says.
        let retransported = rw.transports.iter().any(Option::is_some);
        if let (Some(c), Some(to)) = (self.connection, session_to) {
            if !c.address.is_unspecified() || retransported {
                edits.insert(c.line, Edit::Replace(connection_line(to)));
                // A stream left as it was keeps the session's first address, now its own.
                let kept = self.text(c.line).to_owned();
                for (i, m) in self.media.iter().enumerate() {
                    let relayed = rw.media.get(i).copied().flatten().is_some();
                    if !relayed && m.port != 0 && m.connection.is_none() {
                        inserts
                            .entry(self.connection_slot(m))
                            .or_default()
                            .push(kept.clone());
                    }
                }
            }
        }
        for (i, (m, r)) in self.media.iter().zip(&rw.media).enumerate() {
            let Some(r) = r.filter(|_| m.port != 0) else {
                continue;
            };
            let line = self.text(m.line);
            let mut parts: Vec<&str> = line.splitn(4, ' ').collect();
            // The relay has one port (pair) for the stream: a "/count" of layered ports
            // (RFC 4566 §5.14) would send the others to ports that are not the stream's.
            let port = r.port.to_string();
            parts[1] = &port;
            let transport = rw.transports.get(i).and_then(Option::as_ref);
            let formats;
            if let (Some(t), 4) = (transport, parts.len()) {
                parts[2] = t.proto();
                formats = t.formats(parts[3]);
                parts[3] = &formats;
            }
            edits.insert(m.line, Edit::Replace(parts.join(" ")));
            match m.connection {
                Some(c) if c.address.is_unspecified() && transport.is_none() => {}
                Some(c) => {
                    edits.insert(c.line, Edit::Replace(connection_line(r.address)));
                }
                None if Some(r.address) != session_to || self.connection.is_none() => {
                    inserts
                        .entry(self.connection_slot(m))
                        .or_default()
                        .push(connection_line(r.address));
                }
                None => {}
            }
            if let Some(i) = m.rtcp_line.filter(|_| transport.is_none()) {
                let rtcp = match (m.rtcp_mux, r.rtcp_port) {
                    (true, _) => r.port,
                    (false, Some(p)) => p,
                    (false, None) => r.port.wrapping_add(1),
                };
                let addressed = self.text(i).split(' ').count() > 1;
                let value = match addressed {
                    true => format!("a=rtcp:{rtcp} {}", &connection_line(r.address)[2..]),
                    false => format!("a=rtcp:{rtcp}"),
                };
                edits.insert(i, Edit::Replace(value));
            }
        }
        if let (Some((_, i)), Some(to)) = (self.origin, rw.origin) {
            let line = self.text(i);
            let head: Vec<&str> = line.splitn(4, ' ').collect();
            if head.len() == 4 {
                let family = if to.is_ipv4() { "IP4" } else { "IP6" };
                let origin = format!("{} {} {} IN {family} {to}", head[0], head[1], head[2]);
                edits.insert(i, Edit::Replace(origin));
            }
        }
        if rw.strip_ice {
            for i in 0..self.lines.len() {
                let name = self
                    .text(i)
                    .strip_prefix("a=")
                    .map(|a| a.split_once(':').map_or(a, |(n, _)| n));
                if name.is_some_and(|n| ICE.contains(&n)) {
                    edits.insert(i, Edit::Remove);
                }
            }
        }
        self.retransport(rw, &mut edits, &mut inserts);
        self.write(&edits, &inserts)
    }

    /// The line after which a stream's own `c=` goes: its `m=`, or its `i=` title (RFC 4566
    /// §5 order).
    fn connection_slot(&self, m: &crate::Media) -> usize {
        match m.lines.clone().nth(1) {
            Some(i) if self.text(i).starts_with("i=") => i,
            _ => m.line,
        }
    }

    /// The body with `edits` and `inserts` applied; every other byte as it was.
    fn write(
        &self,
        edits: &HashMap<usize, Edit>,
        inserts: &HashMap<usize, Vec<String>>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 64);
        for (i, line) in self.lines.iter().enumerate() {
            let end = &self.body[line.end.clone()];
            match edits.get(&i) {
                Some(Edit::Remove) => {}
                Some(Edit::Replace(text)) => {
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(end.as_bytes());
                }
                None => {
                    out.extend_from_slice(&self.body.as_bytes()[line.text.start..line.end.end]);
                }
            }
            // Removed or not, a line's inserts follow its place, each a line of its own.
            let removed = matches!(edits.get(&i), Some(Edit::Remove));
            for text in inserts.get(&i).into_iter().flatten() {
                match end.is_empty() {
                    // After the last line, which has no ending (nor has the last insert):
                    // a line break before each, but in the place of that line if removed.
                    true if removed && out.ends_with(b"\n") => {}
                    true => out.extend_from_slice(b"\r\n"),
                    false => {}
                }
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(end.as_bytes());
            }
        }
        out
    }
}
