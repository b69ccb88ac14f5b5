//! The fast backend, io_uring: every socket has one multishot receive armed; packets land in a ring of buffers given to the kernel once, and each goes
//! out again with a send from the buffer it came in. One `io_uring_enter` submits a batch
//! of sends and waits for the next batch of packets: no system call, allocation or lock
//! per packet.
//!
//! Sockets sit in the ring's table of files where there is room (two slots per port of the
//! shard, for an old socket that closes beside a new one), so that no entry takes and drops
//! a reference to its file.
//!
//! Control messages wake the loop through a datagram socket pair; the one-second tick is
//! the wait's timeout.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use tokio::sync::mpsc;

use crate::shard::{self, Control, Shard, Sockets};

/// Receive buffers per shard (a power of two): the packets one batch can hold.
const BUFFERS: u16 = 1024;
/// A buffer: the kernel's header (16 bytes), the source address (28), then the packet
/// (up to [`shard::MAX_PACKET`]).
const BUF_SIZE: usize = shard::MAX_PACKET + 64;
/// Our one buffer group.
const GROUP: u16 = 0;
/// A wait returns with this many completions, or after [`BATCH_WAIT_US`] with one at least.
const BATCH: usize = 64;
/// How long a packet may wait for others to share its system calls (µs).
const BATCH_WAIT_US: u32 = 500;

/// What a completion is for, in the top byte of its user data.
const RECV: u64 = 1 << 56;
const SEND: u64 = 2 << 56;
const WAKE: u64 = 3 << 56;
const CANCEL: u64 = 4 << 56;
const KIND: u64 = 0xff << 56;

/// A receive's user data: its port and the generation of the socket's receive.
fn recv_tag(port: u16, gen: u32) -> u64 {
    RECV | u64::from(gen) << 16 | u64::from(port)
}

/// True when this kernel runs what the loop needs and io_uring is allowed (containers
/// often forbid it): a packet goes from one loopback socket to another as the loop moves
/// them (a multishot receive into the buffer ring, a send with its address: Linux 6.1),
/// within a second.
pub(crate) fn available() -> bool {
    let probe = || -> io::Result<bool> {
        let mut u = UringSockets::new()?;
        let (a, b) = (
            shard::bind([127, 0, 0, 1].into(), 0)?,
            shard::bind([127, 0, 0, 1].into(), 0)?,
        );
        let pb = b.local_addr()?.port();
        u.gen = 1;
        let b = Socket {
            sock: b,
            slot: None,
        };
        u.push(&u.recv(&b, recv_tag(pb, 1)))?;
        u.open.insert(pb, (b, 1));
        static PING: [u8; 4] = [0x80, 0, 0, 0];
        let len = write_addr(&mut u.sends[0], SocketAddr::from(([127, 0, 0, 1], pb)));
        let send = opcode::Send::new(types::Fd(a.as_raw_fd()), PING.as_ptr(), 4)
            .dest_addr(std::ptr::from_ref(&u.sends[0]).cast())
            .dest_addr_len(len)
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(SEND);
        u.push(&send)?;
        let (mut went, mut came) = (false, false);
        let until = Instant::now() + Duration::from_secs(1);
        while !(went && came) && Instant::now() < until {
            let ts = types::Timespec::from(Duration::from_millis(100));
            let _ = u
                .ring
                .submitter()
                .submit_with_args(1, &types::SubmitArgs::new().timespec(&ts));
            for c in u.ring.completion() {
                went |= c.user_data() == SEND && c.result() == 4;
                came |=
                    c.user_data() == recv_tag(pb, 1) && cqueue::buffer_select(c.flags()).is_some();
            }
        }
        // Dropping `u` ends the receive (see Drop), before `a` closes.
        Ok(went && came)
    };
    // On a thread of its own: the kernel ends the ring's requests with work queued to the
    // thread that made them, which interrupts that thread's next blocking call (EINTR on a
    // socket with a timeout) — the caller's must not be.
    std::thread::spawn(move || probe().unwrap_or(false))
        .join()
        .unwrap_or(false)
}

/// The kernel's ring of free receive buffers, and the buffers: memory the kernel writes,
/// only ever reached through raw pointers here.
struct Buffers {
    /// The ring's entries: page-aligned memory the kernel reads.
    entries: *mut types::BufRingEntry,
    /// Buffers given back since the last commit count from here.
    tail: u16,
    data: *mut u8,
}

/// The layouts of the ring's entries and of the buffers.
fn layouts() -> (std::alloc::Layout, std::alloc::Layout) {
    let entries = usize::from(BUFFERS) * std::mem::size_of::<types::BufRingEntry>();
    let data = usize::from(BUFFERS) * BUF_SIZE;
    match (
        std::alloc::Layout::from_size_align(entries, 4096),
        std::alloc::Layout::from_size_align(data, 64),
    ) {
        (Ok(e), Ok(d)) => (e, d),
        _ => unreachable!("constant, valid layouts"),
    }
}

impl Buffers {
    fn new() -> io::Result<Buffers> {
        let (entries, data) = layouts();
        // SAFETY: neither layout's size is zero.
        let (entries, data) = unsafe {
            (
                std::alloc::alloc_zeroed(entries),
                std::alloc::alloc_zeroed(data),
            )
        };
        let mut b = Buffers {
            entries: entries.cast(),
            tail: 0,
            data,
        };
        if entries.is_null() || data.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        for bid in 0..BUFFERS {
            b.give_back(bid);
        }
        b.commit();
        Ok(b)
    }

    /// Puts buffer `bid` back in the ring (seen by the kernel at the next commit).
    fn give_back(&mut self, bid: u16) {
        let i = usize::from(self.tail & (BUFFERS - 1));
        // SAFETY: i < BUFFERS, the number of entries allocated.
        let entry = unsafe { &mut *self.entries.add(i) };
        entry.set_addr(self.data as u64 + u64::from(bid) * BUF_SIZE as u64);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the buffers given back to the kernel.
    fn commit(&self) {
        // SAFETY: the tail is a u16 in the first entry, which the kernel reads; it is
        // published with release ordering, after the entries it covers.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries).cast_mut();
            std::sync::atomic::AtomicU16::from_ptr(tail)
                .store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    /// Buffer `bid` (not in the ring: one the kernel filled, whose packet was read) holding
    /// `data` instead, for a send from it; `None` when it does not fit.
    fn put<'a>(&mut self, bid: u16, data: &[u8]) -> Option<&'a [u8]> {
        if data.len() > BUF_SIZE {
            return None;
        }
        let at = usize::from(bid % BUFFERS) * BUF_SIZE;
        // SAFETY: within the buffers' allocation, which outlives every packet in it; the
        // buffer is ours until given back, and `data` is not in it (a copy the relay made).
        unsafe {
            let dst = self.data.add(at);
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
            Some(std::slice::from_raw_parts(dst, data.len()))
        }
    }

    /// The first `len` bytes of buffer `bid`, which the kernel filled and does not touch
    /// until it is given back.
    fn get<'a>(&self, bid: u16, len: usize) -> &'a [u8] {
        let at = usize::from(bid % BUFFERS) * BUF_SIZE;
        // SAFETY: within the buffers' allocation, which outlives every packet in it.
        unsafe { std::slice::from_raw_parts(self.data.add(at), len.min(BUF_SIZE)) }
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        let (entries, data) = layouts();
        // SAFETY: allocated in `new` with these layouts (a null one is skipped).
        unsafe {
            if !self.entries.is_null() {
                std::alloc::dealloc(self.entries.cast(), entries);
            }
            if !self.data.is_null() {
                std::alloc::dealloc(self.data, data);
            }
        }
    }
}

/// How entries name a socket: its slot in the ring's table of files, or its descriptor.
#[derive(Clone, Copy)]
enum Target {
    Slot(u32),
    Fd(RawFd),
}

/// A socket of a port, and its slot in the ring's table of files (if it has one).
struct Socket {
    sock: UdpSocket,
    slot: Option<u32>,
}

impl Socket {
    fn target(&self) -> Target {
        self.slot
            .map_or(Target::Fd(self.sock.as_raw_fd()), Target::Slot)
    }
}

/// The ring, the buffers and the sockets of a shard's ports.
pub(crate) struct UringSockets {
    // Dropped after every receive ended (see Drop), the ring first, then the buffers.
    ring: IoUring,
    bufs: Buffers,
    /// The receives' header: room for an IPv6 source address, no control data.
    recv_hdr: Box<libc::msghdr>,
    /// The destination of each buffer's send, at the buffer's index.
    sends: Box<[libc::sockaddr_in6]>,
    /// The sockets of the ports in use, with their receive's generation (looked up per
    /// packet: hashed fast, the ports are ours).
    open: HashMap<u16, (Socket, u32), ahash::RandomState>,
    /// Sockets whose receive is being cancelled, by the receive's user data: closed when
    /// it ends (until then the kernel holds them), or taken back by their port.
    closing: HashMap<u64, Socket>,
    /// Sockets to close once the entries queued so far are submitted: they name its fd,
    /// whose number a socket opened meanwhile could take.
    dead: Vec<Socket>,
    /// Free slots of the ring's table of files.
    slots: Vec<u32>,
    /// Receives of open sockets that ended for want of buffers (or could not be queued):
    /// armed again once buffers are back.
    starved: Vec<u64>,
    gen: u32,
    /// Where the wake-up datagrams land.
    wake_buf: Box<[u8; 64]>,
}

impl UringSockets {
    /// A ring, made on the thread that will use it.
    pub(crate) fn new() -> io::Result<UringSockets> {
        // One thread submits, and runs the completions' work when it waits (Linux 6.1);
        // every queued entry is submitted even if one before it fails.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_submit_all()
            .setup_cqsize(8 * u32::from(BUFFERS))
            .build(u32::from(BUFFERS))?;
        let bufs = Buffers::new()?;
        // SAFETY: the entries live as long as the ring (dropped after it).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.entries as u64,
                BUFFERS,
                GROUP,
                0,
            )?;
        }
        // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths), and a valid
        // sockaddr_in6.
        let zeroed = || unsafe { std::mem::zeroed::<libc::msghdr>() };
        let mut recv_hdr = Box::new(zeroed());
        recv_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
        // SAFETY: as above.
        let sends = (0..BUFFERS)
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        Ok(UringSockets {
            ring,
            bufs,
            recv_hdr,
            sends,
            open: HashMap::default(),
            closing: HashMap::new(),
            dead: Vec::new(),
            slots: Vec::new(),
            starved: Vec::new(),
            gen: 0,
            wake_buf: Box::new([0; 64]),
        })
    }

    /// Gives the ring a table of `n` files for sockets (none if the kernel refuses).
    pub(crate) fn with_slots(mut self, n: u32) -> Self {
        match self.ring.submitter().register_files_sparse(n) {
            Ok(()) => self.slots = (0..n).rev().collect(),
            Err(e) => tracing::debug!(error = %e, "media relay: no table of files in the ring"),
        }
        self
    }

    /// `sock` in a free slot of the table of files, if one is left.
    fn socket(&mut self, sock: UdpSocket) -> Socket {
        let slot = self.slots.pop().filter(|&slot| {
            let placed = self
                .ring
                .submitter()
                .register_files_update(slot, &[sock.as_raw_fd()])
                .is_ok();
            if !placed {
                self.slots.push(slot);
            }
            placed
        });
        Socket { sock, slot }
    }

    /// Closes the sockets of `dead` (nothing queued names them any more) and frees their
    /// slots; one whose slot cannot be emptied yet (the ring holds its socket open) is
    /// tried again next time.
    fn bury(&mut self) {
        let mut dead = std::mem::take(&mut self.dead);
        dead.retain(|s| {
            let Some(slot) = s.slot else {
                return false;
            };
            let emptied = self
                .ring
                .submitter()
                .register_files_update(slot, &[-1])
                .is_ok();
            if emptied {
                self.slots.push(slot);
            }
            !emptied
        });
        self.dead = dead;
    }

    /// A multishot receive on `sock`.
    fn recv(&self, sock: &Socket, tag: u64) -> squeue::Entry {
        let hdr = &*self.recv_hdr;
        match sock.target() {
            Target::Slot(i) => opcode::RecvMsgMulti::new(types::Fixed(i), hdr, GROUP).build(),
            Target::Fd(fd) => opcode::RecvMsgMulti::new(types::Fd(fd), hdr, GROUP).build(),
        }
        .user_data(tag)
    }

    /// Queues `entry`, submitting what is queued first if the queue is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry points at memory that outlives it: the receive header,
            // the sends (one per buffer, reused only once its send completed) and the
            // buffers are ours until the ring is dropped.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.bufs.commit();
            self.ring.submit()?;
        }
    }

    /// Sends buffer `bid`'s `packet` from `port`'s socket to `to`; the buffer is given back
    /// when the send completes. False when there is no such socket.
    fn send(&mut self, bid: u16, packet: &[u8], port: u16, to: SocketAddr) -> bool {
        let Some((sock, _)) = self.open.get(&port) else {
            return false;
        };
        let target = sock.target();
        let addr = &mut self.sends[usize::from(bid)];
        let len = write_addr(addr, to);
        let (data, size) = (packet.as_ptr(), packet.len() as u32);
        let send = match target {
            Target::Slot(i) => opcode::Send::new(types::Fixed(i), data, size),
            Target::Fd(fd) => opcode::Send::new(types::Fd(fd), data, size),
        };
        // A full send buffer drops the packet, as the network would (a send that waited
        // would hold its buffer, and enough of them every receive of the shard).
        let entry = send
            .dest_addr(std::ptr::from_ref(addr).cast())
            .dest_addr_len(len)
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(SEND | u64::from(bid));
        self.push(&entry).is_ok()
    }

    /// A receive ended (cancelled, out of buffers, an error): its socket closes if it was
    /// closing, and gets a new receive if it is still in use (once buffers are back, if
    /// it had none).
    fn recv_ended(&mut self, tag: u64, result: i32) {
        let port = tag as u16;
        if let Some(sock) = self.closing.remove(&tag) {
            return self.dead.push(sock);
        }
        if self
            .open
            .get(&port)
            .is_some_and(|(_, g)| u64::from(*g) == tag >> 16 & 0xffff_ffff)
        {
            match -result {
                libc::ECANCELED => {}
                libc::ENOBUFS => self.starved.push(tag),
                _ => {
                    if result < 0 {
                        tracing::debug!(port, error = %io::Error::from_raw_os_error(-result), "media relay: receive ended");
                    }
                    self.rearm(port, tag);
                }
            }
        }
    }

    /// Arms `port`'s socket again; left for the next batch if it cannot be queued.
    fn rearm(&mut self, port: u16, tag: u64) {
        let queued = match self.open.get(&port) {
            Some((sock, _)) => {
                let entry = self.recv(sock, tag);
                self.push(&entry).is_ok()
            }
            None => true,
        };
        if !queued {
            self.starved.push(tag);
        }
    }

    /// Arms again the receives that ran out of buffers, now that some are back.
    fn feed_starved(&mut self) {
        for tag in std::mem::take(&mut self.starved) {
            self.rearm(tag as u16, tag);
        }
    }
}

impl Drop for UringSockets {
    /// Ends every receive before the buffers they write into are freed (the ring's own
    /// teardown cancels them too, but later, on a kernel thread). Buffers a receive may
    /// still hold after a second are left allocated.
    fn drop(&mut self) {
        let mut armed = (self.open.len() + self.closing.len()).saturating_sub(self.starved.len());
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(CANCEL);
        let until = Instant::now() + Duration::from_secs(1);
        if self.push(&cancel).is_ok() {
            while armed > 0 && Instant::now() < until {
                let ts = types::Timespec::from(Duration::from_millis(100));
                let args = types::SubmitArgs::new().timespec(&ts);
                let _ = self.ring.submitter().submit_with_args(1, &args);
                for c in self.ring.completion() {
                    if c.user_data() & KIND == RECV && !cqueue::more(c.flags()) {
                        armed = armed.saturating_sub(1);
                    }
                }
            }
        }
        if armed > 0 {
            // The kernel may still pick and fill a buffer: both stay allocated.
            self.bufs.data = std::ptr::null_mut();
            self.bufs.entries = std::ptr::null_mut();
        }
    }
}

impl Sockets for UringSockets {
    fn has(&self, port: u16) -> bool {
        self.open.contains_key(&port)
    }

    fn open(&mut self, bind: IpAddr, port: u16) -> io::Result<()> {
        let closing = self.closing.keys().copied().find(|&t| t as u16 == port);
        let sock = match closing.and_then(|t| self.closing.remove(&t)) {
            // Its old receive may still deliver a packet or two: they are the port's.
            Some(sock) => sock,
            None => {
                let sock = shard::bind(bind, port)?;
                self.socket(sock)
            }
        };
        self.gen = self.gen.wrapping_add(1);
        let tag = recv_tag(port, self.gen);
        self.open.insert(port, (sock, self.gen));
        self.rearm(port, tag);
        Ok(())
    }

    fn send_now(&mut self, port: u16, data: &[u8], to: SocketAddr) {
        if let Some((sock, _)) = self.open.get(&port) {
            // Non-blocking: a full send buffer drops it, as the network would.
            let _ = sock.sock.send_to(data, to);
        }
    }

    fn retain(&mut self, keep: impl Fn(u16) -> bool) {
        let unused: Vec<u16> = self.open.keys().copied().filter(|&p| !keep(p)).collect();
        for port in unused {
            if let Some((sock, gen)) = self.open.remove(&port) {
                let tag = recv_tag(port, gen);
                // A socket without a receive closes now; another once its receive ends
                // (or, if the cancel cannot be queued, when its port is bound again).
                if let Some(i) = self.starved.iter().position(|&t| t == tag) {
                    self.starved.swap_remove(i);
                    self.dead.push(sock);
                    continue;
                }
                let cancel = opcode::AsyncCancel::new(tag).build().user_data(CANCEL);
                let _ = self.push(&cancel);
                self.closing.insert(tag, sock);
            }
        }
    }
}

/// Writes `to` as a C socket address; gives its length.
fn write_addr(out: &mut libc::sockaddr_in6, to: SocketAddr) -> u32 {
    match to {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in fits in a sockaddr_in6, and both are plain data.
            unsafe { std::ptr::write(std::ptr::from_mut(out).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>() as u32
        }
        SocketAddr::V6(v6) => {
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = v6.port().to_be();
            out.sin6_flowinfo = v6.flowinfo();
            out.sin6_addr.s6_addr = v6.ip().octets();
            out.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as u32
        }
    }
}

/// Reads a C socket address the kernel wrote.
fn read_addr(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(name.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::from((ip, port)))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            let flow = u32::from_ne_bytes(name.get(4..8)?.try_into().ok()?);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip.into(),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

/// Runs a shard on `u` until its channel closes; `wake` is told of each control message.
pub(crate) fn run(
    u: UringSockets,
    bind: IpAddr,
    ports: Vec<u16>,
    limits: shard::Limits,
    mut rx: mpsc::UnboundedReceiver<Control>,
    wake: UnixDatagram,
) {
    let mut shard = Shard::new(bind, ports, limits, u);
    let mut wake_armed = false;
    let mut woken = false;
    let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(8 * usize::from(BUFFERS));
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    let mut next_legs = Instant::now() + shard::LEG_TICK;
    let mut troubled = false;
    loop {
        let legs = shard.has_legs();
        let u = &mut shard.sockets;
        if !wake_armed {
            let entry = opcode::Recv::new(types::Fd(wake.as_raw_fd()), u.wake_buf.as_mut_ptr(), 64)
                .build()
                .user_data(WAKE);
            wake_armed = u.push(&entry).is_ok();
        }
        u.bufs.commit();
        u.feed_starved();
        // WebRTC legs' timers, when there are legs.
        let next = match legs {
            true => next_tick.min(next_legs),
            false => next_tick,
        };
        let wait = next.saturating_duration_since(Instant::now());
        let ts = types::Timespec::from(wait);
        // A batch is what came while the last one was relayed, or, when few came, what
        // comes within BATCH_WAIT_US (Linux 6.12): at 20 000 packets/s, packets that each
        // woke the thread cost twice the CPU. A packet waits 0.5 ms at most.
        let (want, min_wait) = match u.ring.params().is_feature_min_timeout() {
            true => (BATCH, BATCH_WAIT_US),
            false => (1, 0),
        };
        let args = types::SubmitArgs::new()
            .min_wait_usec(min_wait)
            .timespec(&ts);
        match u.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => {
                // Passing trouble (memory, a dropped completion): said once a second, and
                // the loop goes on, a little later.
                if !troubled {
                    tracing::warn!(error = %e, "media relay: io_uring wait failed");
                    troubled = true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Sockets closed before may go once nothing queued names their fd.
        if u.ring.submission().is_empty() {
            u.bury();
        }
        done.extend(
            u.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        let now = Instant::now();
        for &(tag, result, flags) in &done {
            match tag & KIND {
                RECV => {
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        packet(&mut shard, now, tag as u16, bid, result);
                    }
                    if !cqueue::more(flags) {
                        shard.sockets.recv_ended(tag, result);
                    }
                }
                SEND => shard.sockets.bufs.give_back(tag as u16),
                WAKE => {
                    wake_armed = false;
                    woken = true;
                }
                _ => {}
            }
        }
        done.clear();
        if woken {
            woken = false;
            // Ports closed in this batch are freed first (an offer may take them again):
            // what is queued, which may name their fds, goes before.
            let u = &mut shard.sockets;
            if !u.dead.is_empty() {
                u.bufs.commit();
                if u.ring.submit().is_ok() && u.ring.submission().is_empty() {
                    u.bury();
                }
            }
            // The wake-ups, then the messages (one sent after this gets a wake-up of its
            // own).
            let mut drain = [0u8; 64];
            while wake.recv(&mut drain).is_ok() {}
            if !control(&mut shard, &mut rx) {
                return;
            }
        }
        if now >= next_legs {
            if shard.has_legs() {
                shard.timers(now);
            }
            next_legs = now + shard::LEG_TICK;
        }
        if now >= next_tick {
            // Also how the shard learns that the relay is gone (no wake-up says so).
            if !control(&mut shard, &mut rx) {
                return;
            }
            shard.tick();
            next_tick = now + Duration::from_secs(1);
            troubled = false;
        }
    }
}

/// Does what the channel holds; false when it is closed.
fn control(shard: &mut Shard<UringSockets>, rx: &mut mpsc::UnboundedReceiver<Control>) -> bool {
    loop {
        match rx.try_recv() {
            Ok(msg) => shard.control(msg),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
}

/// A packet in buffer `bid` (`len` bytes with the kernel's header) that reached `port`:
/// relayed, or its buffer given back.
fn packet(shard: &mut Shard<UringSockets>, now: Instant, port: u16, bid: u16, len: i32) {
    let u = &shard.sockets;
    let buf = u.bufs.get(bid, usize::try_from(len).unwrap_or(0));
    let parsed = types::RecvMsgOut::parse(buf, &u.recv_hdr)
        .ok()
        .and_then(|m| {
            let src = read_addr(m.name_data())?;
            let payload = m.payload_data();
            let at = payload.as_ptr() as usize - buf.as_ptr() as usize;
            (!m.is_payload_truncated() && !m.is_name_data_truncated())
                .then(|| (src, &buf[at..at + payload.len()]))
        });
    let Some((src, payload)) = parsed.filter(|(_, p)| p.len() <= shard::MAX_PACKET) else {
        return shard.sockets.bufs.give_back(bid);
    };
    let Some((from, to)) = shard.forward(now, port, src, payload) else {
        return shard.sockets.bufs.give_back(bid);
    };
    // A WebRTC leg's rewrite goes out of the same buffer, through the ring too.
    let data = match shard.relay.rewritten() {
        Some(data) => shard.sockets.bufs.put(bid, data),
        None => Some(payload),
    };
    match data {
        Some(data) if shard.sockets.send(bid, data, from, to) => {}
        _ => shard.sockets.bufs.give_back(bid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_take_the_free_slots_then_go_by_descriptor_and_give_them_back() {
        let Ok(u) = UringSockets::new() else {
            return; // io_uring not allowed here: nothing to check.
        };
        let mut u = u.with_slots(1);
        if u.slots.is_empty() {
            return; // This kernel has no sparse table of files.
        }
        let lo: IpAddr = [127, 0, 0, 1].into();
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                shard::bind(lo, 0)
                    .and_then(|s| s.local_addr())
                    .map(|a| a.port())
            })
            .collect::<io::Result<_>>()
            .expect("free ports");
        for &p in &ports {
            u.open(lo, p).expect("open");
        }
        let slotted = |u: &UringSockets| {
            ports
                .iter()
                .map(|p| u.open.get(p).map(|(s, _)| s.slot.is_some()))
                .collect::<Vec<_>>()
        };
        assert_eq!(slotted(&u), [Some(true), Some(false)]);
        assert!(u.slots.is_empty());
        u.retain(|_| false);
        // The receives end once submitted; their sockets go, and the slot is free again.
        let until = Instant::now() + Duration::from_secs(2);
        while u.slots.is_empty() && Instant::now() < until {
            let ts = types::Timespec::from(Duration::from_millis(50));
            let _ = u
                .ring
                .submitter()
                .submit_with_args(1, &types::SubmitArgs::new().timespec(&ts));
            let done: Vec<_> = u
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result()))
                .collect();
            for (tag, result) in done {
                if tag & KIND == RECV {
                    u.recv_ended(tag, result);
                }
            }
            u.bury();
        }
        assert_eq!(u.slots, [0]);
        assert!(u.open.is_empty() && u.closing.is_empty());
    }

    #[test]
    fn socket_addresses_go_to_c_and_back() {
        for a in [
            "192.0.2.1:4000",
            "[2001:db8::1]:5004",
            "[::ffff:192.0.2.9]:7",
        ] {
            let a: SocketAddr = a.parse().expect("addr");
            // SAFETY: all-zero is a valid sockaddr_in6.
            let mut c: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            let len = write_addr(&mut c, a) as usize;
            // SAFETY: c is plain data of at least len bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(std::ptr::addr_of!(c).cast::<u8>(), len) };
            assert_eq!(read_addr(bytes), Some(a));
        }
        assert_eq!(read_addr(&[0; 3]), None);
        assert_eq!(read_addr(&[0; 28]), None, "family 0");
    }
}
