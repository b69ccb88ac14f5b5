//! The SIP proxy core (RFC 3261 §16) with the registrar and redirect server beside it, as a
//! sans-IO machine: a received message and the time go in, [`Command`]s come out. The IO
//! layer sends what it is told, persists registrar changes before the commands that follow
//! them, and calls [`Core::handle_timeouts`] when [`Core::next_timeout`] says.

mod branch;
mod checks;
mod config;
mod context;
mod core;
mod dns;
mod forward;
mod guard;
mod local;
mod relay;
mod reply;
mod route;
mod routing;
mod script_routes;
mod target;

use bytes::Bytes;

pub use crate::core::Core;
pub use branch::BranchSecret;
pub use config::{HostedDomains, ProxyConfig};
pub use guard::GuardConfig;
pub use routing::{compile, default_script, ProxyEnv, ProxyScript, RouteCtx};
pub use target::{is_us, next_hop, Destination, NextHop};

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
    /// Write registrar changes to storage; the commands after it wait until it is done
    /// (the 200 OK of a REGISTER is sent only once its binding is safe).
    Persist(Vec<registrar::Change>),
    /// Look these host names up (A and AAAA), give each answer to [`Core::dns_answer`],
    /// then call [`Core::resume`] with `then`.
    Resolve {
        /// Lower-case host names.
        hosts: Vec<String>,
        /// What waits for them.
        then: Resume,
    },
}

/// What waits for a DNS answer.
#[derive(Debug)]
pub enum Resume {
    /// A request whose script relayed it to a name: it is handled again as if it had just
    /// arrived (its script runs again and finds the answer cached).
    Request {
        /// The request.
        request: Box<sip_message::Message>,
        /// Where it came from.
        src: Destination,
    },
    /// A transaction whose failure route relayed to a name: the failure route runs again.
    Failure {
        /// The proxy context.
        context: u64,
    },
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod routing_tests;
#[cfg(test)]
pub(crate) mod tests;
