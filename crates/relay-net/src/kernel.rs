//! A shard's flows in the kernel's forwarding path ([`relay_kernel`]): what its relay
//! installs and removes goes to the kernel's table, and what the kernel forwarded comes
//! back to the relay once a second (its counters, and its sides heard). The kernel takes
//! addresses as the relay has them (IPv4 mapped into IPv6 or not).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay::{Forwarded, Offload, Relay};
use relay_kernel::{Counters, KernelPath};

/// The flows a shard has in the kernel, with what was counted of each so far.
pub(crate) struct Offloaded {
    path: Arc<KernelPath>,
    flows: HashMap<(u16, SocketAddr), Counters>,
    /// The table refused a flow (full): said once.
    warned: bool,
    /// Forwarding on loopback could not be turned on again: said once.
    lookups_lost: bool,
}

impl Offloaded {
    pub(crate) fn new(path: Arc<KernelPath>) -> Offloaded {
        Offloaded {
            path,
            flows: HashMap::new(),
            warned: false,
            lookups_lost: false,
        }
    }

    /// Applies the relay's changes, in order.
    pub(crate) fn apply(&mut self, relay: &mut Relay) {
        while let Some(change) = relay.poll_offload() {
            match change {
                Offload::Install(f) => match self.path.install(f.port, f.src, f.from, f.to) {
                    Ok(()) => {
                        self.flows.insert((f.port, f.src), Counters::default());
                    }
                    Err(e) if !self.warned => {
                        self.warned = true;
                        tracing::warn!(error = %e, "media relay: a flow stays in userspace");
                    }
                    Err(_) => {}
                },
                Offload::Remove { port, src } => {
                    if let Some(seen) = self.flows.remove(&(port, src)) {
                        // Its last counts first.
                        if let Some(c) = self.path.counters(port, src) {
                            let f = since(seen, c, Instant::now(), relay_kernel::monotonic_ns());
                            relay.forwarded(port, src, f);
                        }
                        self.path.remove(port, src);
                    }
                }
            }
        }
    }

    /// Gives the relay what the kernel forwarded since the last time.
    pub(crate) fn sync(&mut self, relay: &mut Relay, now: Instant) {
        match self.path.keep_up() {
            Err(e) if !self.lookups_lost => {
                self.lookups_lost = true;
                tracing::warn!(error = %e, "media relay: the kernel's path cannot look routes up; packets go through the threads");
            }
            Err(_) => {}
            Ok(()) => self.lookups_lost = false,
        }
        let mono = relay_kernel::monotonic_ns();
        for (&(port, src), seen) in &mut self.flows {
            let Some(c) = self.path.counters(port, src) else {
                continue;
            };
            let f = since(*seen, c, now, mono);
            *seen = c;
            relay.forwarded(port, src, f);
        }
    }
}

/// What a flow's counters `c` add to those `seen` before, its last packet's time made an
/// instant (`now` is `mono` on the kernel's clock).
fn since(seen: Counters, c: Counters, now: Instant, mono: u64) -> Forwarded {
    let ago = Duration::from_nanos(mono.saturating_sub(c.last_ns));
    Forwarded {
        packets: c.packets.saturating_sub(seen.packets),
        bytes: c.bytes.saturating_sub(seen.bytes),
        rtcp_packets: c.rtcp_packets.saturating_sub(seen.rtcp_packets),
        rtcp_bytes: c.rtcp_bytes.saturating_sub(seen.rtcp_bytes),
        last: now.checked_sub(ago).unwrap_or(now),
    }
}
