//! A load tool for media relays that bridge browsers to phones over rtpengine's ng protocol
//! (ferrosip relay, rtpengine): makes `--streams` calls over ng with Kamailio's WebRTC
//! gateway flags, each from a browser (in memory: `webrtc::testing::Browser`, on its own UDP
//! socket) that offers WebRTC to a phone (a plain UDP socket) that answers RTP/AVP; the
//! browsers check the relay's candidate and handshake (ICE, DTLS-SRTP), `--batch` calls at a
//! time. Then it sends G.711-sized RTP (172 bytes, every 20 ms, the streams' packets spread
//! evenly over the 20 ms) both ways for `--seconds`: SRTP from each browser, plain RTP from
//! each phone, so the relay decrypts one and encrypts the other per packet. It prints what
//! arrived (at a browser only what its SRTP context authenticates and decrypts, at a phone
//! only the plain packet sent), what was lost (in all and per direction), the latency (p50,
//! p99, p99.9, max: from the send to the kernel's arrival stamp at the receiver) and, with
//! `--pid`, the relay's CPU time per relayed packet (from /proc). `bench/webrtc.sh` runs it
//! against both relays. `--batch N` (50) calls are set up at a time, each batch's
//! handshakes given `--handshake-timeout S` (10); calls whose handshake did not complete are
//! reported and send nothing (the tool then exits with 2). `--no-candidates` makes the
//! browsers offer as before gathering (`c=IN IP4 0.0.0.0`, port 9); `--verbose` prints the
//! first call's SDPs.
//!
//! `cargo run --release -p relay-net --example webrtc_load -- --ng 127.0.0.1:2223 --streams
//! 200 --seconds 10 --pid 1234`

#![allow(missing_docs)]

mod load;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay::{MediaOp, MediaRequest, Peer};
use tokio::net::UdpSocket;
use webrtc::testing::Browser;
use webrtc::{kind, Kind, Srtp};

use load::{ask, cpu, epoll_of, media_of, now_us, path_cpu, recv_stamped, stamped_socket, PTIME};

struct Args {
    ng: SocketAddr,
    streams: usize,
    seconds: u64,
    pid: Option<u32>,
    batch: usize,
    handshake_timeout: Duration,
    verbose: bool,
    gathered: bool,
}

fn args() -> Args {
    let mut a = Args {
        ng: "127.0.0.1:2223".parse().expect("addr"),
        streams: 200,
        seconds: 10,
        pid: None,
        batch: 50,
        handshake_timeout: Duration::from_secs(10),
        verbose: false,
        gathered: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--verbose" => a.verbose = true,
            "--no-candidates" => a.gathered = false,
            "--ng" => a.ng = value(&mut it, &k),
            "--streams" => a.streams = value(&mut it, &k),
            "--seconds" => a.seconds = value(&mut it, &k),
            "--pid" => a.pid = Some(value(&mut it, &k)),
            "--batch" => a.batch = value::<usize>(&mut it, &k).max(1),
            "--handshake-timeout" => a.handshake_timeout = Duration::from_secs(value(&mut it, &k)),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The value after the argument `k`.
fn value<T: std::str::FromStr>(it: &mut impl Iterator<Item = String>, k: &str) -> T {
    let v = it.next().unwrap_or_default();
    v.parse()
        .unwrap_or_else(|_| panic!("{k}: {v:?} is no valid value"))
}

/// A phone's SDP: G.711 at `port`.
fn phone_sdp(port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    )
    .into_bytes()
}

/// An RTP packet's size: 12 bytes of header, 160 of G.711.
const PACKET: usize = 172;

/// Its payload after the send time (bytes 12..20): PCMU's silence.
const FILL: u8 = 0xd5;

/// One call: a browser and a phone, each on its socket, and where each sends to.
struct Call {
    browser: Browser,
    browser_sock: Arc<std::net::UdpSocket>,
    /// The relay's browser-side port: the candidate in the answer.
    to_browser_side: SocketAddr,
    phone_sock: Arc<std::net::UdpSocket>,
    /// The relay's phone-side port: the address in the offer.
    to_phone_side: SocketAddr,
    /// Ends the call.
    delete: MediaRequest,
}

/// Runs the browsers of `calls`: their checks, keepalives and flights go out, what comes
/// back goes in. Gives whether any packet came.
fn pump(calls: &mut [Call], buf: &mut [u8]) -> bool {
    let mut any = false;
    for c in calls {
        let now = Instant::now();
        c.browser.tick(now, c.to_browser_side);
        for (to, data) in std::mem::take(&mut c.browser.out) {
            let _ = c.browser_sock.send_to(&data, to);
        }
        while let Ok((n, from)) = c.browser_sock.recv_from(buf) {
            any = true;
            c.browser.receive(Instant::now(), from, &buf[..n]);
        }
    }
    any
}

/// Makes `n` calls over ng after those in `calls`; their browsers check and handshake until all are keyed or `timeout` passes (the calls before them pumped too, so
/// that their browsers keep their checks going).
async fn set_up(
    ctl: &UdpSocket,
    a: &Args,
    calls: &mut Vec<Call>,
    n: usize,
    timeout: Duration,
) -> Result<(), String> {
    let first = calls.len();
    for i in first..first + n {
        let (bs, phone) = (Arc::new(stamped_socket()), Arc::new(stamped_socket()));
        let browser = Browser::new(Instant::now(), bs.local_addr().expect("addr"));
        let call_id = format!("wload-{}-{i}", std::process::id());
        let request = |op, to_tag: &str, sdp: Vec<u8>, receiver| MediaRequest {
            op,
            call_id: call_id.clone(),
            from_tag: "browser".into(),
            to_tag: to_tag.into(),
            sdp,
            source: Some("127.0.0.1".parse().expect("ip")),
            receiver_ipv6: false,
            receiver,
            carrier: None,
            caller: None,
            authenticated: false,
        };
        let offer = request(MediaOp::Offer, "", browser.offer(a.gathered), Peer::Plain);
        let offer = ask(ctl, a.ng, 3 * i, offer).await.unwrap_or_default();
        let port = phone.local_addr().expect("addr").port();
        let answer = request(MediaOp::Answer, "phone", phone_sdp(port), Peer::WebRtc);
        let answer = ask(ctl, a.ng, 3 * i + 1, answer).await.unwrap_or_default();
        if a.verbose && i == 0 {
            eprintln!(
                "offer to the phone:\n{}\nanswer to the browser:\n{}",
                String::from_utf8_lossy(&offer),
                String::from_utf8_lossy(&answer)
            );
        }
        let to_phone = sdp::Session::parse(&offer).map_err(|e| format!("offer: {e:?}"))?;
        if to_phone.media.first().map(|m| m.proto.as_str()) != Some("RTP/AVP") {
            return Err(format!(
                "the offer to the phone is not RTP/AVP:\n{}",
                String::from_utf8_lossy(&offer)
            ));
        }
        let mut to_phone_side = media_of(&offer).ok_or("no audio address in the offer")?;
        // The browser's placeholder address passed on (`--no-candidates`): the relay is
        // where the ng requests go.
        if to_phone_side.ip().is_unspecified() {
            if i == 0 {
                eprintln!(
                    "webrtc_load: the offer to the phone names {to_phone_side}: the phone \
                     sends to {} instead",
                    a.ng.ip()
                );
            }
            to_phone_side.set_ip(a.ng.ip());
        }
        let to_browser_side = media_of(&answer).ok_or("no audio address in the answer")?;
        let session = sdp::Session::parse(&answer).map_err(|e| format!("answer: {e:?}"))?;
        let proto = session.media.first().map(|m| m.proto.clone());
        let leg = session.webrtc().into_iter().next().ok_or("no media")?;
        if !leg.is_webrtc() || leg.candidates == 0 {
            return Err(format!(
                "the answer to the browser is no WebRTC ({proto:?}, ICE {}, fingerprint {}, {} \
                 candidates):\n{}",
                leg.ice.is_some(),
                leg.fingerprint.is_some(),
                leg.candidates,
                String::from_utf8_lossy(&answer)
            ));
        }
        let mut c = Call {
            browser,
            browser_sock: bs,
            to_browser_side,
            phone_sock: phone,
            to_phone_side,
            delete: request(MediaOp::Delete, "phone", Vec::new(), Peer::AsSender),
        };
        c.browser
            .peer(to_browser_side, leg.ice.as_ref().expect("ICE"), leg.setup);
        calls.push(c);
    }
    let until = Instant::now() + timeout;
    let mut buf = vec![0u8; 2048];
    while calls[first..].iter().any(|c| c.browser.srtp.is_none()) && Instant::now() < until {
        if !pump(calls, &mut buf) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(())
}

/// What arrived.
#[derive(Default)]
struct Seen {
    /// Filled in for the totals only (one thread sends for every side).
    sent_to_phone: u64,
    sent_to_browser: u64,
    /// At the phones, plain and whole.
    to_phone: u64,
    /// At the browsers, authenticated and decrypted.
    to_browser: u64,
    /// At the browsers, refused by SRTP (a wrong tag, a replay).
    refused: u64,
    /// Packets of media that were not what was sent (encrypted still, cut, changed).
    garbled: u64,
    /// Per direction: to the phones, to the browsers.
    latency_us: [Vec<u32>; 2],
}

impl Seen {
    /// `p` is what was sent: 172 bytes, the send time, then silence.
    fn media(&mut self, p: &[u8], stamp: Option<u64>, to_phone: bool) {
        if p.len() != PACKET || p[20..].iter().any(|&b| b != FILL) {
            self.garbled += 1;
            return;
        }
        match to_phone {
            true => self.to_phone += 1,
            false => self.to_browser += 1,
        }
        let t = u64::from_be_bytes(p[12..20].try_into().unwrap_or([0; 8]));
        let arrived = stamp.unwrap_or_else(now_us);
        self.latency_us[usize::from(!to_phone)].push(arrived.saturating_sub(t) as u32);
    }
}

/// A browser on the receiving side: what it keeps doing besides receiving media (its ICE
/// keepalives, answers to the relay's checks), and its inbound SRTP.
struct Receiving {
    browser: Browser,
    inbound: Srtp,
    relay: SocketAddr,
}

/// Receives on every socket until `until`, and what is still on the way 300 ms after;
/// counts what arrives and times it from the send to the kernel's arrival stamp; every
/// 50 ms, the browsers' ICE goes on. It reads what epoll reports every millisecond and
/// never waits in epoll itself: a thread waiting there would be woken by each packet, on
/// loopback in the time of the relay that sends it (a phone across a network wakes on its
/// own CPU), a cost that is not the relay's.
fn receive_all(
    phones: &[Arc<std::net::UdpSocket>],
    browsers: &[Arc<std::net::UdpSocket>],
    mut receiving: Vec<Receiving>,
    until: Instant,
) -> Seen {
    // Phones are 0..n, browsers n..2n.
    let ep = epoll_of(phones.iter().chain(browsers).map(|s| &**s));
    let mut seen = Seen::default();
    let mut buf = [0u8; 2048];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let end = until + Duration::from_millis(300);
    let mut next_tick = Instant::now();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + Duration::from_millis(50);
            for (r, sock) in receiving.iter_mut().zip(browsers) {
                r.browser.tick(now, r.relay);
                for (to, data) in std::mem::take(&mut r.browser.out) {
                    let _ = sock.send_to(&data, to);
                }
            }
        }
        // SAFETY: `events` has room for the count given.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 0) };
        for ev in &events[..usize::try_from(n).unwrap_or(0)] {
            let i = ev.u64 as usize;
            if let Some(sock) = phones.get(i) {
                while let Ok((n, stamp)) = recv_stamped(sock, &mut buf) {
                    seen.media(&buf[..n], stamp, true);
                }
                continue;
            }
            let (sock, r) = (
                &browsers[i - phones.len()],
                &mut receiving[i - phones.len()],
            );
            while let Ok((n, stamp)) = recv_stamped(sock, &mut buf) {
                let data = &buf[..n];
                match kind(data) {
                    Kind::Rtp => match r.inbound.unprotect_rtp(data) {
                        Some(plain) => seen.media(&plain, stamp, false),
                        None => seen.refused += 1,
                    },
                    // RTCP is not sent, nor counted.
                    Kind::Rtcp => {}
                    _ => {
                        r.browser.receive(Instant::now(), r.relay, data);
                        for (to, data) in std::mem::take(&mut r.browser.out) {
                            let _ = sock.send_to(&data, to);
                        }
                    }
                }
            }
        }
    }
    // SAFETY: ours, closed once.
    unsafe { libc::close(ep) };
    seen
}

/// One side that sends: its socket, where to, and for a browser its outbound SRTP.
struct Sending {
    sock: Arc<std::net::UdpSocket>,
    to: SocketAddr,
    srtp: Option<Srtp>,
}

/// Sends every side's packet each 20 ms from `start` until `until`, the sides' packets
/// spread evenly over the 20 ms (phones are not in step: a timer that sent them all at
/// once, or in the clumps of a 1 ms timer wheel, would make bursts no real load has); a
/// browser's protected by its SRTP. Gives how many it sent (to phones, to browsers).
fn send_all(sides: &mut [Sending], start: Instant, until: Instant) -> (u64, u64) {
    // SAFETY: prctl with an integer argument; a slack of 1 ns makes sleeps end on time.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
    let mut packet = [FILL; PACKET];
    packet[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    let (mut to_phone, mut to_browser, mut seq) = (0u64, 0u64, 0u16);
    let gap = PTIME / sides.len().max(1) as u32;
    let mut period = start;
    while period < until {
        for (k, side) in sides.iter_mut().enumerate() {
            let due = period + gap * k as u32;
            let now = Instant::now();
            // Sleeps shorter than this end late anyway: the packets go together instead.
            if due > now + Duration::from_micros(50) {
                std::thread::sleep(due - now);
            }
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            packet[12..20].copy_from_slice(&now_us().to_be_bytes());
            match &mut side.srtp {
                Some(srtp) => {
                    let sealed = srtp.protect_rtp(&packet).expect("protect");
                    if side.sock.send_to(&sealed, side.to).is_ok() {
                        to_phone += 1;
                    }
                }
                None => {
                    if side.sock.send_to(&packet, side.to).is_ok() {
                        to_browser += 1;
                    }
                }
            }
        }
        seq = seq.wrapping_add(1);
        period += PTIME;
    }
    (to_phone, to_browser)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let ctl = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut calls = Vec::new();
    let started = Instant::now();
    while calls.len() < a.streams {
        let n = a.batch.min(a.streams - calls.len());
        if let Err(e) = set_up(&ctl, &a, &mut calls, n, a.handshake_timeout).await {
            eprintln!("webrtc_load: call {}: {e}", calls.len() + 1);
            std::process::exit(1);
        }
    }
    let keyed = calls.iter().filter(|c| c.browser.srtp.is_some()).count();
    let nominated = calls.iter().filter(|c| c.browser.dtls_started).count();
    eprintln!(
        "webrtc_load: {keyed} of {} handshakes done in {:.1} s (batches of {})",
        a.streams,
        started.elapsed().as_secs_f64(),
        a.batch
    );
    if keyed < a.streams {
        eprintln!(
            "webrtc_load: {} handshakes did not complete within {} s ({} of them past ICE, \
             stuck in DTLS); their calls send nothing",
            a.streams - keyed,
            a.handshake_timeout.as_secs(),
            nominated - keyed
        );
    }
    // Each browser's SRTP split: outbound to the sender, inbound to the receiver.
    let (mut sending, mut receiving) = (Vec::new(), Vec::new());
    let (mut phones, mut browsers, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for mut c in calls {
        deletes.push(c.delete);
        let Some((inbound, outbound)) = c.browser.srtp.take() else {
            continue;
        };
        sending.push(Sending {
            sock: c.browser_sock.clone(),
            to: c.to_browser_side,
            srtp: Some(outbound),
        });
        sending.push(Sending {
            sock: c.phone_sock.clone(),
            to: c.to_phone_side,
            srtp: None,
        });
        receiving.push(Receiving {
            browser: c.browser,
            inbound,
            relay: c.to_browser_side,
        });
        phones.push(c.phone_sock);
        browsers.push(c.browser_sock);
    }
    let before = a.pid.map(cpu);
    let path = path_cpu(a.pid);
    let now = Instant::now();
    let until = now + Duration::from_secs(a.seconds);
    let sender = std::thread::spawn(move || send_all(&mut sending, now, until));
    let mut all =
        tokio::task::spawn_blocking(move || receive_all(&phones, &browsers, receiving, until))
            .await
            .expect("receiver");
    (all.sent_to_phone, all.sent_to_browser) = sender.join().expect("sender");
    let cpu = a.pid.zip(before).map(|(pid, b)| cpu(pid).saturating_sub(b));
    let path = path_cpu(a.pid).saturating_sub(path);
    // The calls end, and their ports are free for the next run.
    for (i, call) in deletes.into_iter().enumerate() {
        ask(&ctl, a.ng, 3 * i + 2, call).await;
    }
    let [mut to_phone, mut to_browser] = std::mem::take(&mut all.latency_us);
    let mut both = [to_phone.as_slice(), to_browser.as_slice()].concat();
    for l in [&mut both, &mut to_phone, &mut to_browser] {
        l.sort_unstable();
    }
    let pct = |l: &[u32], p: f64| {
        let i = ((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1));
        l.get(i).copied().unwrap_or(0)
    };
    let sent = all.sent_to_phone + all.sent_to_browser;
    let received = all.to_phone + all.to_browser;
    let lost = sent.saturating_sub(received);
    let pct_of = |lost: u64, of: u64| lost as f64 * 100.0 / of.max(1) as f64;
    let to_phone_lost = all.sent_to_phone.saturating_sub(all.to_phone);
    let to_browser_lost = all.sent_to_browser.saturating_sub(all.to_browser);
    print!(
        "streams={} sent={sent} received={received} lost={lost} ({:.3}%) latency_us p50={} \
         p99={} p999={} max={} handshakes={keyed} to_phone_lost={to_phone_lost} ({:.3}%) \
         to_browser_lost={to_browser_lost} ({:.3}%) to_phone_p50={} to_phone_p99={} \
         to_browser_p50={} to_browser_p99={} refused={} garbled={}",
        a.streams,
        pct_of(lost, sent),
        pct(&both, 0.50),
        pct(&both, 0.99),
        pct(&both, 0.999),
        pct(&both, 1.0),
        pct_of(to_phone_lost, all.sent_to_phone),
        pct_of(to_browser_lost, all.sent_to_browser),
        pct(&to_phone, 0.50),
        pct(&to_phone, 0.99),
        pct(&to_browser, 0.50),
        pct(&to_browser, 0.99),
        all.refused,
        all.garbled,
    );
    if let Some(cpu) = cpu {
        let per = cpu.as_micros() as f64 / received.max(1) as f64;
        print!(
            " relay_cpu_ms={} cpu_us_per_packet={per:.2}",
            cpu.as_millis()
        );
    }
    let per = path.as_micros() as f64 / received.max(1) as f64;
    println!(
        " path_cpu_ms={} path_us_per_packet={per:.2}",
        path.as_millis()
    );
    if keyed < a.streams {
        // The figures are of fewer calls than asked for.
        std::process::exit(2);
    }
}
