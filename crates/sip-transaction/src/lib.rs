//! SIP transactions (RFC 3261 §17 with the RFC 6026 Accepted states) as sans-IO state
//! machines: events and the current time go in, [`Output`]s come out, and the owner asks each
//! transaction when it next needs [`handle_timeout`](ClientTransaction::handle_timeout).
//! No sockets, no clock of their own, no tokio.

mod ack;
mod client;
mod key;
#[cfg(test)]
mod props;
mod server;
#[cfg(test)]
mod test_util;
mod timers;

use bytes::Bytes;
use sip_message::Message;

pub use ack::{build_ack, build_cancel};
pub use client::{ClientState, ClientTransaction};
pub use key::{Role, TransactionKey};
pub use server::{ServerState, ServerTransaction};
pub use timers::TimerConfig;

/// What a transaction asks its owner to do.
#[derive(Debug)]
pub enum Output {
    /// Send these bytes to the peer: the request, a retransmission, an ACK or a response.
    Transmit(Bytes),
    /// A response for the transaction user (client transactions only). Boxed, so that the
    /// output queue every transaction keeps stays small.
    Response(Box<Message>),
    /// No final response in time (timers B and F), or no ACK for a final response (timer H).
    /// A client's user acts as on a 408.
    Timeout,
    /// The transaction is over; its owner forgets it.
    Terminated,
}

/// Whether a transaction runs over a reliable transport (TCP, TLS): no retransmissions and
/// no lingering in Completed/Confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// UDP.
    Unreliable,
    /// TCP, TLS, SCTP, WebSocket.
    Reliable,
}

impl Reliability {
    fn is_reliable(self) -> bool {
        self == Reliability::Reliable
    }
}

/// A transaction's outputs until its user takes them: rarely more than two at a time, so
/// kept inline (a queue on the heap cost an allocation per transaction, held while it
/// lingers for 32 s).
type Outputs = smallvec::SmallVec<[Output; 2]>;

/// Takes the oldest output of `out`.
fn next_output(out: &mut Outputs) -> Option<Output> {
    (!out.is_empty()).then(|| out.remove(0))
}
