//! A shard's flows in the kernel's forwarding path ([`relay_kernel`]): what its relay
//! installs and removes goes to the kernel's table, and what the kernel forwarded comes
//! back to the relay once a second (its counters, and its sides heard).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay::{Forwarded, Offload, Relay};
use relay_kernel::{Counters, KernelPath};

/// The flows a shard has in the kernel, with what was counted of each so far.
pub(crate) struct Offloaded {
    path: Arc<KernelPath>,
    flows: HashMap<(u16, SocketAddrV4), Counters>,
    /// The table refused a flow (full): said once.
    warned: bool,
}

impl Offloaded {
    pub(crate) fn new(path: Arc<KernelPath>) -> Offloaded {
        Offloaded {
            path,
            flows: HashMap::new(),
            warned: false,
        }
    }

    /// Applies the relay's changes, in order.
    pub(crate) fn apply(&mut self, relay: &mut Relay) {
        while let Some(change) = relay.poll_offload() {
            match change {
                Offload::Install(f) => {
                    let (Some(src), Some(to)) = (v4(f.src), v4(f.to)) else {
                        continue;
                    };
                    match self.path.install(f.port, src, f.from, to) {
                        Ok(()) => {
                            self.flows.insert((f.port, src), Counters::default());
                        }
                        Err(e) if !self.warned => {
                            self.warned = true;
                            tracing::warn!(error = %e, "media relay: a flow stays in userspace");
                        }
                        Err(_) => {}
                    }
                }
                Offload::Remove { port, src } => {
                    if let Some(src) = v4(src) {
                        if self.flows.remove(&(port, src)).is_some() {
                            self.path.remove(port, src);
                        }
                    }
                }
            }
        }
    }

    /// Gives the relay what the kernel forwarded since the last time.
    pub(crate) fn sync(&mut self, relay: &mut Relay, now: Instant) {
        let mono = relay_kernel::monotonic_ns();
        for (&(port, src), seen) in &mut self.flows {
            let Some(c) = self.path.counters(port, src) else {
                continue;
            };
            if c.packets <= seen.packets {
                continue;
            }
            let ago = Duration::from_nanos(mono.saturating_sub(c.last_ns));
            let f = Forwarded {
                packets: c.packets - seen.packets,
                bytes: c.bytes.saturating_sub(seen.bytes),
                last: now.checked_sub(ago).unwrap_or(now),
            };
            *seen = c;
            relay.forwarded(port, SocketAddr::V4(src), f);
        }
    }
}

/// An IPv4 address, also one mapped into IPv6 (a dual-stack socket's).
fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a.ip().to_canonical() {
        IpAddr::V4(ip) => Some(SocketAddrV4::new(ip, a.port())),
        IpAddr::V6(_) => None,
    }
}
