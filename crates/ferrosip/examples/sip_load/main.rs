//! A SIP load generator of ours, for the rates where sipp saturates a core before the server
//! does: REGISTERs, authenticated REGISTERs and calls at a fixed rate over UDP, with RFC 3261
//! retransmissions, from one thread (pin it to a core of its own: `taskset -c 1`).
//!
//! `sip_load SERVER register|auth|call RATE COUNT [--users N] [--password P] [--domain D]`
//!
//! - `register`: user `u<i>` (of N, COUNT by default) registers once.
//! - `auth`: the same, answering the 401 with MD5 digest credentials (`--password`, the same
//!   for every user; qop=auth when offered).
//! - `call`: a callee (`bob`, on a socket of its own) registers, then each call is INVITE,
//!   180, 200, ACK, BYE, 200 through the server, the callee answering at once.
//!
//! Prints one line: operations sent, completed, failed (an error response or no answer within
//! 32 s), retransmissions (ours, and the server's that reached us: any is an unclean run),
//! latency p50/p99 of each operation's last transaction, and the load tool's own CPU.

mod ops;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ops::{Mode, Ops};

/// Options.
struct Args {
    server: SocketAddr,
    mode: Mode,
    rate: u32,
    count: usize,
    users: Option<usize>,
    password: String,
    domain: String,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut pos = Vec::new();
    let (mut users, mut password, mut domain) = (None, "secret".to_string(), None);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--users" => users = Some(value()?.parse().map_err(|e| format!("--users: {e}"))?),
            "--password" => password = value()?,
            "--domain" => domain = Some(value()?),
            _ => pos.push(a),
        }
    }
    let [server, mode, rate, count] = <[String; 4]>::try_from(pos)
        .map_err(|_| "usage: sip_load SERVER register|auth|call RATE COUNT [--users N] [--password P] [--domain D]")?;
    let server: SocketAddr = server.parse().map_err(|e| format!("server: {e}"))?;
    let mode = match mode.as_str() {
        "register" => Mode::Register,
        "auth" => Mode::Auth,
        "call" => Mode::Call,
        m => return Err(format!("unknown mode {m}")),
    };
    Ok(Args {
        server,
        mode,
        rate: rate.parse().map_err(|e| format!("rate: {e}"))?,
        count: count.parse().map_err(|e| format!("count: {e}"))?,
        users,
        password,
        domain: domain.unwrap_or_else(|| server.ip().to_string()),
    })
}

/// A non-blocking UDP socket on the server's loopback address with room for bursts.
fn socket(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddr::new(server.ip(), 0))?;
    s.set_nonblocking(true)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
    let size: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: a valid socket and a c_int option of its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    Ok(s)
}

/// This process's CPU time so far.
fn own_cpu() -> Duration {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Waits until one of `socks` is readable or `until` passes.
fn wait(socks: &[&UdpSocket], until: Instant) {
    let timeout = until.saturating_duration_since(Instant::now());
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(*s),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_micros().div_ceil(1000).min(1000) as libc::c_int;
    // SAFETY: `fds` is a valid array of pollfd of the length given.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

fn main() -> Result<(), String> {
    let a = args()?;
    let uac = socket(a.server).map_err(|e| e.to_string())?;
    let uas = socket(a.server).map_err(|e| e.to_string())?;
    let local = |s: &UdpSocket| s.local_addr().map_err(|e| e.to_string());
    let mut ops = Ops::new(
        a.mode,
        a.count,
        a.users.unwrap_or(a.count),
        a.password,
        a.domain,
        local(&uac)?,
        local(&uas)?,
    );
    let mut buf = vec![0u8; 65_535];
    if a.mode == Mode::Call {
        // The callee registers from its own socket (its Contact is where it sends from).
        uas.send_to(&ops.callee_register(), a.server)
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if Instant::now() > deadline {
                return Err("the callee's REGISTER got no 200".into());
            }
            wait(&[&uas], deadline);
            if let Ok((n, _)) = uas.recv_from(&mut buf) {
                if ops.callee_registered(&buf[..n]) {
                    break;
                }
            }
        }
    }
    let (cpu0, t0) = (own_cpu(), Instant::now());
    let interval = Duration::from_secs_f64(1.0 / f64::from(a.rate.max(1)));
    let mut next = 0usize;
    let mut last_scan = t0;
    loop {
        let now = Instant::now();
        // Start every operation that is due (a late loop catches up at once).
        while next < a.count && t0 + interval * next as u32 <= now {
            let data = ops.start(next, now);
            let _ = uac.send_to(&data, a.server);
            next += 1;
        }
        for (sock, callee) in [(&uac, false), (&uas, true)] {
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                for reply in ops.receive(&buf[..n], callee, Instant::now()) {
                    let _ = sock.send_to(&reply, from);
                }
            }
        }
        if now.duration_since(last_scan) >= Duration::from_millis(10) {
            last_scan = now;
            for (data, callee) in ops.timers(now) {
                let sock = if callee { &uas } else { &uac };
                let _ = sock.send_to(&data, a.server);
            }
        }
        if next == a.count && ops.all_done() {
            break;
        }
        let due = if next < a.count {
            t0 + interval * next as u32
        } else {
            now + Duration::from_millis(10)
        };
        wait(
            &[&uac, &uas],
            due.min(last_scan + Duration::from_millis(10)),
        );
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let r = ops.report();
    println!(
        "mode={} rate={} count={} completed={} failed={} retrans={} server_retrans={} p50_ms={:.2} p99_ms={:.2} elapsed_s={:.2} load_cpu_s={:.2} failures={}",
        a.mode.name(),
        a.rate,
        a.count,
        r.completed,
        r.failed,
        r.retrans,
        r.server_retrans,
        r.p50_ms,
        r.p99_ms,
        elapsed,
        (own_cpu() - cpu0).as_secs_f64(),
        if r.failures.is_empty() { "-" } else { &r.failures },
    );
    Ok(())
}
