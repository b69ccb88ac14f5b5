//! A [`MediaRelay`] answering rtpengine's ng protocol on a UDP socket (`ferrosip relay`),
//! so that Kamailio's or OpenSIPS's rtpengine module can use it in place of rtpengine.
//! Only the proxies allowed are answered (anyone else could list and end every call); a
//! retransmitted request (same sender and cookie) gets the first reply again, not a second
//! run; at most [`IN_FLIGHT`] requests are worked on at once.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ng::{Command, Reply, Request, Totals};
use relay::Peer;
use tokio::net::UdpSocket;

use crate::MediaRelay;

/// Replies kept for retransmissions, newest last.
const KEPT: usize = 4096;

/// Requests worked on at once; more are dropped (the proxy retransmits).
const IN_FLIGHT: usize = 1024;

/// A request's sender and cookie.
type Key = (SocketAddr, Vec<u8>);

#[derive(Default)]
struct Recent {
    replies: HashMap<Key, Vec<u8>>,
    order: VecDeque<Key>,
}

impl Recent {
    fn keep(&mut self, cookie: Key, reply: Vec<u8>) {
        if self.order.len() >= KEPT {
            if let Some(old) = self.order.pop_front() {
                self.replies.remove(&old);
            }
        }
        self.order.push_back(cookie.clone());
        self.replies.insert(cookie, reply);
    }
}

/// Answers the ng requests of the senders `allowed` accepts on `sock`, until it fails.
pub async fn serve_ng(
    relay: MediaRelay,
    sock: UdpSocket,
    allowed: impl Fn(IpAddr) -> bool,
) -> std::io::Result<()> {
    let sock = Arc::new(sock);
    let recent = Arc::new(Mutex::new(Recent::default()));
    let busy = Arc::new(AtomicUsize::new(0));
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            // A passing error (ICMP from a proxy that went away): the socket goes on.
            Err(e) if e.kind() != std::io::ErrorKind::NotConnected => {
                tracing::debug!(error = %e, "ng: receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if !allowed(from.ip()) {
            tracing::debug!(%from, "ng: not an allowed proxy ([relay] ng_allow)");
            continue;
        }
        let data = buf[..n].to_vec();
        let request = match Request::parse(&data) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%from, error = %e, "ng: not a request");
                // Kamailio and OpenSIPS take a relay that does not answer for dead.
                if let Some(cookie) = ng::cookie_of(&data) {
                    let reply = Reply::Error(e.to_string()).encode(cookie);
                    let _ = sock.send_to(&reply, from).await;
                }
                continue;
            }
        };
        let key = (from, request.cookie.clone());
        let again = recent
            .lock()
            .ok()
            .and_then(|r| r.replies.get(&key).cloned());
        if let Some(reply) = again {
            let _ = sock.send_to(&reply, from).await;
            continue;
        }
        if busy.fetch_add(1, Ordering::AcqRel) >= IN_FLIGHT {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let (relay, sock) = (relay.clone(), sock.clone());
        let (recent, busy) = (recent.clone(), busy.clone());
        tokio::spawn(async move {
            let reply = answer(&relay, &request.command)
                .await
                .encode(&request.cookie);
            if let Ok(mut r) = recent.lock() {
                r.keep(key, reply.clone());
            }
            let _ = sock.send_to(&reply, from).await;
            busy.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// The reply to one command.
async fn answer(relay: &MediaRelay, command: &Command) -> Reply {
    match command {
        Command::Ping => Reply::Pong,
        Command::Media(m, flags) => {
            // A browser's or a phone's the relay bridges; anything else only as offered.
            if let Some(p) = flags
                .transport_protocol
                .as_ref()
                .filter(|_| m.receiver == Peer::AsSender)
            {
                let sdp = String::from_utf8_lossy(&m.sdp);
                let offered = sdp
                    .lines()
                    .filter(|l| l.starts_with("m="))
                    .all(|l| l.contains(p.as_str()));
                if !offered {
                    return Reply::Error(format!(
                        "transport-protocol {p} is not the SDP's: not supported"
                    ));
                }
            }
            match relay.apply(m).await {
                Ok(sdp) if m.op == relay::MediaOp::Delete => {
                    let _ = sdp;
                    Reply::Ok { sdp: None }
                }
                Ok(sdp) => Reply::Ok { sdp: Some(sdp) },
                Err(e) => Reply::Error(e.to_string()),
            }
        }
        Command::Query { call_id } => {
            let mut t = Totals::default();
            let mut rtcp = (0, 0);
            for (id, streams) in relay.sessions().await {
                if &id.call_id != call_id {
                    continue;
                }
                t.sessions += 1;
                for (a, b) in streams.iter().flatten() {
                    for side in [a, b] {
                        t.packets += side.packets;
                        t.bytes += side.bytes;
                        t.dropped += side.dropped;
                        rtcp.0 += side.rtcp_packets;
                        rtcp.1 += side.rtcp_bytes;
                    }
                }
            }
            t.rtcp = Some(rtcp);
            match t.sessions {
                0 => Reply::Error("Unknown call-id".into()),
                _ => Reply::Counters(t),
            }
        }
        Command::List => {
            let mut calls: Vec<String> = relay
                .sessions()
                .await
                .into_iter()
                .map(|(id, _)| id.call_id)
                .collect();
            calls.sort();
            calls.dedup();
            Reply::Calls(calls)
        }
        Command::Statistics => {
            let t = relay.totals().await;
            Reply::Counters(Totals {
                sessions: t.sessions as u64,
                packets: t.packets,
                bytes: t.bytes,
                dropped: t.dropped,
                rtcp: None,
            })
        }
    }
}
