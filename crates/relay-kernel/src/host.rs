//! What the kernel's path reads of the host: its interfaces, its addresses, and forwarding
//! on loopback (which the program's route lookups need).

use std::net::IpAddr;

/// The interfaces of this thread's network namespace: index and name.
pub(crate) fn interfaces() -> Vec<(u32, String)> {
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
            names.push(((*i).if_index, name.to_string_lossy().into_owned()));
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
pub(crate) fn lookups() -> Result<(), String> {
    if std::path::Path::new(LO_FORWARDING6).exists() {
        std::fs::write(LO_FORWARDING6, "1")
            .map_err(|e| format!("net.ipv6.conf.lo.forwarding: {e}"))?;
    }
    std::fs::write(LO_FORWARDING, "1").map_err(|e| format!("net.ipv4.conf.lo.forwarding: {e}"))
}

/// True when forwarding is on for loopback, in both families the host has.
pub(crate) fn looking_up() -> bool {
    let on = |p: &str| std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "1");
    on(LO_FORWARDING) && (on(LO_FORWARDING6) || !std::path::Path::new(LO_FORWARDING6).exists())
}

/// An address as the program's tables hold it: IPv6, IPv4 mapped into it.
pub(crate) fn octets(ip: IpAddr) -> [u8; 16] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The addresses packets to the relay come to: `bind`, or, for a wildcard, the host's (of
/// IPv4 for 0.0.0.0, of both families for `::`).
pub(crate) fn addresses(bind: IpAddr) -> Vec<[u8; 16]> {
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
pub(crate) fn ethernet(name: &str) -> bool {
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
