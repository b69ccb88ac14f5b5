//! The media relay's IO over the sans-IO [`relay`] crate. Each of `threads` threads runs a
//! shard: its own [`relay::Relay`] over its own part of the port range and the sockets of
//! its sessions, all on that thread, so no packet takes a lock. Packets move through
//! io_uring where the kernel allows it ([`uring`]: batches, no system call per packet),
//! else through a tokio task per socket ([`epoll`]). A call's session lives in the shard
//! its Call-ID hashes to; offers, answers and deletes reach it over a channel.
//! [`serve_ng`] answers rtpengine's ng protocol with it, for other proxies.

mod destination;
mod epoll;
mod kernel;
mod ng_server;
mod shard;
mod uring;

pub use ng_server::serve_ng;

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use relay::{
    Carrier, MediaError, MediaOp, MediaRequest, Origin, Peer, SessionId, SessionStats, Totals,
    WebRtcStream,
};
use sdp::Transport;
use tokio::sync::{mpsc, oneshot};

use crate::destination::Destinations;
use crate::shard::Control;

/// Where and how the relay works.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The address to bind the media ports on.
    pub bind: IpAddr,
    /// The address the SDP names for them (the public address of a server behind a
    /// cloud provider's NAT, which is on no interface).
    pub announce: IpAddr,
    /// The IPv6 address the SDP names to parties on IPv6, when the relay bridges the
    /// families (bound to `::`, whose sockets take both).
    pub announce6: Option<IpAddr>,
    /// The ports (30000–40000 by default), shared out between the threads.
    pub ports: RangeInclusive<u16>,
    /// A session with no packet for this long ends (60 s by default).
    pub timeout: Duration,
    /// Threads, each with a shard of the sessions (one per core by default).
    pub threads: usize,
    /// Move packets with io_uring where the kernel allows it (else, or when false, with a
    /// task per socket).
    pub io_uring: bool,
    /// The packet threads run under SCHED_FIFO at this priority (1–99; 0: normal
    /// scheduling). Where it is not allowed, a warning, and normal scheduling.
    pub realtime_priority: u8,
    /// Most streams one source (an IPv4 address, an IPv6 /64) may hold in calls not
    /// answered yet (0: no limit): strangers may call subscribers without authenticating.
    pub max_ringing_per_source: usize,
    /// Sources without that limit: trusted peers (a carrier's trunk rings many calls).
    pub trusted: Vec<ipnet::IpNet>,
    /// Latched streams are forwarded in the kernel ([`relay_kernel`]) where it
    /// allows it (root, Linux 6.6); else, or when false, every packet by the threads.
    pub kernel: bool,
}

/// A running relay; cheap to clone, and usable from any thread or runtime.
#[derive(Debug, Clone)]
pub struct MediaRelay {
    shards: Vec<ShardHandle>,
    /// How a Call-ID picks its shard: keyed at random, so that a stranger cannot choose
    /// Call-IDs that all land on one.
    by_call: std::collections::hash_map::RandomState,
    /// The relay moves packets with io_uring.
    uring: bool,
    /// The relay bridges browsers (it has a DTLS certificate).
    webrtc: bool,
    announce: IpAddr,
    announce6: Option<IpAddr>,
    /// Where media may be relayed to.
    destinations: Destinations,
}

/// Raises the soft limit on open files to the hard one: the relay has a socket per port
/// (10,000 by default), and a login shell's soft limit is often 1,024.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let soft = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                tracing::debug!(from = soft, to = limit.rlim_max, "open files limit raised");
            }
        }
    }
}

/// Puts the calling thread, shard `i`'s, under SCHED_FIFO at `priority` (0: leaves it as
/// it is). Where that is not allowed, shard 0 says so and the thread goes on as it was.
fn set_realtime(priority: u8, i: usize) {
    if priority == 0 {
        return;
    }
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: pid 0 is the calling thread; param lives through the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 && i == 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(priority, %error, "media relay: cannot run at real-time priority (it needs root, CAP_SYS_NICE or LimitRTPRIO); normal scheduling");
    }
}

/// The way to a shard: its channel, and for an io_uring shard the socket that wakes it.
#[derive(Debug, Clone)]
struct ShardHandle {
    tx: mpsc::UnboundedSender<Control>,
    wake: Option<Arc<UnixDatagram>>,
}

impl ShardHandle {
    fn send(&self, msg: Control) -> Result<(), ()> {
        self.tx.send(msg).map_err(|_| ())?;
        if let Some(wake) = &self.wake {
            // A full socket has a wake-up pending already.
            let _ = wake.send(&[1]);
        }
        Ok(())
    }
}

/// Starts shard `i` of `cfg`'s, moving packets with io_uring if `uring` and its ring can
/// be made, facing browsers with `identity` if given; says whether it could.
fn spawn_shard(
    cfg: &RelayConfig,
    i: usize,
    uring: bool,
    identity: Option<&webrtc::Identity>,
    kernel: Option<&Arc<relay_kernel::KernelPath>>,
) -> std::io::Result<(ShardHandle, bool)> {
    let n = cfg.threads.max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let ports = shard::ports_of(&cfg.ports, i, n);
    // Each shard has its share of the calls, and of the limit.
    let limits = shard::Limits {
        timeout: cfg.timeout,
        // Several threads: at least two offers' worth each (a source's calls do not
        // spread evenly over them).
        ringing_per_source: match (cfg.max_ringing_per_source, n) {
            (0, _) => 0,
            (max, 1) => max,
            (max, n) => max.div_ceil(n).max(2 * MAX_STREAMS),
        },
        exempt: cfg.trusted.clone(),
        webrtc: identity.map(|id| (id.clone(), cfg.announce)),
        kernel: kernel.cloned(),
    };
    let bind = cfg.bind;
    let priority = cfg.realtime_priority;
    let thread = std::thread::Builder::new().name(format!("ferrosip-relay-{i}"));
    if !uring {
        thread.spawn(move || {
            set_realtime(priority, i);
            epoll::run(bind, ports, limits, rx);
        })?;
        return Ok((ShardHandle { tx, wake: None }, false));
    }
    let (wake, woken) = UnixDatagram::pair()?;
    wake.set_nonblocking(true)?;
    woken.set_nonblocking(true)?;
    // The ring is made on its thread (it alone submits), which says whether it could.
    let (made, ring) = std::sync::mpsc::channel();
    // A slot in the ring's table of files for each port's socket, and one more while an
    // old socket of the port closes.
    let slots = u32::try_from(2 * ports.len()).unwrap_or(u32::MAX);
    thread.spawn(move || match uring::UringSockets::new() {
        Ok(u) => {
            let u = u.with_slots(slots);
            set_realtime(priority, i);
            let _ = made.send(None);
            uring::run(u, bind, ports, limits, rx, woken);
        }
        Err(e) => {
            let _ = made.send(Some(e));
            set_realtime(priority, i);
            epoll::run(bind, ports, limits, rx);
        }
    })?;
    match ring.recv() {
        Ok(None) => Ok((
            ShardHandle {
                tx,
                wake: Some(Arc::new(wake)),
            },
            true,
        )),
        failed => {
            let error = failed.ok().flatten().map(|e| e.to_string());
            tracing::warn!(
                ?error,
                "media relay: no io_uring ring; this thread moves packets without it"
            );
            Ok((ShardHandle { tx, wake: None }, false))
        }
    }
}

/// What a browser's SDP says of one stream to its leg (`None`: no browser's).
fn remote_of(w: &sdp::WebRtcMedia) -> Option<webrtc::Remote> {
    Some(webrtc::Remote {
        ice: w.ice.clone().filter(|_| w.is_webrtc())?,
        fingerprint: w.fingerprint.clone()?,
        setup: w.setup,
        mid: w.mid.clone(),
    })
}

/// The kernel's forwarding path, or a warning saying why not.
fn start_kernel(bind: IpAddr) -> Option<Arc<relay_kernel::KernelPath>> {
    match relay_kernel::KernelPath::start(bind) {
        Ok((path, interfaces)) => {
            tracing::info!(
                ?interfaces,
                "media relay: latched streams are forwarded in the kernel"
            );
            Some(Arc::new(path))
        }
        Err(e) => {
            tracing::warn!(error = %e, "media relay: no forwarding in the kernel; every packet through the relay's threads");
            None
        }
    }
}

/// Streams an SDP may have for the relay to take it (each takes two port pairs).
const MAX_STREAMS: usize = 8;

impl MediaRelay {
    /// Starts the threads.
    pub fn start(cfg: &RelayConfig) -> std::io::Result<MediaRelay> {
        let n = cfg.threads.max(1);
        raise_open_files_limit();
        let mut rings = cfg.io_uring && uring::available();
        // One certificate for the relay's life: its fingerprint goes in every SDP to a
        // browser.
        let identity = match webrtc::Identity::generate() {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "media relay: no DTLS certificate; browsers' media is not bridged");
                None
            }
        };
        let kernel = cfg.kernel.then(|| start_kernel(cfg.bind)).flatten();
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let (shard, ring) = spawn_shard(cfg, i, rings, identity.as_ref(), kernel.as_ref())?;
            rings &= ring;
            shards.push(shard);
        }
        Ok(MediaRelay {
            shards,
            by_call: std::collections::hash_map::RandomState::new(),
            uring: rings,
            webrtc: identity.is_some(),
            announce: cfg.announce,
            announce6: cfg.announce6,
            destinations: Destinations::of_relay(cfg),
        })
    }

    /// True when packets move through io_uring, on every thread.
    pub fn uses_io_uring(&self) -> bool {
        self.uring
    }

    /// The shard of a call (all its sessions, whatever their tags).
    fn shard(&self, call_id: &str) -> &ShardHandle {
        let h = self.by_call.hash_one(call_id);
        &self.shards[(h % self.shards.len() as u64) as usize]
    }

    async fn ask<T>(
        &self,
        call_id: &str,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.shard(call_id).send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// Applies a proxy's request: an offer or an answer gives its SDP rewritten to name the
    /// relay (the session made or updated on the way), a delete ends the call's session
    /// (and gives an empty body).
    pub async fn apply(&self, req: &MediaRequest) -> Result<Vec<u8>, MediaError> {
        let (sender, other) = req.tags();
        if req.op == MediaOp::Delete {
            let tags = (sender.to_owned(), other.to_owned());
            let call_id = req.call_id.clone();
            self.ask(&req.call_id, |reply| Control::Delete {
                call_id,
                tags,
                reply,
            })
            .await;
            return Ok(Vec::new());
        }
        // The callee's 2xx without SDP only says the call is answered, its media as it was.
        let answered_only =
            req.sdp.is_empty() && req.op == MediaOp::Answer && req.carrier == Some(Carrier::Final);
        let session = match answered_only {
            true => None,
            false => Some(sdp::Session::parse(&req.sdp).map_err(|_| MediaError::BadSdp)?),
        };
        if session
            .as_ref()
            .is_some_and(|s| s.media.len() > MAX_STREAMS)
        {
            return Err(MediaError::BadSdp);
        }
        let browser = match &session {
            Some(s) if self.webrtc => s.webrtc(),
            _ => Vec::new(),
        };
        let is_browser = |i: usize| browser.get(i).is_some_and(|w| w.is_webrtc());
        let media: Vec<_> = session.as_ref().map_or(Vec::new(), |s| {
            relay::media_addresses(s)
                .into_iter()
                .enumerate()
                .map(|(i, m)| match m {
                    // A browser's media comes from where its checks do, whatever its
                    // SDP's address (often 0.0.0.0, port 9): its leg learns it.
                    _ if is_browser(i) && s.media[i].port != 0 => {
                        let ip = req.source.unwrap_or(IpAddr::from([0, 0, 0, 0]));
                        Some(SocketAddr::new(ip, s.media[i].port))
                    }
                    m => self.destinations.of(m?),
                })
                .collect()
        });
        let receiver = match req.receiver {
            Peer::AsSender => None,
            Peer::WebRtc => Some(true),
            Peer::Plain => Some(false),
        };
        // A phone's SRTP keyed in its SDP (SDES: `RTP/SAVP` with `a=crypto`) the relay
        // cannot read: such a stream goes on as it came, which a browser refuses.
        let sdes = |i: usize| {
            session.as_ref().is_some_and(|s| {
                s.media[i]
                    .proto
                    .to_ascii_uppercase()
                    .starts_with("RTP/SAVP")
            })
        };
        let webrtc: Vec<WebRtcStream> = match self.webrtc {
            false => Vec::new(),
            true => (0..media.len())
                .map(|i| WebRtcStream {
                    sender: browser.get(i).and_then(remote_of),
                    receiver: if sdes(i) { Some(false) } else { receiver },
                })
                .collect(),
        };
        let marks = session.as_ref().map(shard::Marks::of);
        // An offer in a request inside a dialog (a re-INVITE) that makes a session (the
        // call's ended on a long silence) is an answered call's. (Over ng an offer with a
        // To tag may be a callee's in its 18x, while the call rings.)
        let in_dialog = req.op == MediaOp::Offer
            && !req.to_tag.is_empty()
            && req.carrier == Some(Carrier::Request);
        let (call_id, sender, other) = (req.call_id.clone(), sender.to_owned(), other.to_owned());
        let create = req.op == MediaOp::Offer;
        let origin = Origin {
            from: req.source,
            // An offer in the callee's 2xx: an answered call, charged to no one.
            charged: match req.carrier {
                Some(Carrier::Final) => None,
                _ => req.caller.or(req.source),
            },
            in_response: matches!(req.carrier, Some(Carrier::Provisional | Carrier::Final)),
            authenticated: req.authenticated,
            in_dialog,
        };
        let updated = self
            .ask(&req.call_id, |reply| Control::Update {
                call_id,
                sender,
                other,
                media,
                marks,
                origin,
                create,
                carrier: req.carrier,
                webrtc,
                reply,
            })
            .await
            .ok_or(MediaError::Unavailable)?;
        let (side, ports, legs) = updated?;
        let Some(session) = session else {
            return Ok(Vec::new());
        };
        let announce = match (req.receiver_ipv6, self.announce6) {
            (true, Some(v6)) => v6,
            _ => self.announce,
        };
        // Each stream as its receiver speaks it: a browser through the relay's leg, a
        // phone plain (also when the sender is a browser).
        let transports = (0..session.media.len())
            .map(|i| match legs.get(i).cloned().flatten() {
                Some(leg) => Some(Transport::WebRtc(leg)),
                None => is_browser(i).then_some(Transport::Plain),
            })
            .collect();
        Ok(relay::relayed_sdp(
            &session, side, &ports, announce, transports,
        ))
    }

    /// The counters of every shard, added.
    pub async fn totals(&self) -> Totals {
        let mut sum = Totals::default();
        for shard in &self.shards {
            let (reply, rx) = oneshot::channel();
            if shard.send(Control::Totals { reply }).is_ok() {
                sum += rx.await.unwrap_or_default();
            }
        }
        sum
    }

    /// Every session, with its counters: (offerer, answerer) per stream.
    pub async fn sessions(&self) -> Vec<(SessionId, SessionStats)> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let (reply, rx) = oneshot::channel();
            if shard.send(Control::List { reply }).is_ok() {
                all.extend(rx.await.unwrap_or_default());
            }
        }
        all
    }
}
