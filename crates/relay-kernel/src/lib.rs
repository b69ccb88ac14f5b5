//! The media relay's forwarding path in the kernel. An eBPF program at the ingress of every
//! interface (tcx, Linux 6.6 and later) forwards the flows the relay installs: the UDP
//! packets from a latched source to one of its ports, rewritten as the relay would send them
//! and sent out at once, without a trip through the relay's socket, thread and system
//! calls. Packets of no flow go to the relay as before. The program counts what it
//! forwarded per flow, for the relay to read back. IPv4 and IPv6, each flow within one
//! family. Needs root (or `CAP_BPF` and `CAP_NET_ADMIN`), and turns on forwarding on
//! loopback alone, whose routes the program looks up (the host routes nothing else because
//! of it).

mod host;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aya::maps::{HashMap, MapData};
use aya::programs::{tc::TcAttachOptions, LinkOrder, SchedClassifier, TcAttachType};
use aya::{Ebpf, Pod};

/// Why the kernel's path is not there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This binary was built without clang or libbpf's headers.
    #[error("built without the eBPF program (clang and libbpf-dev were missing)")]
    NotBuilt,
    /// Loading or attaching the program failed (no privilege, a kernel before 6.6).
    #[error("{0} (needs root or CAP_BPF and CAP_NET_ADMIN, and Linux 6.6 or later)")]
    Load(String),
    /// The table of flows refused one (full: 65536 flows), or its addresses are of two
    /// families.
    #[error("flow table: {0}")]
    Table(String),
}

/// A flow's key as the program reads it: network byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    saddr: [u8; 16],
    sport: u16,
    dport: u16,
}

/// A flow: where its packets go, and the counters.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Value {
    daddr: [u8; 16],
    sport: u16,
    dport: u16,
    pad: u32,
    packets: u64,
    bytes: u64,
    last_ns: u64,
    rtcp_packets: u64,
    rtcp_bytes: u64,
}

// SAFETY: plain `repr(C)` data without padding, as the program's `struct key` and `struct flow`.
unsafe impl Pod for Key {}
// SAFETY: as above.
unsafe impl Pod for Value {}

/// What the kernel forwarded of a flow since it was installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes of payload.
    pub bytes: u64,
    /// When the last came, in `CLOCK_MONOTONIC` nanoseconds ([`monotonic_ns`]).
    pub last_ns: u64,
    /// Of those, RTCP's packets and bytes (on the RTCP port, or on the RTP port with
    /// rtcp-mux).
    pub rtcp_packets: u64,
    /// (See `rtcp_packets`.)
    pub rtcp_bytes: u64,
}

/// The program, attached, and its table of flows; shared by the relay's threads (a flow
/// changes only when a stream latches or ends, not per packet).
pub struct KernelPath {
    inner: Mutex<Inner>,
}

struct Inner {
    flows: HashMap<MapData, Key, Value>,
    /// The addresses the relay takes packets at, and the bind address they come from.
    locals: HashMap<MapData, [u8; 16], u8>,
    bind: IpAddr,
    /// The interfaces the program is attached to, by index.
    attached: HashSet<u32>,
    /// When the host was last looked at ([`KernelPath::keep_up`]).
    checked: Instant,
    /// Holds the program and its links: dropped, they detach.
    bpf: Ebpf,
}

#[cfg(bpf_built)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/forward.o"));
#[cfg(not(bpf_built))]
static OBJECT: &[u8] = &[];

impl KernelPath {
    /// Loads the program and attaches it to every Ethernet interface, and to loopback (not
    /// to a tunnel's, without Ethernet headers: their packets go to the relay). It takes
    /// packets to `bind` only, or, bound to a wildcard, to the host's addresses. Gives the
    /// interfaces. [`KernelPath::keep_up`] follows what changes on the host.
    pub fn start(bind: IpAddr) -> Result<(KernelPath, Vec<String>), Error> {
        if OBJECT.is_empty() {
            return Err(Error::NotBuilt);
        }
        let load = |e: &dyn std::fmt::Display| Error::Load(e.to_string());
        let mut bpf = Ebpf::load(OBJECT).map_err(|e| load(&e))?;
        let prog: &mut SchedClassifier = bpf
            .program_mut("forward")
            .ok_or_else(|| load(&"no program"))?
            .try_into()
            .map_err(|e| load(&e))?;
        prog.load().map_err(|e| load(&e))?;
        host::lookups().map_err(|e| load(&e))?;
        let map = bpf
            .take_map("locals")
            .ok_or_else(|| load(&"no address table"))?;
        let locals = HashMap::try_from(map).map_err(|e| load(&e))?;
        let map = bpf
            .take_map("flows")
            .ok_or_else(|| load(&"no flow table"))?;
        let flows = HashMap::try_from(map).map_err(|e| load(&e))?;
        let mut inner = Inner {
            flows,
            locals,
            bind,
            attached: HashSet::new(),
            checked: Instant::now(),
            bpf,
        };
        inner.follow_addresses();
        let attached = inner.attach_new().map_err(|e| load(&e))?;
        if !attached.iter().any(|n| n == "lo") {
            return Err(load(&"cannot attach to lo"));
        }
        let inner = Mutex::new(inner);
        Ok((KernelPath { inner }, attached))
    }

    /// Once a second at most, follows the host: attaches to interfaces that came since
    /// (a VLAN, a bridge, one recreated), takes the addresses that came and leaves those
    /// that went (bound to a wildcard), and turns forwarding on loopback on again if
    /// something turned it off (`sysctl --system`, a container manager writing
    /// `ip_forward`: without it the program's route lookups fail, and every packet goes
    /// through the relay's threads). An error says the lookups cannot be had.
    pub fn keep_up(&self) -> Result<(), String> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.checked.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        inner.checked = Instant::now();
        inner.follow_addresses();
        for name in inner.attach_new().unwrap_or_default() {
            tracing::info!(interface = %name, "media relay: the kernel's path covers a new interface");
        }
        if host::looking_up() {
            return Ok(());
        }
        host::lookups()?;
        tracing::warn!("media relay: forwarding on loopback (net.ipv4/ipv6.conf.lo.forwarding) was turned off; turned on again for the kernel's path");
        Ok(())
    }

    /// Forwards packets from `src` to our `port` to `to`, from our port `from`.
    pub fn install(
        &self,
        port: u16,
        src: SocketAddr,
        from: u16,
        to: SocketAddr,
    ) -> Result<(), Error> {
        if src.ip().to_canonical().is_ipv4() != to.ip().to_canonical().is_ipv4() {
            return Err(Error::Table(format!("{src} and {to} are of two families")));
        }
        let value = Value {
            daddr: host::octets(to.ip()),
            sport: from.to_be(),
            dport: to.port().to_be(),
            pad: 0,
            packets: 0,
            bytes: 0,
            last_ns: 0,
            rtcp_packets: 0,
            rtcp_bytes: 0,
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .flows
            .insert(key(port, src), value, 0)
            .map_err(|e| Error::Table(e.to_string()))
    }

    /// Stops forwarding packets from `src` to our `port`.
    pub fn remove(&self, port: u16, src: SocketAddr) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Absent already: nothing to do.
        let _ = inner.flows.remove(&key(port, src));
    }

    /// What the kernel forwarded of the flow from `src` to our `port`.
    pub fn counters(&self, port: u16, src: SocketAddr) -> Option<Counters> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let v = inner.flows.get(&key(port, src), 0).ok()?;
        Some(Counters {
            packets: v.packets,
            bytes: v.bytes,
            last_ns: v.last_ns,
            rtcp_packets: v.rtcp_packets,
            rtcp_bytes: v.rtcp_bytes,
        })
    }
}

impl Inner {
    /// Attaches the program to the Ethernet interfaces (and loopback) it is not attached to
    /// yet; gives their names.
    fn attach_new(&mut self) -> Result<Vec<String>, String> {
        let prog: &mut SchedClassifier = self
            .bpf
            .program_mut("forward")
            .ok_or("no program")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        let mut names = Vec::new();
        for (index, name) in host::interfaces() {
            if self.attached.contains(&index) || !host::ethernet(&name) {
                continue;
            }
            let order = TcAttachOptions::TcxOrder(LinkOrder::default());
            match prog.attach_with_options(&name, TcAttachType::Ingress, order) {
                Ok(_) => {
                    self.attached.insert(index);
                    names.push(name);
                }
                Err(e) => {
                    tracing::warn!(interface = %name, error = %e, "media relay: the kernel's path does not cover this interface")
                }
            }
        }
        Ok(names)
    }

    /// Makes the table of the relay's addresses what the host has now.
    fn follow_addresses(&mut self) {
        let now: HashSet<[u8; 16]> = host::addresses(self.bind).into_iter().collect();
        let held: Vec<[u8; 16]> = self.locals.keys().flatten().collect();
        for gone in held.iter().filter(|a| !now.contains(*a)) {
            let _ = self.locals.remove(gone);
        }
        for new in now.iter().filter(|a| !held.contains(a)) {
            if let Err(e) = self.locals.insert(new, 1, 0) {
                tracing::warn!(error = %e, "media relay: the kernel's path does not take an address of the host");
            }
        }
    }
}

impl std::fmt::Debug for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelPath").finish_non_exhaustive()
    }
}

fn key(port: u16, src: SocketAddr) -> Key {
    Key {
        saddr: host::octets(src.ip()),
        sport: src.port().to_be(),
        dport: port.to_be(),
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of [`Counters::last_ns`] (and of
/// `std::time::Instant` on Linux).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
