//! The ports a relay hands out: pairs of an even RTP port and the RTCP port after it.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

/// Free port pairs, handed out oldest-freed first (a port just freed is not reused at
/// once: late packets of the last call must not reach the next one).
#[derive(Debug, Clone)]
pub struct PortPool {
    free: VecDeque<u16>,
}

impl PortPool {
    /// The pairs in `range` (30000–40000 by default): every even port but 0 whose next one
    /// is in the range too.
    pub fn new(range: RangeInclusive<u16>) -> PortPool {
        PortPool {
            free: pairs(&range).collect(),
        }
    }

    /// These RTP ports (each with the next one for RTCP), handed out in this order.
    pub fn from_ports(ports: Vec<u16>) -> PortPool {
        PortPool { free: ports.into() }
    }

    /// An RTP port (its RTCP port is the next one), or `None` when the pool is exhausted.
    pub fn take(&mut self) -> Option<u16> {
        self.free.pop_front()
    }

    /// Gives an RTP port (and its RTCP port) back.
    pub fn give(&mut self, port: u16) {
        self.free.push_back(port);
    }

    /// Pairs left.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

/// The RTP ports of the pairs in `range`: even, not 0, their RTCP port in the range too.
pub fn pairs(range: &RangeInclusive<u16>) -> impl Iterator<Item = u16> {
    let (lo, hi) = (u32::from(*range.start()).max(2), u32::from(*range.end()));
    let first = lo + lo % 2;
    (first..hi).step_by(2).filter_map(|p| u16::try_from(p).ok())
}
