//! SDP (RFC 4566) as a media relay needs it, sans-IO: [`Session::parse`] finds the lines
//! that say where media goes (`c=`, `m=`, `a=rtcp`, `a=rtcp-mux`, the direction, ICE) as
//! byte ranges of the body, and [`Session::rewrite`] writes a copy in which only those lines
//! change: every other byte, line ending included, comes out as it came in.
//! [`Session::webrtc`] tells, per stream, what a WebRTC endpoint says of ICE and
//! DTLS-SRTP, and a [`Transport`] in the rewrite bridges a browser's stream to a phone's
//! or back.

mod parse;
mod rewrite;
mod transport;
mod webrtc;

pub use parse::{Connection, Direction, Media, SdpError, Session};
pub use rewrite::{MediaRewrite, Rewrite};
pub use transport::{Transport, WebRtcLeg};
pub use webrtc::{Fingerprint, IceCredentials, Setup, WebRtcMedia};

#[cfg(test)]
mod tests;
