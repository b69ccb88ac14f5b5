//! UDP: sockets per listen address, each with a receive thread that parses each datagram.

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::sys::socket::{setsockopt, sockopt::RcvBufForce};
use sip_message::Message;
use socket2::{Domain, Socket, Type};
use std::net::UdpSocket;

use crate::{Handler, Protocol, Source};

/// Largest datagram we accept.
const MAX_DATAGRAM: usize = 65_535;

/// Binds a UDP socket with large buffers (and IPV6_V6ONLY for IPv6); `shared` sets
/// SO_REUSEPORT so that several sockets, one per receive thread, share the address and the
/// kernel spreads the peers over them. The socket blocks: a receive thread sleeps in
/// `recv_from`, one system call per datagram and no event loop.
pub(crate) fn bind(addr: SocketAddr, shared: bool) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    if shared {
        sock.set_reuse_port(true)?;
    }
    // Larger buffers absorb bursts (and what comes during a coalescing window). The kernel
    // clamps them to net.core.rmem_max (208 KiB on a stock Debian) unless the process may
    // exceed it (CAP_NET_ADMIN: SO_RCVBUFFORCE).
    if setsockopt(&sock, RcvBufForce, &RECV_BUFFER).is_err() {
        let _ = sock.set_recv_buffer_size(RECV_BUFFER);
    }
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// The receive buffer asked for: about 3000 datagrams of a kilobyte.
const RECV_BUFFER: usize = 4 << 20;

/// Receives on `sock` on a thread of its own until the process ends; the handler runs on
/// that thread. Under load it wakes at most once per `coalesce`, more often as the rate grows
/// (see [`Pace`]); zero: per datagram.
pub(crate) fn spawn_receiver(
    name: String,
    sock: UdpSocket,
    local: SocketAddr,
    handler: Arc<dyn Handler>,
    coalesce: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || Receiver::new(sock, local, coalesce).run(&*handler))?;
    Ok(())
}

/// When a receive thread sleeps out a window instead of waiting for each datagram: once
/// datagrams come two or more per longest window on average, the thread takes what arrived
/// at the end of each window, as a network card coalesces its interrupts. Each wake-up costs
/// more CPU than handling a REGISTER; this adds up to a window of latency under load, and
/// none to the first datagram after a quiet moment. A busy spell starts with a short window
/// ([`FIRST`]); each next one is sized to gather about [`PER_WINDOW`] datagrams at the rate
/// the last one saw, at most twice as long as the last: windows shorten at once as the rate
/// grows, which bounds what waits in the socket's buffer at a steady rate, and lengthen step
/// by step.
#[derive(Debug)]
struct Pace {
    /// The longest window.
    window: Duration,
    /// The next window.
    next: Duration,
    /// The mean gap between datagrams taken (an exponential average, 1/8 per datagram).
    gap: Duration,
    last: Instant,
}

/// The datagrams a window aims to gather.
const PER_WINDOW: u32 = 32;

/// The shortest window: past `PER_WINDOW` datagrams per 100 µs, a window takes more.
const SHORTEST: Duration = Duration::from_micros(100);

/// The first window of a busy spell (or the longest, if shorter).
const FIRST: Duration = Duration::from_millis(2);

impl Pace {
    fn new(window: Duration, now: Instant) -> Self {
        Pace {
            window,
            next: FIRST.min(window),
            gap: Self::longest(window),
            last: now,
        }
    }

    /// The longest gap counted: a silence weighs as four windows, so that a score of
    /// datagrams close together makes the thread busy again.
    fn longest(window: Duration) -> Duration {
        window.saturating_mul(4)
    }

    /// Notes a datagram taken at `now`.
    fn arrived(&mut self, now: Instant) {
        let gap = now
            .saturating_duration_since(self.last)
            .min(Self::longest(self.window));
        self.gap = self.gap - self.gap / 8 + gap / 8;
        self.last = now;
    }

    /// A window that lasted `elapsed` (its sleep and the taking before it) gathered `taken`
    /// datagrams: the next one is sized to gather [`PER_WINDOW`] at that rate. None: wait for
    /// each datagram again.
    fn gathered(&mut self, taken: u32, elapsed: Duration) {
        if taken == 0 {
            self.gap = Self::longest(self.window);
            self.next = FIRST.min(self.window);
            return;
        }
        let at_rate = elapsed.saturating_mul(PER_WINDOW) / taken;
        self.next = at_rate
            .min(self.next.saturating_mul(2))
            .clamp(SHORTEST.min(self.window), self.window);
    }

    /// True when the next datagrams are better taken after a window's sleep.
    fn busy(&self) -> bool {
        !self.window.is_zero() && self.gap.saturating_mul(2) <= self.window
    }
}

/// A socket's receive loop.
struct Receiver {
    sock: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
    stun_limit: ::stun::AnswerLimit,
    pace: Pace,
}

impl Receiver {
    fn new(sock: UdpSocket, local: SocketAddr, coalesce: Duration) -> Self {
        let now = Instant::now();
        Receiver {
            sock,
            local,
            buf: vec![0u8; MAX_DATAGRAM],
            stun_limit: ::stun::AnswerLimit::new(now),
            pace: Pace::new(coalesce, now),
        }
    }

    fn run(mut self, handler: &dyn Handler) {
        loop {
            // Quiet: sleep in the socket until a datagram comes, and take it at once.
            self.take(handler);
            // Busy: take what arrived in each window, until a window brings nothing.
            let mut began = Instant::now();
            while self.pace.busy() {
                std::thread::sleep(self.pace.next);
                let mut taken = 0u32;
                while self.take_waiting(handler) {
                    taken = taken.saturating_add(1);
                }
                let now = Instant::now();
                self.pace
                    .gathered(taken, now.saturating_duration_since(began));
                began = now;
            }
        }
    }

    /// Waits for a datagram and hands it on.
    fn take(&mut self, handler: &dyn Handler) {
        let got = self.sock.recv_from(&mut self.buf);
        self.took(got, handler);
    }

    /// Hands on a datagram already waiting; false when none is. The socket stays blocking:
    /// the socket we send from shares its flags.
    fn take_waiting(&mut self, handler: &dyn Handler) -> bool {
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout, and the kernel writes
        // only initialised bytes into the buffer.
        let buf = unsafe { &mut *(self.buf.as_mut_slice() as *mut [u8] as *mut [MaybeUninit<u8>]) };
        let got = socket2::SockRef::from(&self.sock)
            .recv_from_with_flags(buf, libc::MSG_DONTWAIT)
            .and_then(|(n, from)| match from.as_socket() {
                Some(from) => Ok((n, from)),
                None => Err(std::io::Error::other("a datagram from a non-IP address")),
            });
        self.took(got, handler)
    }

    /// Hands on a received datagram; false when none was waiting.
    fn took(&mut self, got: std::io::Result<(usize, SocketAddr)>, handler: &dyn Handler) -> bool {
        let (n, remote) = match got {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                // ICMP errors surface here on some systems; keep receiving.
                tracing::debug!(local = %self.local, error = %e, "udp receive error");
                return true;
            }
        };
        self.pace.arrived(Instant::now());
        self.handle(n, remote, handler);
        true
    }

    /// Answers a STUN request, or parses the datagram of `n` bytes in the buffer and hands
    /// it to `handler`.
    fn handle(&mut self, n: usize, remote: SocketAddr, handler: &dyn Handler) {
        let datagram = &self.buf[..n];
        if crate::stun::absorb(&self.sock, &mut self.stun_limit, datagram, remote) {
            return;
        }
        if datagram.iter().all(|&b| b == b'\r' || b == b'\n') {
            return; // keep-alive
        }
        // Each message gets its own right-sized buffer: a transaction may keep it for
        // half a minute, and must not pin a large shared receive buffer meanwhile.
        let data = Bytes::copy_from_slice(datagram);
        let src = Source {
            protocol: Protocol::Udp,
            remote,
            local: self.local,
        };
        match Message::parse(data.clone()) {
            Ok(msg) => crate::deliver(handler, msg, src),
            Err(e) => {
                if let Some(answer) = handler.on_malformed(&data, e, src) {
                    let _ = self.sock.send_to(&answer, remote);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Sender};
    use std::sync::Mutex;

    const MS: Duration = Duration::from_millis(1);

    /// Passes on the Call-ID of each message.
    struct Collect(Mutex<Sender<String>>);

    impl Handler for Collect {
        fn on_message(&self, msg: Message, _src: Source) {
            let id = msg.call_id().unwrap_or_default().to_string();
            let _ = self.0.lock().unwrap().send(id);
        }
    }

    fn options(i: usize) -> String {
        format!(
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK{i}\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c{i}\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn a_receive_thread_takes_every_datagram_gathered_or_alone() {
        let sock = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let local = sock.local_addr().unwrap();
        let (tx, rx) = channel();
        let handler = Arc::new(Collect(Mutex::new(tx)));
        spawn_receiver("test-udp".into(), sock, local, handler, MS * 5).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        // A burst, far more than one per window: taken in gathered windows, in order.
        for i in 0..200 {
            peer.send_to(options(i).as_bytes(), local).unwrap();
            if i % 20 == 0 {
                std::thread::sleep(MS);
            }
        }
        for i in 0..200 {
            let id = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(id, format!("c{i}"));
        }
        // Quiet for a while (the thread waits in its socket again), then one datagram.
        std::thread::sleep(MS * 50);
        peer.send_to(options(200).as_bytes(), local).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "c200");
    }

    /// A pace of 1 ms windows fed a datagram every `gap`, `n` times from `start`.
    fn fed(pace: &mut Pace, start: Instant, gap: Duration, n: u32) -> Instant {
        let mut at = start;
        for _ in 0..n {
            at += gap;
            pace.arrived(at);
        }
        at
    }

    #[test]
    fn waits_for_each_datagram_when_they_come_apart() {
        let start = Instant::now();
        let mut pace = Pace::new(MS, start);
        assert!(!pace.busy());
        // One datagram per window or fewer: waking for each is cheaper than a sleep each.
        let at = fed(&mut pace, start, MS, 100);
        assert!(!pace.busy());
        fed(&mut pace, at, MS * 5, 100);
        assert!(!pace.busy());
    }

    #[test]
    fn gathers_when_two_or_more_come_per_window() {
        let start = Instant::now();
        let mut pace = Pace::new(MS, start);
        let at = fed(&mut pace, start, MS / 4, 40);
        assert!(pace.busy());
        // A window with nothing: back to waiting for each datagram, until the rate is
        // seen again.
        pace.gathered(0, MS);
        assert!(!pace.busy());
        fed(&mut pace, at, MS / 10, 20);
        assert!(pace.busy());
    }

    #[test]
    fn windows_shorten_at_once_and_lengthen_step_by_step() {
        let mut pace = Pace::new(MS * 10, Instant::now());
        // A busy spell starts short.
        assert_eq!(pace.next, FIRST);
        // A quarter of what a 2 ms window should gather: at most twice as long next, then
        // up to the longest window.
        pace.gathered(PER_WINDOW / 4, MS * 2);
        assert_eq!(pace.next, MS * 4);
        pace.gathered(PER_WINDOW / 4, MS * 4);
        assert_eq!(pace.next, MS * 8);
        pace.gathered(PER_WINDOW / 4, MS * 8);
        assert_eq!(pace.next, MS * 10);
        // Four times what it should gather: a quarter of the window it took.
        pace.gathered(PER_WINDOW * 4, MS * 10);
        assert_eq!(pace.next, MS * 10 / 4);
        // Never below the shortest window, however many came.
        pace.gathered(PER_WINDOW * 1000, MS);
        assert_eq!(pace.next, SHORTEST);
        // A window with nothing: the next busy spell starts short again.
        pace.gathered(0, MS);
        assert_eq!(pace.next, FIRST);
        // Extreme counts and durations neither overflow nor panic.
        pace.gathered(u32::MAX, Duration::MAX);
        assert_eq!(pace.next, MS * 4);
    }

    #[test]
    fn a_window_shorter_than_the_first_is_kept() {
        let mut pace = Pace::new(MS, Instant::now());
        assert_eq!(pace.next, MS);
        pace.gathered(1, MS);
        assert_eq!(pace.next, MS);
    }

    #[test]
    fn a_zero_window_never_gathers() {
        let start = Instant::now();
        let mut pace = Pace::new(Duration::ZERO, start);
        fed(&mut pace, start, Duration::from_micros(1), 100);
        assert!(!pace.busy());
    }

    #[test]
    fn a_long_silence_does_not_overflow() {
        let start = Instant::now();
        let mut pace = Pace::new(MS, start);
        pace.arrived(start + Duration::from_secs(1 << 40));
        assert!(!pace.busy());
    }
}
