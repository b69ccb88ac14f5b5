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
//!
//! The tool never waits on its sockets: it sleeps until its next send (1 ms at most), then
//! reads what came, timed by the kernel's arrival stamps. On loopback the server's send
//! delivers into our socket in the server's own time, and would wake a tool waiting there
//! at the server's cost, which a phone across a network never makes it pay.

mod ops;
#[path = "../../../relay-net/examples/load/stamp.rs"]
mod stamp;

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

/// A non-blocking UDP socket on the server's loopback address, stamped by the kernel, with
/// room for bursts.
fn socket(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = stamp::stamped_socket_on(server.ip())?;
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

/// When a datagram stamped `stamp` (µs since 1970, by the kernel) arrived, on this clock.
fn arrival(stamp: Option<u64>) -> Instant {
    let now = Instant::now();
    let ago = stamp.map_or(0, |s| stamp::now_us().saturating_sub(s));
    now.checked_sub(Duration::from_micros(ago)).unwrap_or(now)
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

/// Sleeps until `until`, or 1 ms at most, without waiting on a socket.
fn pause(until: Instant) {
    let now = Instant::now();
    std::thread::sleep(
        until
            .min(now + Duration::from_millis(1))
            .saturating_duration_since(now),
    );
}

fn main() -> Result<(), String> {
    let a = args()?;
    // Sleeps as long as asked, not the default 50 µs longer: sends keep to the rate.
    // SAFETY: a plain prctl on this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
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
            pause(deadline);
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
            // Answers go to the server's address, which is where both servers send from.
            while let Ok((n, stamp)) = stamp::recv_stamped(sock, &mut buf) {
                for reply in ops.receive(&buf[..n], callee, arrival(stamp)) {
                    let _ = sock.send_to(&reply, a.server);
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
        pause(due.min(last_scan + Duration::from_millis(10)));
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
