//! The media relay's WebRTC side, sans-IO: what it takes to bridge a browser's media
//! (ICE-lite, DTLS-SRTP, rtcp-mux, BUNDLE) to a phone's plain RTP. So far the SRTP layer:
//! [`Srtp`] protects and unprotects a leg's packets with the keys its DTLS handshake (or
//! `a=crypto`) gave, and counts what it refuses.

mod srtp;

pub use srtp::{Profile, Refusals, Srtp, SrtpError};
