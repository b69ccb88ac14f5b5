//! What an SDP says of WebRTC media (RFC 8829, ICE RFC 8839, DTLS-SRTP RFC 5763/8842,
//! BUNDLE RFC 8843): per `m=` section its ICE credentials, DTLS fingerprint and role, `mid`,
//! and the session's BUNDLE group. A relay reads it to decide, per leg, whether it speaks
//! ICE and DTLS-SRTP to that side or plain RTP.

use crate::parse::Session;

/// ICE credentials (`a=ice-ufrag`, `a=ice-pwd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// The username fragment.
    pub ufrag: String,
    /// The password.
    pub pwd: String,
}

/// A certificate fingerprint (`a=fingerprint:sha-256 AB:CD:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function, lower case (`sha-256`).
    pub hash: String,
    /// The digest's bytes.
    pub digest: Vec<u8>,
}

/// The DTLS role an endpoint takes (`a=setup`, RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// It connects (DTLS client).
    Active,
    /// It waits (DTLS server).
    Passive,
    /// Either: an offer's usual word, the answerer chooses.
    ActPass,
    /// Not now.
    HoldConn,
}

/// What one media section says of WebRTC; session-level attributes apply where the section
/// gives none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebRtcMedia {
    /// Its transport is `UDP/TLS/RTP/SAVPF` (or `UDP/TLS/RTP/SAVP`): DTLS-SRTP.
    pub dtls_srtp: bool,
    /// Its ICE credentials.
    pub ice: Option<IceCredentials>,
    /// The peer is ICE-lite (`a=ice-lite`).
    pub ice_lite: bool,
    /// Its DTLS certificate's fingerprint.
    pub fingerprint: Option<Fingerprint>,
    /// Its DTLS role.
    pub setup: Option<Setup>,
    /// Its `a=mid`.
    pub mid: Option<String>,
    /// How many `a=candidate` lines it has.
    pub candidates: usize,
}

impl WebRtcMedia {
    /// Whether the peer on this side is a WebRTC endpoint: DTLS-SRTP with ICE.
    pub fn is_webrtc(&self) -> bool {
        self.dtls_srtp && self.ice.is_some() && self.fingerprint.is_some()
    }
}

/// What the lines of one level (session or a media section) say.
#[derive(Default)]
struct Level {
    ufrag: Option<String>,
    pwd: Option<String>,
    ice_lite: bool,
    fingerprint: Option<Fingerprint>,
    setup: Option<Setup>,
    mid: Option<String>,
    candidates: usize,
    bundle: Option<Vec<String>>,
}

impl Level {
    fn read(&mut self, name: &str, value: &str) {
        match name {
            "ice-ufrag" => self.ufrag = Some(value.trim().to_owned()),
            "ice-pwd" => self.pwd = Some(value.trim().to_owned()),
            "ice-lite" => self.ice_lite = true,
            "fingerprint" => self.fingerprint = fingerprint(value),
            "setup" => self.setup = setup(value),
            "mid" => self.mid = Some(value.trim().to_owned()),
            "candidate" => self.candidates += 1,
            "group" => {
                let mut parts = value.split_ascii_whitespace();
                if parts.next() == Some("BUNDLE") {
                    self.bundle = Some(parts.map(str::to_owned).collect());
                }
            }
            _ => {}
        }
    }
}

impl Session<'_> {
    /// What each media section (in order) says of WebRTC.
    pub fn webrtc(&self) -> Vec<WebRtcMedia> {
        let session = self.level(0..self.media.first().map_or(self.lines.len(), |m| m.line));
        self.media
            .iter()
            .map(|m| {
                let own = self.level(m.lines.clone());
                let proto = m.proto.to_ascii_uppercase();
                let ice = match (
                    own.ufrag.or(session.ufrag.clone()),
                    own.pwd.or(session.pwd.clone()),
                ) {
                    (Some(ufrag), Some(pwd)) => Some(IceCredentials { ufrag, pwd }),
                    _ => None,
                };
                WebRtcMedia {
                    dtls_srtp: proto.starts_with("UDP/TLS/RTP/SAVP"),
                    ice,
                    ice_lite: own.ice_lite || session.ice_lite,
                    fingerprint: own.fingerprint.or(session.fingerprint.clone()),
                    setup: own.setup.or(session.setup),
                    mid: own.mid,
                    candidates: own.candidates,
                }
            })
            .collect()
    }

    /// The `mid`s of the session's BUNDLE group (RFC 8843), in order; empty when none.
    pub fn bundle(&self) -> Vec<String> {
        let end = self.media.first().map_or(self.lines.len(), |m| m.line);
        self.level(0..end).bundle.unwrap_or_default()
    }

    /// What the `a=` lines in `range` say.
    fn level(&self, range: std::ops::Range<usize>) -> Level {
        let mut level = Level::default();
        for i in range {
            let Some(line) = self.lines.get(i) else { break };
            let text = &self.body[line.text.clone()];
            if let Some(attr) = text.strip_prefix("a=") {
                let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
                level.read(name, value);
            }
        }
        level
    }
}

/// `sha-256 AB:CD:…`: the hash function and the digest (none when malformed).
fn fingerprint(value: &str) -> Option<Fingerprint> {
    let (hash, hex) = value.trim().split_once(' ')?;
    let digest = hex
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
        .collect::<Option<Vec<u8>>>()?;
    (!digest.is_empty()).then(|| Fingerprint {
        hash: hash.to_ascii_lowercase(),
        digest,
    })
}

fn setup(value: &str) -> Option<Setup> {
    match value.trim().to_ascii_lowercase().as_str() {
        "active" => Some(Setup::Active),
        "passive" => Some(Setup::Passive),
        "actpass" => Some(Setup::ActPass),
        "holdconn" => Some(Setup::HoldConn),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A browser's offer (Chrome's shape), audio and video bundled.
    const CHROME: &str = "v=0\r
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1\r
a=extmap-allow-mixed\r
a=msid-semantic: WMS stream\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r
c=IN IP4 0.0.0.0\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host generation 0\r
a=candidate:2 1 udp 1686052607 198.51.100.7 54321 typ srflx raddr 192.168.1.20 rport 54321\r
a=ice-ufrag:Kx9F\r
a=ice-pwd:bPq1hT4yUwv8Z2dA7eRtYs0c\r
a=ice-options:trickle\r
a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r
a=setup:actpass\r
a=mid:0\r
a=sendrecv\r
a=rtcp-mux\r
a=rtpmap:111 opus/48000/2\r
m=video 9 UDP/TLS/RTP/SAVPF 96\r
c=IN IP4 0.0.0.0\r
a=ice-ufrag:Kx9F\r
a=ice-pwd:bPq1hT4yUwv8Z2dA7eRtYs0c\r
a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r
a=setup:actpass\r
a=mid:1\r
a=rtcp-mux\r
";

    #[test]
    fn a_browsers_offer_is_webrtc_with_its_credentials_role_and_mids() {
        let s = Session::parse(CHROME.as_bytes()).unwrap();
        let w = s.webrtc();
        assert_eq!(w.len(), 2);
        let audio = &w[0];
        assert!(audio.is_webrtc() && audio.dtls_srtp);
        assert_eq!(
            audio.ice,
            Some(IceCredentials {
                ufrag: "Kx9F".into(),
                pwd: "bPq1hT4yUwv8Z2dA7eRtYs0c".into()
            })
        );
        let fp = audio.fingerprint.as_ref().unwrap();
        assert_eq!(
            (fp.hash.as_str(), fp.digest.len(), fp.digest[0]),
            ("sha-256", 32, 0x6b)
        );
        assert_eq!(audio.setup, Some(Setup::ActPass));
        assert_eq!(audio.mid.as_deref(), Some("0"));
        assert_eq!(audio.candidates, 2);
        assert!(!audio.ice_lite);
        assert_eq!(w[1].mid.as_deref(), Some("1"));
        assert_eq!(w[1].candidates, 0);
        assert_eq!(s.bundle(), ["0", "1"]);
        assert!(s.media[0].rtcp_mux);
    }

    #[test]
    fn a_phones_offer_is_plain_rtp() {
        let phone = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n";
        let s = Session::parse(phone.as_bytes()).unwrap();
        let w = s.webrtc();
        assert!(!w[0].is_webrtc() && !w[0].dtls_srtp && w[0].ice.is_none());
        assert!(s.bundle().is_empty());
    }

    #[test]
    fn session_level_attributes_apply_to_each_section() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=fingerprint:SHA-1 00:FF\r\na=setup:passive\r\nm=audio 5000 UDP/TLS/RTP/SAVP 0\r\nc=IN IP4 192.0.2.1\r\n";
        let s = Session::parse(sdp.as_bytes()).unwrap();
        let w = &s.webrtc()[0];
        assert!(w.is_webrtc() && w.ice_lite);
        assert_eq!(w.setup, Some(Setup::Passive));
        assert_eq!(w.fingerprint.as_ref().unwrap().hash, "sha-1");
        assert_eq!(w.fingerprint.as_ref().unwrap().digest, [0x00, 0xff]);
    }

    #[test]
    fn malformed_attributes_say_nothing() {
        assert_eq!(fingerprint("sha-256"), None);
        assert_eq!(fingerprint("sha-256 ZZ:00"), None);
        assert_eq!(fingerprint("sha-256 0:00"), None);
        assert_eq!(fingerprint("sha-256 "), None);
        assert_eq!(setup("sideways"), None);
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 0\r\na=ice-ufrag:u\r\n";
        let w = &Session::parse(sdp.as_bytes()).unwrap().webrtc()[0];
        assert!(
            w.ice.is_none() && !w.is_webrtc(),
            "a ufrag without its password"
        );
    }
}
