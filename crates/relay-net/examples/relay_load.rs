//! A load tool for media relays that speak rtpengine's ng protocol (ferrosip relay,
//! rtpengine): makes `--streams` calls over ng, then sends G.711-sized RTP (172 bytes, every
//! 20 ms) both ways through each for `--seconds`, and prints what arrived, what was lost,
//! the latency (p50, p99) and, with `--pid`, the relay's CPU time per relayed packet (from
//! /proc). `--direct` sends the same streams from phone to phone without a relay: the
//! latency the tool itself adds on a busy machine, to subtract. `bench/relay.sh` runs it
//! against both relays.
//!
//! `cargo run --release -p relay-net --example relay_load -- --ng 127.0.0.1:2223 --streams 200
//! --seconds 10 --pid 1234`

#![allow(missing_docs)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ng::{Command, Flags, Reply, Request};
use relay::{MediaOp, MediaRequest};
use tokio::net::UdpSocket;

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

/// The relay process's user+system CPU time so far (clock ticks of 10 ms).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}

fn sdp(port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    .into_bytes()
}

/// The address and port an SDP names for audio.
fn media_of(sdp: &[u8]) -> Option<SocketAddr> {
    let text = std::str::from_utf8(sdp).ok()?;
    let ip: IpAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let m = text.lines().find_map(|l| l.strip_prefix("m=audio "))?;
    Some(SocketAddr::new(ip, m.split(' ').next()?.parse().ok()?))
}

async fn ask(ctl: &UdpSocket, ng: SocketAddr, n: usize, m: MediaRequest) -> Vec<u8> {
    let flags = Flags {
        replace_origin: true,
        ..Flags::default()
    };
    let req = Request {
        cookie: format!("load{n}").into_bytes(),
        command: Command::Media(m, flags),
    };
    ctl.send_to(&req.encode(), ng).await.expect("send");
    let mut buf = vec![0u8; 65535];
    loop {
        let got = tokio::time::timeout(Duration::from_secs(2), ctl.recv(&mut buf)).await;
        let n = got.expect("the relay answers within 2 s").expect("recv");
        match Reply::parse(&buf[..n]) {
            Ok((cookie, Reply::Ok { sdp: Some(sdp) })) if cookie == req.cookie => return sdp,
            Ok((_, Reply::Error(e))) => panic!("the relay refused: {e}"),
            _ => {}
        }
    }
}

/// What one side of one stream saw.
#[derive(Default)]
struct Seen {
    sent: u64,
    received: u64,
    latency_us: Vec<u32>,
}

/// One side of one stream: sends every 20 ms to `to` until `until`, counts and times what
/// it receives.
async fn side(sock: Arc<UdpSocket>, to: SocketAddr, epoch: Instant, until: Instant) -> Seen {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut seen = Seen::default();
    let mut buf = [0u8; 2048];
    let mut packet = [0u8; 172];
    packet[0] = 0x80;
    let record = |n: usize, buf: &[u8], seen: &mut Seen| {
        if n >= 20 {
            seen.received += 1;
            let t = u64::from_be_bytes(buf[12..20].try_into().unwrap_or([0; 8]));
            let now = epoch.elapsed().as_micros() as u64;
            seen.latency_us.push(now.saturating_sub(t) as u32);
        }
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if Instant::now() >= until {
                    break;
                }
                packet[2..4].copy_from_slice(&(seen.sent as u16).to_be_bytes());
                let t = epoch.elapsed().as_micros() as u64;
                packet[12..20].copy_from_slice(&t.to_be_bytes());
                if sock.send_to(&packet, to).await.is_ok() {
                    seen.sent += 1;
                }
            }
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    record(n, &buf, &mut seen);
                }
            }
        }
    }
    // What is still on the way.
    let late = Duration::from_millis(300);
    while let Ok(Ok((n, _))) = tokio::time::timeout(late, sock.recv_from(&mut buf)).await {
        record(n, &buf, &mut seen);
    }
    seen
}

#[tokio::main]
async fn main() {
    let a = args();
    let ctl = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut pairs = Vec::new();
    for i in 0..a.streams {
        let x = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let y = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let call_id = format!("load-{}-{i}", std::process::id());
        let request = |op, to_tag: &str, sock: &UdpSocket| MediaRequest {
            op,
            call_id: call_id.clone(),
            from_tag: "x".into(),
            to_tag: to_tag.into(),
            sdp: sdp(sock.local_addr().expect("addr").port()),
            source: Some("127.0.0.1".parse().expect("ip")),
            receiver_ipv6: false,
        };
        if a.direct {
            let (to_x, to_y) = (y.local_addr().expect("addr"), x.local_addr().expect("addr"));
            pairs.push((x, to_x, y, to_y));
            continue;
        }
        let offer = ask(&ctl, a.ng, 2 * i, request(MediaOp::Offer, "", &x)).await;
        let answer = ask(&ctl, a.ng, 2 * i + 1, request(MediaOp::Answer, "y", &y)).await;
        // x sends to the port in the answer it got, y to the one in the offer.
        let (to_y, to_x) = (
            media_of(&offer).expect("SDP"),
            media_of(&answer).expect("SDP"),
        );
        pairs.push((x, to_x, y, to_y));
    }
    let before = a.pid.map(cpu);
    let epoch = Instant::now();
    let until = epoch + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for (x, to_x, y, to_y) in pairs {
        tasks.push(tokio::spawn(side(x, to_x, epoch, until)));
        tasks.push(tokio::spawn(side(y, to_y, epoch, until)));
    }
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.expect("task");
        all.sent += s.sent;
        all.received += s.received;
        all.latency_us.extend(s.latency_us);
    }
    let cpu = a.pid.zip(before).map(|(pid, b)| cpu(pid).saturating_sub(b));
    let l = &mut all.latency_us;
    l.sort_unstable();
    let pct = |p: f64| {
        let i = ((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1));
        l.get(i).copied().unwrap_or(0)
    };
    let lost = all.sent.saturating_sub(all.received);
    print!(
        "streams={} sent={} received={} lost={lost} ({:.3}%) latency_us p50={} p99={}",
        a.streams,
        all.sent,
        all.received,
        lost as f64 * 100.0 / all.sent.max(1) as f64,
        pct(0.50),
        pct(0.99)
    );
    if let Some(cpu) = cpu {
        let per = cpu.as_micros() as f64 / all.received.max(1) as f64;
        print!(
            " relay_cpu_ms={} cpu_us_per_packet={per:.2}",
            cpu.as_millis()
        );
    }
    println!();
}
