//! A [`MediaRelay`] answering rtpengine's ng protocol on a UDP socket (`ferrosip relay`),
//! so that Kamailio's or OpenSIPS's rtpengine module can use it in place of rtpengine.
//! A retransmitted request (same cookie) gets the first reply again, not a second run.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ng::{Command, Reply, Request, Totals};
use tokio::net::UdpSocket;

use crate::MediaRelay;

/// Replies kept for retransmissions, newest last.
const KEPT: usize = 4096;

#[derive(Default)]
struct Recent {
    replies: HashMap<Vec<u8>, Vec<u8>>,
    order: VecDeque<Vec<u8>>,
}

impl Recent {
    fn keep(&mut self, cookie: Vec<u8>, reply: Vec<u8>) {
        if self.order.len() >= KEPT {
            if let Some(old) = self.order.pop_front() {
                self.replies.remove(&old);
            }
        }
        self.order.push_back(cookie.clone());
        self.replies.insert(cookie, reply);
    }
}

/// Answers ng requests on `sock` until it fails.
pub async fn serve_ng(relay: MediaRelay, sock: UdpSocket) -> std::io::Result<()> {
    let sock = Arc::new(sock);
    let recent = Arc::new(Mutex::new(Recent::default()));
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await?;
        let data = buf[..n].to_vec();
        let request = match Request::parse(&data) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%from, error = %e, "ng: not a request");
                continue;
            }
        };
        let again = recent
            .lock()
            .ok()
            .and_then(|r| r.replies.get(&request.cookie).cloned());
        if let Some(reply) = again {
            let _ = sock.send_to(&reply, from).await;
            continue;
        }
        let (relay, sock, recent) = (relay.clone(), sock.clone(), recent.clone());
        tokio::spawn(async move {
            let reply = answer(&relay, &request.command)
                .await
                .encode(&request.cookie);
            if let Ok(mut r) = recent.lock() {
                r.keep(request.cookie, reply.clone());
            }
            let _ = sock.send_to(&reply, from).await;
        });
    }
}

/// The reply to one command.
async fn answer(relay: &MediaRelay, command: &Command) -> Reply {
    match command {
        Command::Ping => Reply::Pong,
        Command::Media(m, flags) => {
            if let Some(p) = &flags.transport_protocol {
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
                    }
                }
            }
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
            })
        }
    }
}
