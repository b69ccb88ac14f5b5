//! The SIP proxy core (RFC 3261 §16) with the registrar and redirect server beside it, as a
//! sans-IO machine: a received message and the time go in, [`Command`]s come out. The IO
//! layer sends what it is told, persists registrar changes before the commands that follow
//! them, and calls [`Core::handle_timeouts`] when [`Core::next_timeout`] says.

mod config;
mod context;
mod core;
mod forward;
mod reply;
mod route;
mod target;

use bytes::Bytes;

pub use crate::core::Core;
pub use config::ProxyConfig;
pub use target::{destination_of, is_us, Destination};

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
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A configuration for tests: one UDP address, 192.0.2.1:5060, domain example.com.
    pub(crate) fn config() -> ProxyConfig {
        ProxyConfig {
            domains: vec!["example.com".into(), "192.0.2.1".into()],
            advertised: vec![
                (
                    sip_message::Protocol::Udp,
                    "192.0.2.1:5060".parse().expect("addr"),
                ),
                (
                    sip_message::Protocol::Tcp,
                    "192.0.2.1:5060".parse().expect("addr"),
                ),
            ],
            redirect_domains: vec![],
            record_route: true,
            stateful: true,
            timer_c: std::time::Duration::from_secs(180),
            timers: sip_transaction::TimerConfig::default(),
            registrar: registrar::RegistrarConfig::default(),
            agent: "ferrosip-test".into(),
        }
    }
}
