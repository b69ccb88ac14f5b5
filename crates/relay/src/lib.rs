//! A media relay, sans-IO. A call's offer and answer make a [`Session`] with, for each
//! stream, a port facing each side (from a [`PortPool`]: an even RTP port, RTCP on the next
//! one). A packet that arrives on a port is given to [`Relay::on_packet`], which says where
//! to send it, out of which port, or why not:
//! - **symmetric latching**: each side's real address is learnt from its first RTP packet
//!   from an address the call named — its SDP's, or the one its signalling came from (a
//!   phone behind NAT sends from its NAT's address, not the one in its SDP); a stranger's
//!   packet sprayed at the port first takes nothing;
//! - **strict source**: once latched, packets from any other address are dropped (no RTP
//!   Bleed, no RTP injection);
//! - counters per side (packets, bytes, RTP sequence gaps, the last packet's time), and
//!   sessions end on teardown or when no packet came for the media timeout.
//!
//! [`MediaRequest`] is what a SIP proxy asks of a relay (as rtpengine's ng protocol has it);
//! [`media_addresses`] and [`relayed_sdp`] read and write the SDP for it.

mod bridge;
mod control;
mod offload;
mod pool;
mod rtp;
mod session;

pub use bridge::WebRtcStream;
pub use control::{
    declined_streams, holds, media_addresses, raw_streams, relayed_sdp, Carrier, MediaError,
    MediaOp, MediaRequest, Peer,
};
pub use offload::{Flow, Forwarded, Offload};
pub use pool::{pairs, PortPool};
pub use session::{
    Dropped, Forward, Origin, Relay, SessionId, SessionPorts, SessionStats, Side, Stats,
    StreamPorts, Totals, UNANSWERED,
};

#[cfg(test)]
mod offload_tests;
#[cfg(test)]
mod tests;
