//! The media relay's WebRTC side, sans-IO: what it takes to bridge a browser's media
//! (ICE-lite, DTLS-SRTP, rtcp-mux, BUNDLE) to a phone's plain RTP.
//! - [`Identity`]: the relay's DTLS certificate and its fingerprint;
//! - [`Leg`]: one browser-facing leg: it answers connectivity checks (ICE-lite, `is`),
//!   handshakes (DTLS, `dimpl`) with the peer whose SDP's fingerprint the certificate must
//!   match, and turns SRTP into RTP and back;
//! - [`Srtp`]: SRTP and SRTCP contexts (`rtc-srtp`), which count what they refuse.

mod demux;
mod identity;
mod leg;
mod srtp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use demux::{kind, Kind};
pub use identity::{fingerprint_value, Identity, IdentityError};
pub use leg::{Leg, LegStats, Received, Refusal, Remote, Transmit, CONSENT};
pub use srtp::{Profile, Refusals, Srtp, SrtpError, MAX_SSRCS};

#[cfg(test)]
mod tests;
