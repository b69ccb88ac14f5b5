//! A load tool for media relays that speak rtpengine's ng protocol (ferrosip relay,
//! rtpengine): makes `--streams` calls over ng, then sends G.711-sized RTP (172 bytes, every
//! 20 ms, the streams' packets spread evenly over the 20 ms) both ways through each for
//! `--seconds`, and prints what arrived, what was lost, the latency (p50, p99, p99.9, max:
//! from the send to the kernel's arrival stamp at the receiver), with `--pid` the relay's
//! CPU time per relayed packet (from /proc), and that of the packets' whole path: the
//! load tool's, the relay's and the kernel's softirq threads' (the kernel bills forwarding
//! in the kernel to the sender, not to the relay).
//! `--direct` sends the same streams from phone to phone without a relay: the latency and
//! CPU of the kernel's own path, to subtract. `bench/relay.sh` runs it against both relays.
//!
//! `cargo run --release -p relay-net --example relay_load -- --ng 127.0.0.1:2223 --streams 200
//! --seconds 10 --pid 1234`

#![allow(missing_docs)]

mod load;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay::{MediaOp, MediaRequest};
use tokio::net::UdpSocket;

use load::{ask, cpu, epoll_of, media_of, now_us, path_cpu, recv_stamped, stamped_socket, PTIME};

struct Args {
    ng: SocketAddr,
    streams: usize,
    seconds: u64,
    pid: Option<u32>,
    direct: bool,
}

fn args() -> Args {
    let mut a = Args {
        ng: "127.0.0.1:2223".parse().expect("addr"),
        streams: 200,
        seconds: 10,
        pid: None,
        direct: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--direct" {
            a.direct = true;
            continue;
        }
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--ng" => a.ng = v.parse().expect("--ng address:port"),
            "--streams" => a.streams = v.parse().expect("--streams n"),
            "--seconds" => a.seconds = v.parse().expect("--seconds n"),
            "--pid" => a.pid = Some(v.parse().expect("--pid n")),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn sdp(port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    .into_bytes()
}

/// What one side of one stream saw.
#[derive(Default)]
struct Seen {
    /// Filled in for the total only (one thread sends for every side).
    sent: u64,
    received: u64,
    latency_us: Vec<u32>,
}

/// Receives on every socket until `until`, and what is still on the way 300 ms after;
/// counts what arrives and times it from the send to the kernel's arrival stamp. It reads
/// what epoll reports every millisecond and never waits in epoll itself: a thread waiting
/// there would be woken by each packet, on loopback in the time of the relay that sends it
/// (a phone across a network wakes on its own CPU), a cost that is not the relay's.
fn receive_all(socks: &[Arc<std::net::UdpSocket>], until: Instant) -> Seen {
    let ep = epoll_of(socks.iter().map(|s| &**s));
    let mut seen = Seen::default();
    let mut buf = [0u8; 2048];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let end = until + Duration::from_millis(300);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
        // SAFETY: `events` has room for the count given.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 0) };
        for ev in &events[..usize::try_from(n).unwrap_or(0)] {
            let sock = &socks[ev.u64 as usize];
            while let Ok((n, stamp)) = recv_stamped(sock, &mut buf) {
                if n >= 20 {
                    seen.received += 1;
                    let t = u64::from_be_bytes(buf[12..20].try_into().unwrap_or([0; 8]));
                    let arrived = stamp.unwrap_or_else(now_us);
                    seen.latency_us.push(arrived.saturating_sub(t) as u32);
                }
            }
        }
    }
    // SAFETY: ours, closed once.
    unsafe { libc::close(ep) };
    seen
}

/// Sends every side's packet each 20 ms from `start` until `until`, the sides' packets
/// spread evenly over the 20 ms (phones are not in step: a timer that sent them all at
/// once, or in the clumps of a 1 ms timer wheel, would make bursts no real load has).
/// Gives how many it sent.
fn send_all(
    sides: &[(Arc<std::net::UdpSocket>, SocketAddr)],
    start: Instant,
    until: Instant,
) -> u64 {
    // SAFETY: prctl with an integer argument; a slack of 1 ns makes sleeps end on time.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
    let mut packet = [0u8; 172];
    packet[0] = 0x80;
    let (mut sent, mut seq) = (0u64, 0u16);
    let gap = PTIME / sides.len().max(1) as u32;
    let mut period = start;
    while period < until {
        for (k, (sock, to)) in sides.iter().enumerate() {
            let due = period + gap * k as u32;
            let now = Instant::now();
            // Sleeps shorter than this end late anyway: the packets go together instead.
            if due > now + Duration::from_micros(50) {
                std::thread::sleep(due - now);
            }
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[12..20].copy_from_slice(&now_us().to_be_bytes());
            if sock.send_to(&packet, to).is_ok() {
                sent += 1;
            }
        }
        seq = seq.wrapping_add(1);
        period += PTIME;
    }
    sent
}

#[tokio::main]
async fn main() {
    let a = args();
    let ctl = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut pairs = Vec::new();
    let mut calls = Vec::new();
    for i in 0..a.streams {
        let (x, y) = (Arc::new(stamped_socket()), Arc::new(stamped_socket()));
        let call_id = format!("load-{}-{i}", std::process::id());
        let request = |op, to_tag: &str, sock: &std::net::UdpSocket| MediaRequest {
            op,
            call_id: call_id.clone(),
            from_tag: "x".into(),
            to_tag: to_tag.into(),
            sdp: sdp(sock.local_addr().expect("addr").port()),
            source: Some("127.0.0.1".parse().expect("ip")),
            receiver_ipv6: false,
            receiver: relay::Peer::AsSender,
            carrier: None,
            caller: None,
            authenticated: false,
        };
        if a.direct {
            let (to_x, to_y) = (y.local_addr().expect("addr"), x.local_addr().expect("addr"));
            pairs.push((x, to_x, y, to_y));
            continue;
        }
        let offer = ask(&ctl, a.ng, 2 * i, request(MediaOp::Offer, "", &x)).await;
        let answer = ask(&ctl, a.ng, 2 * i + 1, request(MediaOp::Answer, "y", &y)).await;
        let (offer, answer) = (offer.unwrap_or_default(), answer.unwrap_or_default());
        calls.push(request(MediaOp::Delete, "y", &y));
        // x sends to the port in the answer it got, y to the one in the offer.
        let (to_y, to_x) = (
            media_of(&offer).expect("SDP"),
            media_of(&answer).expect("SDP"),
        );
        pairs.push((x, to_x, y, to_y));
    }
    let before = a.pid.map(cpu);
    let path = path_cpu(a.pid);
    let now = Instant::now();
    let until = now + Duration::from_secs(a.seconds);
    let mut socks = Vec::new();
    let mut sides = Vec::new();
    for (x, to_x, y, to_y) in pairs {
        socks.extend([x.clone(), y.clone()]);
        sides.extend([(x, to_x), (y, to_y)]);
    }
    let sender = std::thread::spawn(move || send_all(&sides, now, until));
    let mut all = tokio::task::spawn_blocking(move || receive_all(&socks, until))
        .await
        .expect("receiver");
    all.sent = sender.join().expect("sender");
    let cpu = a.pid.zip(before).map(|(pid, b)| cpu(pid).saturating_sub(b));
    let path = path_cpu(a.pid).saturating_sub(path);
    // The calls end, and their ports are free for the next run.
    for (i, call) in calls.into_iter().enumerate() {
        ask(&ctl, a.ng, 2 * a.streams + i, call).await;
    }
    let l = &mut all.latency_us;
    l.sort_unstable();
    let pct = |p: f64| {
        let i = ((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1));
        l.get(i).copied().unwrap_or(0)
    };
    let lost = all.sent.saturating_sub(all.received);
    print!(
        "streams={} sent={} received={} lost={lost} ({:.3}%) latency_us p50={} p99={} p999={} max={}",
        a.streams,
        all.sent,
        all.received,
        lost as f64 * 100.0 / all.sent.max(1) as f64,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    if let Some(cpu) = cpu {
        let per = cpu.as_micros() as f64 / all.received.max(1) as f64;
        print!(
            " relay_cpu_ms={} cpu_us_per_packet={per:.2}",
            cpu.as_millis()
        );
    }
    let per = path.as_micros() as f64 / all.received.max(1) as f64;
    println!(
        " path_cpu_ms={} path_us_per_packet={per:.2}",
        path.as_millis()
    );
}
