//! Driving external media relays over rtpengine's ng protocol (`[relay] ng`): rtpengine
//! itself, or `ferrosip relay` on other hosts. A call's requests all go to the same relay
//! (rendezvous hashing on its Call-ID, so that calls move only off a relay that fails). A
//! relay that does not answer (a retransmission after 500 ms, given up after 1.5 s) is
//! tried last for 30 s; the answers and deletes of a call go on to the next relay until one
//! knows the call (its offer may have failed over there). Replies are taken only from the
//! relays, matched by random cookies.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ng::{Command, Flags, Reply, Request};
use relay::{MediaError, MediaOp, MediaRequest};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// How long a relay that did not answer is skipped.
const SKIP: Duration = Duration::from_secs(30);

/// The external relays and the requests waiting for their replies.
pub(crate) struct NgRelays {
    sock: Arc<UdpSocket>,
    relays: Vec<(SocketAddr, Mutex<Option<Instant>>)>,
    waiting: Arc<Mutex<HashMap<Vec<u8>, oneshot::Sender<Reply>>>>,
}

impl NgRelays {
    /// A client of these relays, with its socket's receive task on the current runtime.
    pub(crate) async fn start(relays: Vec<SocketAddr>) -> std::io::Result<Arc<NgRelays>> {
        let bind = match relays.first() {
            Some(SocketAddr::V6(_)) => SocketAddr::from(([0u16; 8], 0)),
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let sock = Arc::new(UdpSocket::bind(bind).await?);
        let waiting: Arc<Mutex<HashMap<Vec<u8>, oneshot::Sender<Reply>>>> = Arc::default();
        let (rx_sock, rx_waiting) = (sock.clone(), waiting.clone());
        let known = relays.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let (n, from) = match rx_sock.recv_from(&mut buf).await {
                    Ok(r) => r,
                    Err(e) => {
                        // (An ICMP error from a relay that is down, say: not the end.)
                        tracing::debug!(error = %e, "ng: receive failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                if !known.contains(&from) {
                    continue;
                }
                let Ok((cookie, reply)) = Reply::parse(&buf[..n]) else {
                    continue;
                };
                let waiter = rx_waiting.lock().ok().and_then(|mut w| w.remove(&cookie));
                if let Some(w) = waiter {
                    let _ = w.send(reply);
                }
            }
        });
        Ok(Arc::new(NgRelays {
            sock,
            relays: relays.into_iter().map(|a| (a, Mutex::new(None))).collect(),
            waiting,
        }))
    }

    /// The relays in the order a call tries them: highest hash of (Call-ID, relay) first,
    /// those skipped for failing last.
    fn order(&self, call_id: &str) -> Vec<usize> {
        let now = Instant::now();
        let mut order: Vec<(bool, u64, usize)> = self
            .relays
            .iter()
            .enumerate()
            .map(|(i, (addr, until))| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (call_id, addr).hash(&mut h);
                let skipped = until.lock().ok().and_then(|s| *s).is_some_and(|t| t > now);
                (skipped, u64::MAX - h.finish(), i)
            })
            .collect();
        order.sort();
        order.into_iter().map(|(_, _, i)| i).collect()
    }

    /// Applies a request on the call's relay: an offer on the first that answers, an
    /// answer or delete on the first that knows the call.
    pub(crate) async fn apply(&self, req: &MediaRequest) -> Result<Vec<u8>, MediaError> {
        let flags = Flags {
            replace_origin: true,
            ice_remove: true,
            ..Flags::default()
        };
        if req.op == MediaOp::Answer && req.sdp.is_empty() {
            // A 2xx without SDP: ng has nothing to say it with, nor a limit it would lift.
            return Ok(Vec::new());
        }
        let offer = req.op == MediaOp::Offer;
        let mut refused = MediaError::Unavailable;
        for i in self.order(&req.call_id) {
            let (addr, skip) = &self.relays[i];
            let mut cookie = [0u8; 12];
            let _ = getrandom::fill(&mut cookie);
            let cookie: String = cookie.iter().map(|b| format!("{b:02x}")).collect();
            let request = Request {
                cookie: cookie.into_bytes(),
                command: Command::Media(req.clone(), flags.clone()),
            };
            match self.ask(*addr, &request).await {
                Some(Reply::Ok { sdp }) => return Ok(sdp.unwrap_or_default()),
                Some(Reply::Error(why)) => {
                    // (Debug: a stranger's SDP can make every request refused.)
                    tracing::debug!(relay = %addr, call_id = %req.call_id, error = %why, "media relay refused");
                    let why = why.to_ascii_lowercase();
                    refused = match req.op {
                        _ if why.contains("sdp") => MediaError::BadSdp,
                        MediaOp::Offer => MediaError::NoPorts,
                        _ => MediaError::NoSession,
                    };
                    // Another relay may hold the call (its offer failed over there).
                    if offer || !(why.contains("unknown") || why.contains("not found")) {
                        return Err(refused);
                    }
                }
                Some(_) => return Err(MediaError::Unavailable),
                None => {
                    tracing::warn!(relay = %addr, "media relay does not answer: new calls skip it for 30 s");
                    if let Ok(mut s) = skip.lock() {
                        *s = Some(Instant::now() + SKIP);
                    }
                }
            }
        }
        Err(refused)
    }

    /// Sends a request to `addr`, once more after 500 ms; its reply, or `None` after 1.5 s.
    async fn ask(&self, addr: SocketAddr, request: &Request) -> Option<Reply> {
        let (tx, mut rx) = oneshot::channel();
        self.waiting.lock().ok()?.insert(request.cookie.clone(), tx);
        let data = request.encode();
        let mut reply = None;
        for wait in [500, 1000] {
            if self.sock.send_to(&data, addr).await.is_err() {
                break;
            }
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(wait), &mut rx).await {
                reply = r.ok();
                break;
            }
        }
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(&request.cookie);
        }
        reply
    }
}
