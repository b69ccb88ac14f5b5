//! The SIP proxy core (RFC 3261 §16) with the registrar and redirect server beside it, as a
//! sans-IO machine: a received message and the time go in, [`Command`]s come out. The IO
//! layer sends what it is told, answers what the core waits for (DNS lookups with
//! [`Core::resume`], binding writes with [`Core::persisted`], the media relay with
//! [`Core::media_done`]), and calls
//! [`Core::handle_timeouts`] when [`Core::next_timeout`] says.

mod branch;
mod calls;
mod checks;
mod config;
mod context;
mod core;
mod dialog_read;
mod dialogs;
mod dispatch;
mod dns;
mod flow;
mod forward;
mod guard;
mod keepalive;
mod linger;
mod local;
mod media;
mod names;
mod offline;
mod originate;
mod presences;
mod refresh;
mod relay;
mod relay_media;
mod reply;
mod route;
mod route_key;
mod routing;
mod script_routes;
mod shard;
mod suspend;
mod target;

use bytes::Bytes;

pub use crate::core::Core;
pub use branch::BranchSecret;
pub use calls::CallsTick;
pub use config::{HostedDomains, NonceSecret, ProxyConfig};
pub use dns::Found;
pub use guard::GuardConfig;
pub use names::NameId;
pub use offline::MessageWrite;
pub use originate::{Answer, OnAnswer};
pub use presences::PresenceTick;
pub use route_key::RouteSecret;
pub use routing::{compile, compile_with, default_script, ProxyEnv, ProxyScript, RouteCtx};
pub use suspend::{Resume, Written};
pub use target::{is_us, next_hop, Destination, Lookup, NextHop};

/// What the core asks the IO layer to do, in order.
#[derive(Debug)]
pub enum Command {
    /// Send bytes to a destination.
    Send {
        /// Where to.
        dest: Destination,
        /// The message.
        data: Bytes,
    },
    /// Write registrar changes to storage, then tell the core with [`Core::persisted`]
    /// when `then` is given (a REGISTER's answer waits for it).
    Persist {
        /// The changes, in order.
        changes: Vec<registrar::Change>,
        /// What waits for them.
        then: Option<Resume>,
    },
    /// Look these up (RFC 3263: NAPTR, SRV, A and AAAA, as [`Lookup::plan`] says), give
    /// each answer to [`Core::dns_answer`], then call [`Core::resume`] with `then` (also when
    /// a lookup failed or was refused).
    Resolve {
        /// Host names, with what the URI says of port and transport.
        hosts: Vec<Lookup>,
        /// What waits for them.
        then: Resume,
    },
    /// Keep the connection open however quiet for `time` (zero: only while not idle): a
    /// client registered over it (a TCP or TLS one, which may send no keep-alives), and
    /// requests for it take that way.
    KeepOpen {
        /// The connection, by protocol and remote address.
        dest: Destination,
        /// How long.
        time: std::time::Duration,
    },
    /// Give this to the media relay, then (when `then` is given: a message waits for it)
    /// its answer to [`Core::media_done`].
    Media {
        /// The SDP offer or answer, or the end of a call.
        request: ::relay::MediaRequest,
        /// What waits for the rewritten SDP.
        then: Option<Resume>,
    },
    /// Keep or remove messages for users who are offline, in order.
    Messages(MessageWrite),
}

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod calls_tests;
#[cfg(test)]
mod context_tests;
#[cfg(test)]
mod failover_tests;
#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod originate_tests;
#[cfg(test)]
mod props;
#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod suspend_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod websocket_tests;
