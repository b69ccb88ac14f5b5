//! The media relay's forwarding path in the kernel. An eBPF program at the ingress of every
//! interface (tcx, Linux 6.6 and later) forwards the flows the relay installs: the UDP
//! packets from a latched source to one of its ports, rewritten as the relay would send them
//! and sent out at once, without a trip through the relay's socket, thread and system
//! calls. Packets of no flow go to the relay as before. The program counts what it
//! forwarded per flow, for the relay to read back. IPv4 and IPv6, each flow within one
//! family. Needs root (or `CAP_BPF` and `CAP_NET_ADMIN`), and turns on forwarding on
//! loopback alone, whose routes the program looks up (the host routes nothing else because
//! of it).

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

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
    /// Holds the program and its links: dropped, they detach.
    _bpf: Ebpf,
}

#[cfg(bpf_built)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/forward.o"));
#[cfg(not(bpf_built))]
static OBJECT: &[u8] = &[];

impl KernelPath {
    /// Loads the program and attaches it to every Ethernet interface there is now, and to
    /// loopback (an interface added later is not covered, nor one without Ethernet
    /// headers, a tunnel's: their packets go to the relay). It takes packets to `bind`
    /// only, or, bound to a wildcard, to the host's addresses now. Gives the
    /// interfaces.
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
        lookups().map_err(|e| load(&e))?;
        let mut attached = Vec::new();
        for name in interfaces().into_iter().filter(|n| ethernet(n)) {
            let order = TcAttachOptions::TcxOrder(LinkOrder::default());
            match prog.attach_with_options(&name, TcAttachType::Ingress, order) {
                Ok(_) => attached.push(name),
                Err(e) if name == "lo" => return Err(load(&format!("attach to lo: {e}"))),
                Err(e) => {
                    tracing::warn!(interface = %name, error = %e, "media relay: the kernel's path does not cover this interface")
                }
            }
        }
        let map = bpf
            .take_map("locals")
            .ok_or_else(|| load(&"no address table"))?;
        let mut locals: HashMap<MapData, [u8; 16], u8> =
            HashMap::try_from(map).map_err(|e| load(&e))?;
        for ip in addresses(bind) {
            locals.insert(ip, 1, 0).map_err(|e| load(&e))?;
        }
        let map = bpf
            .take_map("flows")
            .ok_or_else(|| load(&"no flow table"))?;
        let flows = HashMap::try_from(map).map_err(|e| load(&e))?;
        let inner = Mutex::new(Inner { flows, _bpf: bpf });
        Ok((KernelPath { inner }, attached))
    }

    /// Turns forwarding on loopback on again if something turned it off (`sysctl
    /// --system`, a container manager writing `ip_forward`): without it the program's
    /// route lookups fail, and every packet goes through the relay's threads. Says so,
    /// once, when it had to.
    pub fn keep_lookups(&self) -> Result<(), String> {
        let _one = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if looking_up() {
            return Ok(());
        }
        lookups()?;
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
            daddr: octets(to.ip()),
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

impl std::fmt::Debug for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelPath").finish_non_exhaustive()
    }
}

fn key(port: u16, src: SocketAddr) -> Key {
    Key {
        saddr: octets(src.ip()),
        sport: src.port().to_be(),
        dport: port.to_be(),
    }
}

/// The interfaces of this thread's network namespace.
fn interfaces() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex gives an array ended by a zero index, freed below.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return names;
        }
        let mut i = list;
        while (*i).if_index != 0 {
            let name = std::ffi::CStr::from_ptr((*i).if_name);
            names.push(name.to_string_lossy().into_owned());
            i = i.add(1);
        }
        libc::if_freenameindex(list);
    }
    names
}

const LO_FORWARDING: &str = "/proc/sys/net/ipv4/conf/lo/forwarding";
const LO_FORWARDING6: &str = "/proc/sys/net/ipv6/conf/lo/forwarding";

/// Turns forwarding on for loopback, whose routes the program looks up (IPv6's where the
/// host has IPv6).
fn lookups() -> Result<(), String> {
    if std::path::Path::new(LO_FORWARDING6).exists() {
        std::fs::write(LO_FORWARDING6, "1")
            .map_err(|e| format!("net.ipv6.conf.lo.forwarding: {e}"))?;
    }
    std::fs::write(LO_FORWARDING, "1").map_err(|e| format!("net.ipv4.conf.lo.forwarding: {e}"))
}

/// True when forwarding is on for loopback, in both families the host has.
fn looking_up() -> bool {
    let on = |p: &str| std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "1");
    on(LO_FORWARDING) && (on(LO_FORWARDING6) || !std::path::Path::new(LO_FORWARDING6).exists())
}

/// An address as the program's tables hold it: IPv6, IPv4 mapped into it.
fn octets(ip: IpAddr) -> [u8; 16] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The addresses packets to the relay come to: `bind`, or, for a wildcard, the host's (of
/// IPv4 for 0.0.0.0, of both families for `::`).
fn addresses(bind: IpAddr) -> Vec<[u8; 16]> {
    if !bind.is_unspecified() {
        return vec![octets(bind)];
    }
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| bind.is_ipv6() || ip.is_ipv4())
        .map(octets)
        .collect()
}

/// True for an interface whose packets carry an Ethernet header, as the program reads them:
/// Ethernet's, and loopback's (not a tunnel's, WireGuard's, whose packets start with IP).
fn ethernet(name: &str) -> bool {
    const ARPHRD_ETHER: u16 = 1;
    const ARPHRD_LOOPBACK: u16 = 772;
    // SAFETY: an ifreq zeroed, then named, for SIOCGIFHWADDR on a socket of our own.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        if name.len() >= req.ifr_name.len() {
            return false;
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return false;
        }
        let ok = libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) == 0;
        libc::close(fd);
        ok && matches!(
            req.ifr_ifru.ifru_hwaddr.sa_family,
            ARPHRD_ETHER | ARPHRD_LOOPBACK
        )
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
