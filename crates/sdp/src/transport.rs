//! Rewriting a stream for a receiver that speaks another transport than its sender: a
//! browser (WebRTC: ICE-lite with the relay as the one candidate, DTLS-SRTP, rtcp-mux,
//! `a=mid`, BUNDLE) or a phone (plain RTP/AVP, RTCP on the next port, G.711 first).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::parse::{Session, ICE};
use crate::rewrite::{Edit, Rewrite};
use crate::webrtc::{IceCredentials, Setup};

/// What the receiver of a rewritten stream speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// WebRTC, with the relay's leg facing it.
    WebRtc(WebRtcLeg),
    /// Plain RTP/AVP.
    Plain,
}

/// What the SDP towards a browser says of the relay's leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcLeg {
    /// The leg's ICE credentials.
    pub ice: IceCredentials,
    /// The relay's certificate fingerprint, as `a=fingerprint` gives it (`sha-256 AB:…`).
    pub fingerprint: String,
    /// The leg's DTLS role.
    pub setup: Setup,
    /// The browser's own `a=mid` for the stream, when it said one (else the sender's, else
    /// the stream's index).
    pub mid: Option<String>,
}

/// Attributes of DTLS-SRTP, SDES and stream identification that belong to one transport:
/// removed whenever the stream changes transport, and written anew for a browser.
const TRANSPORT: [&str; 6] = ["fingerprint", "setup", "crypto", "rtcp-mux", "mid", "rtcp"];

/// Attributes that only RTP/SAVPF (feedback, header extensions) gives meaning to: removed
/// towards a phone.
const FEEDBACK: [&str; 5] = [
    "rtcp-fb",
    "extmap",
    "extmap-allow-mixed",
    "rtcp-rsize",
    "msid-semantic",
];

/// The payload types a phone has for sure (PCMU, PCMA).
const G711: [&str; 2] = ["0", "8"];

impl Transport {
    /// The `m=` line's transport.
    pub(crate) fn proto(&self) -> &'static str {
        match self {
            Transport::WebRtc(_) => "UDP/TLS/RTP/SAVPF",
            Transport::Plain => "RTP/AVP",
        }
    }

    /// The `m=` line's formats: towards a phone, G.711 first, so that a phone that takes
    /// the first it has takes one both sides have.
    pub(crate) fn formats(&self, formats: &str) -> String {
        match self {
            Transport::WebRtc(_) => formats.to_owned(),
            Transport::Plain => {
                let all: Vec<&str> = formats.split(' ').collect();
                let first = all.iter().filter(|f| G711.contains(f));
                let rest = all.iter().filter(|f| !G711.contains(f));
                first.chain(rest).copied().collect::<Vec<_>>().join(" ")
            }
        }
    }
}

impl Session<'_> {
    /// The attribute name of line `i`, if it is an `a=` line.
    fn attribute(&self, i: usize) -> Option<&str> {
        let text = &self.body[self.lines[i].text.clone()];
        let a = text.strip_prefix("a=")?;
        Some(a.split_once(':').map_or(a, |(n, _)| n).trim_end())
    }

    /// The edits `rw.transports` ask for: each stream whose receiver speaks another
    /// transport loses its sender's transport attributes and gets the receiver's; the
    /// session-level ones go, and towards a browser the session says `a=ice-lite` and
    /// bundles its first stream.
    pub(crate) fn retransport(
        &self,
        rw: &Rewrite,
        edits: &mut HashMap<usize, Edit>,
        inserts: &mut HashMap<usize, Vec<String>>,
    ) {
        let chosen: Vec<(usize, &Transport)> = (0..self.media.len())
            .filter(|&i| self.media[i].port != 0 && rw.media.get(i).copied().flatten().is_some())
            .filter_map(|i| Some((i, rw.transports.get(i)?.as_ref()?)))
            .collect();
        if chosen.is_empty() {
            return;
        }
        let mids = self.webrtc();
        let mut bundle = Vec::new();
        for &(i, t) in &chosen {
            let m = &self.media[i];
            for line in m.lines.clone().skip(1) {
                let name = self.attribute(line);
                let feedback =
                    matches!(t, Transport::Plain) && name.is_some_and(|n| FEEDBACK.contains(&n));
                if name.is_some_and(|n| ICE.contains(&n) || TRANSPORT.contains(&n)) || feedback {
                    edits.insert(line, Edit::Remove);
                }
            }
            let Transport::WebRtc(leg) = t else { continue };
            let Some(to) = rw.media.get(i).copied().flatten() else {
                continue;
            };
            let mid = (leg.mid.clone())
                .or_else(|| mids[i].mid.clone())
                .unwrap_or_else(|| i.to_string());
            let setup = match leg.setup {
                Setup::Active => "active",
                Setup::Passive => "passive",
                Setup::ActPass => "actpass",
                Setup::HoldConn => "holdconn",
            };
            let last = m.lines.end - 1;
            inserts.entry(last).or_default().extend([
                format!("a=mid:{mid}"),
                format!("a=ice-ufrag:{}", leg.ice.ufrag),
                format!("a=ice-pwd:{}", leg.ice.pwd),
                format!("a=fingerprint:{}", leg.fingerprint),
                format!("a=setup:{setup}"),
                "a=rtcp-mux".to_owned(),
                candidate(to.address, to.port),
                "a=end-of-candidates".to_owned(),
            ]);
            bundle.push(mid);
        }
        // The session level: its transport attributes are the sender's.
        let first = self.media.first().map_or(self.lines.len(), |m| m.line);
        for line in 0..first {
            let name = self.attribute(line);
            let plain = bundle.is_empty() && name.is_some_and(|n| FEEDBACK.contains(&n));
            if name.is_some_and(|n| {
                ICE.contains(&n) || n == "group" || n == "fingerprint" || n == "setup"
            }) || plain
            {
                edits.insert(line, Edit::Remove);
            }
        }
        if !bundle.is_empty() && first > 0 {
            // One stream in the group: a page with `max-bundle` needs a group, and streams
            // bundled on one port would all reach the first one's (the others keep their
            // own ports, which a `balanced` page takes).
            let lines = vec![
                "a=ice-lite".to_owned(),
                format!("a=group:BUNDLE {}", bundle[0]),
            ];
            inserts.entry(first - 1).or_default().extend(lines);
        }
    }
}

/// The relay's one candidate: a host candidate of component 1 (rtcp-mux).
fn candidate(address: IpAddr, port: u16) -> String {
    format!("a=candidate:1 1 UDP 2130706431 {address} {port} typ host")
}
