//! Flows the kernel may forward by itself once both sides of a stream latched (as
//! rtpengine's kernel module does): the relay says which to install and which to remove,
//! and takes back what the kernel counted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::session::{Endpoint, Relay, Side, Stream};

/// Packets from `src` to our port `port` go to `to`, out of our port `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Our port the packets arrive at.
    pub port: u16,
    /// Their latched source: packets from anywhere else still come to the relay.
    pub src: SocketAddr,
    /// Our port they leave from.
    pub from: u16,
    /// The other side's latched address.
    pub to: SocketAddr,
}

/// A change to the flows the kernel forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offload {
    /// Forward this flow in the kernel from now on.
    Install(Flow),
    /// Stop forwarding packets from `src` to our port `port`: they come to the relay again.
    Remove {
        /// Our port.
        port: u16,
        /// The source the flow was installed for.
        src: SocketAddr,
    },
}

/// What the kernel forwarded of one flow since it was last asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    /// Packets.
    pub packets: u64,
    /// Bytes of payload.
    pub bytes: u64,
    /// Of those, RTCP's packets and bytes.
    pub rtcp_packets: u64,
    /// (See `rtcp_packets`.)
    pub rtcp_bytes: u64,
    /// When the last one came.
    pub last: Instant,
}

impl Endpoint {
    /// The flow this side sends on channel `c` once both sides latched, to addresses of
    /// one family (the kernel's path does not bridge IPv4 and IPv6) and not IPv6
    /// link-local ones (whose interface it would not know); `None` before, or when
    /// installed already.
    pub(crate) fn flow_to(&self, to: &Endpoint, c: usize) -> Option<Flow> {
        let (src, dest) = (self.latched[c]?, to.latched[c]?);
        let family = |a: SocketAddr| match a.ip().to_canonical() {
            std::net::IpAddr::V4(_) => Some(4),
            std::net::IpAddr::V6(v6) if v6.is_unicast_link_local() => None,
            std::net::IpAddr::V6(_) => Some(6),
        };
        let plain = self.leg.is_none() && to.leg.is_none();
        let one_family = family(src).is_some() && family(src) == family(dest);
        (self.offloaded[c].is_none() && plain && one_family).then_some(Flow {
            port: self.port + c as u16,
            src,
            from: to.port + c as u16,
            to: dest,
        })
    }

    /// Removes the flows this side sends. The RTP sequence starts again after them: the
    /// kernel's packets are not in it (no gap counted as lost).
    fn unload(&mut self, q: &mut VecDeque<Offload>) {
        if self.offloaded[0].is_some() {
            self.stats.last_seq = None;
        }
        for (c, installed) in self.offloaded.iter_mut().enumerate() {
            if let Some(src) = installed.take() {
                q.push_back(Offload::Remove {
                    port: self.port + c as u16,
                    src,
                });
            }
        }
    }
}

impl Stream {
    /// After a packet from `side` on channel `c` was relayed, whose side was latched to
    /// `before` on that channel: when it latched anew, the stream's flows are stale; when
    /// both sides are latched, the sender's flow goes to the kernel.
    pub(crate) fn offload(
        &mut self,
        side: Side,
        before: Option<SocketAddr>,
        c: usize,
        q: &mut VecDeque<Offload>,
    ) {
        let now = match side {
            Side::Offerer => self.offerer.latched[c],
            Side::Answerer => self.answerer.latched[c],
        };
        if before.is_some() && before != now {
            self.unload(q);
        }
        let (from, to) = match side {
            Side::Offerer => (&mut self.offerer, &self.answerer),
            Side::Answerer => (&mut self.answerer, &self.offerer),
        };
        if let Some(flow) = from.flow_to(to, c) {
            from.offloaded[c] = Some(flow.src);
            if c == 0 {
                from.stats.last_seq = None;
            }
            q.push_back(Offload::Install(flow));
        }
    }

    /// Removes the stream's flows, both ways: what either side latched changes.
    pub(crate) fn unload(&mut self, q: &mut VecDeque<Offload>) {
        self.offerer.unload(q);
        self.answerer.unload(q);
    }
}

impl Relay {
    /// A relay whose latched flows the kernel forwards: [`Relay::poll_offload`] says which.
    pub fn with_offload(mut self) -> Relay {
        self.offload = true;
        self
    }

    /// The next change to the flows the kernel forwards, in order (a removal comes before
    /// its port is handed out again).
    pub fn poll_offload(&mut self) -> Option<Offload> {
        self.offloads.pop_front()
    }

    /// What the kernel forwarded of the flow from `src` to our `port`: counted as the
    /// relay's own packets, its stream's too while it lasts. While the flow is installed,
    /// its side is heard (no one else may latch its stream, and the session does not time
    /// out); the last counts of a flow read as it is removed only count.
    pub fn forwarded(&mut self, port: u16, src: SocketAddr, f: Forwarded) {
        if f.packets == 0 {
            return;
        }
        self.totals.packets += f.packets;
        self.totals.kernel_packets += f.packets;
        self.totals.bytes += f.bytes;
        let Some(&(key, i, side)) = self.by_port.get(&(port & !1)) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let Some(stream) = session.streams.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let from = match side {
            Side::Offerer => &mut stream.offerer,
            Side::Answerer => &mut stream.answerer,
        };
        let c = usize::from(port % 2 == 1);
        if from.offloaded[c] == Some(src) {
            from.heard[c] = from.heard[c].max(Some(f.last));
            session.last = session.last.max(f.last);
        }
        let stats = &mut from.stats;
        stats.packets += f.packets;
        stats.bytes += f.bytes;
        stats.rtcp_packets += f.rtcp_packets;
        stats.rtcp_bytes += f.rtcp_bytes;
        stats.last = stats.last.max(Some(f.last));
    }
}
