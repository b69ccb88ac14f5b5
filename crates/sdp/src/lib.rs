//! SDP (RFC 4566) as a media relay needs it, sans-IO: [`Session::parse`] finds the lines
//! that say where media goes (`c=`, `m=`, `a=rtcp`, `a=rtcp-mux`, the direction, ICE) as
//! byte ranges of the body, and [`Session::rewrite`] writes a copy in which only those lines
//! change: every other byte, line ending included, comes out as it came in.

mod parse;
mod rewrite;

pub use parse::{Connection, Direction, Media, SdpError, Session};
pub use rewrite::{MediaRewrite, Rewrite};

#[cfg(test)]
mod tests;
