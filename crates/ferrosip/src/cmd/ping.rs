//! `ferrosip ping URI`: an OPTIONS request, its answer and the round-trip time.

use std::net::{ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sip_message::{Message, Uri};

/// Sends OPTIONS to `uri` over UDP, retransmitting as RFC 3261 §17.1.2.2 does (T1 = 500 ms
/// doubling) for up to `timeout`; prints the first final response and the time it took.
pub(crate) fn run(uri: &str, timeout: Duration) -> anyhow::Result<ExitCode> {
    let parsed = Uri::parse(uri).map_err(|e| anyhow::anyhow!("{uri:?} is not a URI: {e}"))?;
    let Some(sip) = parsed.as_sip() else {
        bail!("{uri:?} is not a sip: URI");
    };
    let host = sip.host_raw.trim_start_matches('[').trim_end_matches(']');
    let dest = (host, sip.port.unwrap_or(5060))
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let bind = if dest.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(bind).context("binding a UDP socket")?;
    sock.connect(dest)
        .with_context(|| format!("reaching {dest}"))?;
    let local = sock.local_addr()?;
    let id = format!("{:x}", std::process::id() ^ local.port() as u32);
    let request = format!(
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKping{id};rport\r\n\
         From: <sip:ping@{local}>;tag={id}\r\nTo: <{uri}>\r\nCall-ID: ping-{id}@ferrosip\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: ferrosip-ping\r\nContent-Length: 0\r\n\r\n"
    );
    let start = Instant::now();
    let mut interval = Duration::from_millis(500);
    let mut next_send = start;
    let mut buf = vec![0u8; 65535];
    while start.elapsed() < timeout {
        if Instant::now() >= next_send {
            sock.send(request.as_bytes()).context("sending OPTIONS")?;
            next_send = Instant::now() + interval;
            interval = (interval * 2).min(Duration::from_secs(4));
        }
        let wait = next_send
            .min(start + timeout)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        sock.set_read_timeout(Some(wait))?;
        let Ok(n) = sock.recv(&mut buf) else { continue };
        let Ok(resp) = Message::parse(buf[..n].to_vec()) else {
            continue;
        };
        match resp.status() {
            Some(code) if code >= 200 => {
                let rtt = start.elapsed();
                let agent = resp
                    .header_str("Server")
                    .or_else(|| resp.header_str("User-Agent"))
                    .map_or(String::new(), |h| format!(" ({})", h.value));
                println!(
                    "{} from {dest} in {:.1} ms{agent}",
                    resp.start_line(),
                    rtt.as_secs_f64() * 1000.0
                );
                return Ok(ExitCode::SUCCESS);
            }
            _ => continue,
        }
    }
    println!("no answer from {dest} within {} s", timeout.as_secs());
    Ok(ExitCode::from(1))
}
