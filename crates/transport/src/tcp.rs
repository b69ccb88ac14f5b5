//! Connections over TCP: plain, TLS, WebSocket and secure WebSocket. Listeners, a reader and
//! a writer task per connection, and a table of open connections by peer address so
//! responses and requests reuse them. How many are open is limited, in total and per remote
//! IP (those accepted and ours apart), over all four together; a connection counts from its
//! first byte, before its TLS or WebSocket handshake.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::tls::{self, Tls};
use crate::wire::{Incoming, Reader, StreamReader, StreamWriter, Writer};
use crate::{ws, Handler, Protocol, Source};

/// Outgoing queue depth per connection: a send to a full queue fails at once.
const QUEUE: usize = 1024;

/// Bytes an outgoing queue may hold (a message larger than this still goes alone).
const QUEUE_BYTES: usize = 1 << 20;

/// A connection whose peer takes in nothing for this long is closed (its queue with it).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a TLS or WebSocket handshake may take, either way.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many TCP connections may be open at once; 0 is no limit. An accepted connection over
/// a limit is closed at once; a connection of ours over `total` is not opened (a send error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// All connections, accepted and ours.
    pub total: usize,
    /// Connections with one remote source, accepted and ours: an IPv4 address, or an IPv6
    /// /64 as a whole (one host owns a /64 and can rotate through it).
    pub per_ip: usize,
}

impl Default for TcpLimits {
    /// 10 000 in total: each costs a file descriptor, two tasks and a read buffer of up to
    /// 12 KiB, so about 150 MB at worst; a peer that stops reading holds, for at most 10 s
    /// more, an outgoing queue of up to 1024 messages and 1 MiB. 100 per IP: the phones of
    /// an office behind one NAT, while one address holds at most 1% of the total.
    fn default() -> Self {
        TcpLimits {
            total: 10_000,
            per_ip: 100,
        }
    }
}

/// The source a remote address counts against: its IPv4 address, or its IPv6 /64.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((v6.to_bits() & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// Connections open: in total, and per remote source.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Accepted, by remote source.
    per_ip: HashMap<IpAddr, usize>,
    /// Ours, by remote destination.
    ours_per_ip: HashMap<IpAddr, usize>,
}

impl Open {
    /// The count of `source`'s connections, accepted or ours.
    fn of(&mut self, source: IpAddr, ours: bool) -> &mut usize {
        match ours {
            false => self.per_ip.entry(source).or_default(),
            true => self.ours_per_ip.entry(source).or_default(),
        }
    }
}

/// A connection's place among the open ones, given back when it is dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    /// The remote end of the connection.
    source: IpAddr,
    /// We opened it.
    ours: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        let n = open.of(self.source, self.ours);
        *n = n.saturating_sub(1);
        if *n == 0 {
            match self.ours {
                false => open.per_ip.remove(&self.source),
                true => open.ours_per_ip.remove(&self.source),
            };
        }
    }
}

/// The outgoing queue of a connection, bounded in messages and in bytes.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Bytes>,
    state: Arc<QueueState>,
    /// The name a TLS connection we opened checked the server's certificate against
    /// (lower case); none for the others.
    name: Option<Arc<str>>,
}

/// What the senders, the reader and the writer of a connection share.
#[derive(Default)]
struct QueueState {
    /// Bytes queued and not yet written.
    bytes: AtomicUsize,
    /// Until when the connection stays open however quiet ([`since_start`] milliseconds):
    /// it carries a registration.
    keep_until: AtomicU64,
}

/// Milliseconds since the first call (a clock for [`QueueState::keep_until`]).
fn since_start() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let ms = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl Queue {
    /// Queues `data`, or fails at once when the queue is full or closed.
    fn push(&self, data: Bytes) -> std::io::Result<()> {
        let len = data.len();
        let taken = self
            .state
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held + len <= QUEUE_BYTES).then_some(held + len)
            });
        let full = || std::io::Error::new(std::io::ErrorKind::WouldBlock, "tcp send queue full");
        taken.map_err(|_| full())?;
        self.tx.try_send(data).map_err(|e| {
            self.state.bytes.fetch_sub(len, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => full(),
                mpsc::error::TrySendError::Closed(_) => {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed")
                }
            }
        })
    }
}

/// Open connections of one protocol over TCP (TCP, TLS, WS or WSS) by peer address.
#[derive(Clone)]
pub struct TcpConnections {
    /// TCP, TLS (with `tls`), WS, or WSS (with `tls`).
    protocol: Protocol,
    tls: Option<Tls>,
    conns: Arc<Mutex<Conns>>,
    /// The connections being opened, each shared by the sends that wait for it.
    connecting: Arc<Mutex<HashMap<ConnectKey, Arc<Connecting>>>>,
    open: Arc<Mutex<Open>>,
    handler: Arc<dyn Handler>,
    idle: Duration,
    write_timeout: Duration,
    limits: TcpLimits,
}

/// A connection being opened: to this address, checking this name.
type ConnectKey = (SocketAddr, Option<Arc<str>>);

/// How the opening of a connection ended, for every send that waited for it.
type Connecting = tokio::sync::OnceCell<Result<Queue, (std::io::ErrorKind, String)>>;

/// The open connections: by peer address (the last one to each), and the TLS ones we
/// opened also by the name they checked, for requests to that name alone (RFC 5922 §4: a
/// connection is reused for the identity it verified, not for any name leading to its
/// address).
#[derive(Default)]
struct Conns {
    by_addr: HashMap<SocketAddr, Queue>,
    by_name: HashMap<(SocketAddr, Arc<str>), Queue>,
}

impl std::fmt::Debug for TcpConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConnections")
            .field("protocol", &self.protocol)
            .field("idle", &self.idle)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl TcpConnections {
    /// A table of TCP connections that deliver messages to `handler`, close after `idle`
    /// without traffic, and are at most `limits`.
    pub fn new(handler: Arc<dyn Handler>, idle: Duration, limits: TcpLimits) -> Self {
        TcpConnections {
            protocol: Protocol::Tcp,
            tls: None,
            conns: Arc::default(),
            connecting: Arc::default(),
            open: Arc::default(),
            handler,
            idle,
            write_timeout: WRITE_TIMEOUT,
            limits,
        }
    }

    /// A table of TLS connections with `tls`'s certificates and roots, counted in the
    /// same limits as this one's.
    pub fn with_tls(&self, tls: Tls) -> Self {
        self.with(Protocol::Tls, Some(tls))
    }

    /// A table of WebSocket connections (secure with `tls`), counted in the same limits as
    /// this one's. They are only ever accepted: a browser cannot be connected to.
    pub fn websocket(&self, tls: Option<Tls>) -> Self {
        let protocol = match tls {
            Some(_) => Protocol::Wss,
            None => Protocol::Ws,
        };
        self.with(protocol, tls)
    }

    fn with(&self, protocol: Protocol, tls: Option<Tls>) -> Self {
        TcpConnections {
            protocol,
            tls,
            conns: Arc::default(),
            connecting: Arc::default(),
            ..self.clone()
        }
    }

    /// A place for one more connection with `source`, accepted or `ours`; `None` when that
    /// would exceed a limit. The limit per IP counts those accepted from an address and
    /// those we opened to it apart: ours do not take the places of those who connect to us.
    fn slot(&self, source: IpAddr, ours: bool) -> Option<Slot> {
        let over = |n: usize, limit: usize| limit > 0 && n >= limit;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if over(open.total, self.limits.total) {
            return None;
        }
        let per_ip = self.limits.per_ip;
        let n = open.of(source, ours);
        if over(*n, per_ip) {
            return None;
        }
        *n += 1;
        open.total += 1;
        Some(Slot {
            open: self.open.clone(),
            source,
            ours,
        })
    }

    /// Takes an accepted connection into the table (a TLS or WebSocket one once its
    /// handshakes are done), or closes it at once when it is over a limit.
    fn accepted(&self, stream: TcpStream, remote: SocketAddr, local: SocketAddr) {
        let Some(slot) = self.slot(source_of(remote.ip()), false) else {
            drop(stream);
            tracing::debug!(%remote, protocol = %self.protocol, "too many connections: closed");
            let src = Source {
                protocol: self.protocol,
                remote,
                local,
            };
            return self.handler.on_refused(src);
        };
        let _ = stream.set_nodelay(true);
        if self.tls.is_none() && !self.protocol.is_websocket() {
            self.run_stream(stream, remote, local, slot, None);
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Some(tls) = &this.tls else {
                return this.upgrade(stream, remote, local, slot).await;
            };
            let acceptor = tls.acceptor();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => this.upgrade(stream, remote, local, slot).await,
                // A client's certificate refused is the operator's to know; anything else
                // (a scanner, a client that gave up) is not worth a line each.
                Ok(Err(e)) if tls::bad_certificate(&e) => {
                    tracing::info!(%remote, error = %e, "TLS handshake failed");
                }
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }

    /// Runs an accepted (and decrypted) stream: as a WebSocket once its opening handshake
    /// agreed on SIP, or as a byte stream.
    async fn upgrade<S>(&self, stream: S, remote: SocketAddr, local: SocketAddr, slot: Slot)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        if !self.protocol.is_websocket() {
            self.run_stream(stream, remote, local, slot, None);
            return;
        }
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, ws::accept(stream)).await {
            Ok(Ok((reader, writer))) => {
                self.run(reader, writer, remote, local, slot, None);
            }
            Ok(Err(e)) => tracing::debug!(%remote, error = %e, "WebSocket handshake failed"),
            Err(_) => tracing::debug!(%remote, "WebSocket handshake timed out"),
        }
    }

    /// Listens on `addr` and accepts connections until the runtime stops. An IPv6 address
    /// is IPv6 only (IPV6_V6ONLY, as for UDP): `[::]` beside `0.0.0.0` on one port is two
    /// listeners, not a clash, and IPv4 peers never show up as mapped addresses.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if addr.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        sock.set_reuse_address(true)?;
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)?;
        let listener = TcpListener::from_std(sock.into())?;
        let local = listener.local_addr()?;
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => this.accepted(stream, remote, local),
                    Err(e) => {
                        tracing::warn!(%local, protocol = %this.protocol, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(local)
    }

    /// Keeps the connection from `remote` open for `time` however quiet it is (a client
    /// registered over it: requests for it come this way, RFC 5626 §5.2), or again only
    /// while it is not idle (`time` zero).
    pub fn keep_open(&self, remote: SocketAddr, time: Duration) {
        if let Some(q) = self.lock().by_addr.get(&remote) {
            let ms = u64::try_from(time.as_millis()).unwrap_or(u64::MAX);
            let until = since_start().saturating_add(ms);
            q.state.keep_until.store(until, Ordering::Relaxed);
        }
    }

    /// True when a connection to `addr` is open.
    pub fn has_connection(&self, addr: SocketAddr) -> bool {
        self.lock().by_addr.contains_key(&addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends over the open connection to `addr`, or connects first (never over WebSocket:
    /// without a connection the peer is out of reach, `NotConnected`). With `name` (over
    /// TLS: `addr` was found by looking it up), only over a connection that checked the
    /// server's certificate against that name.
    pub async fn send(
        &self,
        addr: SocketAddr,
        name: Option<&str>,
        data: Bytes,
    ) -> std::io::Result<()> {
        let name: Option<Arc<str>> = name
            .filter(|_| self.tls.is_some())
            .map(|n| n.to_ascii_lowercase().into());
        let existing = {
            let conns = self.lock();
            match &name {
                Some(n) => conns.by_name.get(&(addr, n.clone())).cloned(),
                None => conns.by_addr.get(&addr).cloned(),
            }
        };
        let queue = match existing {
            Some(queue) => queue,
            None if self.protocol.is_websocket() => {
                let gone = "no WebSocket connection from that address";
                return Err(std::io::Error::new(std::io::ErrorKind::NotConnected, gone));
            }
            None => self.connect_once(addr, name).await?,
        };
        queue.push(data)
    }

    /// [`Self::connect`], once for all the sends to `addr` (and `name`) that need it at the
    /// same time: a burst of requests to a new hop shares one connection, or one failure.
    async fn connect_once(
        &self,
        addr: SocketAddr,
        name: Option<Arc<str>>,
    ) -> std::io::Result<Queue> {
        let key = (addr, name.clone());
        let attempt = {
            let mut connecting = self.connecting.lock().unwrap_or_else(|p| p.into_inner());
            connecting.entry(key.clone()).or_default().clone()
        };
        let result = attempt
            .get_or_init(|| async {
                let result = self.connect(addr, name).await;
                let mut connecting = self.connecting.lock().unwrap_or_else(|p| p.into_inner());
                connecting.remove(&key);
                result.map_err(|e| (e.kind(), e.to_string()))
            })
            .await;
        result
            .clone()
            .map_err(|(kind, why)| std::io::Error::new(kind, why))
    }

    /// Opens a connection to `addr`, over TLS checking `name` (else the address).
    async fn connect(&self, addr: SocketAddr, name: Option<Arc<str>>) -> std::io::Result<Queue> {
        let server = match &self.tls {
            Some(_) => Some(tls::server_name(addr.ip(), name.as_deref())?),
            None => None,
        };
        let slot = self
            .slot(source_of(addr.ip()), true)
            .ok_or_else(|| std::io::Error::other("too many tcp connections open"))?;
        let timed_out = |what| std::io::Error::new(std::io::ErrorKind::TimedOut, what);
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connect timed out"))??;
        let local = stream.local_addr()?;
        let _ = stream.set_nodelay(true);
        match (&self.tls, server) {
            (Some(tls), Some(server)) => {
                let handshake = tls.connector().connect(server, stream);
                let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
                    .await
                    .map_err(|_| timed_out("TLS handshake timed out"))??;
                Ok(self.run_stream(stream, addr, local, slot, name))
            }
            _ => Ok(self.run_stream(stream, addr, local, slot, None)),
        }
    }

    /// Forgets the connection to `remote` (that checked `name`) wherever `tx` is still its
    /// queue's.
    fn forget(&self, remote: SocketAddr, tx: &mpsc::Sender<Bytes>, name: Option<&Arc<str>>) {
        let mut conns = self.lock();
        let ours = |q: &Queue| q.tx.same_channel(tx);
        if conns.by_addr.get(&remote).is_some_and(ours) {
            conns.by_addr.remove(&remote);
            // Another connection we opened there (for another name) answers for the
            // address now.
            let other = conns
                .by_name
                .iter()
                .find(|((a, _), q)| *a == remote && !ours(q))
                .map(|(_, q)| q.clone());
            if let Some(q) = other {
                conns.by_addr.insert(remote, q);
            }
        }
        if let Some(key) = name.map(|n| (remote, n.clone())) {
            if conns.by_name.get(&key).is_some_and(ours) {
                conns.by_name.remove(&key);
            }
        }
    }

    /// Runs a byte stream (TCP, or TLS once decrypted), cut into messages by the decoder.
    fn run_stream<S>(
        &self,
        stream: S,
        remote: SocketAddr,
        local: SocketAddr,
        slot: Slot,
        name: Option<Arc<str>>,
    ) -> Queue
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let (reader, writer) = (StreamReader::new(reader), StreamWriter(writer));
        self.run(reader, writer, remote, local, slot, name)
    }

    /// Registers the connection (that checked `name`, see [`Queue::name`]) and spawns its
    /// reader and writer; its slot is given back when both have ended (the socket is
    /// closed).
    fn run<R: Reader, W: Writer>(
        &self,
        mut reader: R,
        mut writer: W,
        remote: SocketAddr,
        local: SocketAddr,
        slot: Slot,
        name: Option<Arc<str>>,
    ) -> Queue {
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let queue = Queue {
            tx: tx.clone(),
            state: Arc::default(),
            name,
        };
        {
            let mut conns = self.lock();
            conns.by_addr.insert(remote, queue.clone());
            if let Some(n) = queue.name.clone() {
                conns.by_name.insert((remote, n), queue.clone());
            }
        }
        let slot = Arc::new(slot);
        let writer_slot = slot.clone();
        let this = self.clone();
        let src = Source {
            protocol: self.protocol,
            remote,
            local,
        };
        let our_queue = queue.clone();
        // Ends the reader when the writer ends (dropped): the reader alone tells the handler
        // that the connection closed, so that it hears of no message after that.
        let (writing, mut writer_gone) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _slot = slot;
            let mut answered = false;
            loop {
                let next = tokio::select! {
                    biased;
                    _ = &mut writer_gone => break,
                    next = tokio::time::timeout(this.idle, reader.next()) => next,
                };
                let Ok(incoming) = next else {
                    if our_queue.state.keep_until.load(Ordering::Relaxed) > since_start() {
                        continue; // quiet, but a client's registration is on it
                    }
                    break;
                };
                match incoming {
                    Incoming::Message(m) => crate::deliver(&*this.handler, m, src),
                    Incoming::Ping => {
                        let _ = our_queue.push(Bytes::from_static(b"\r\n"));
                    }
                    Incoming::Malformed { data, error, fatal } => {
                        // The answer is queued before the connection is forgotten: the
                        // writer sends it, then closes.
                        if let Some(answer) = this.handler.on_malformed(&data, error, src) {
                            answered = our_queue.push(answer).is_ok();
                        }
                        if fatal {
                            break;
                        }
                    }
                    Incoming::Alive => {}
                    Incoming::Closed => break,
                }
            }
            this.forget(remote, &our_queue.tx, our_queue.name.as_ref());
            drop(our_queue); // the writer sends what is queued, then closes its side
            if answered {
                reader.drain().await;
            }
            tracing::debug!(%remote, protocol = %this.protocol, "connection closed");
            this.handler.on_closed(src);
        });
        // A peer that stops reading is cut off: its queue is not kept waiting.
        // Weak: the queue closes (and this task ends) once nobody else can send to it.
        let (this, our_tx, limit) = (self.clone(), tx.downgrade(), self.write_timeout);
        let name = queue.name.clone();
        let queued = queue.state.clone();
        // A WebSocket quiet for a third of the idle timeout is pinged: its answer keeps it.
        let ping_every = self
            .protocol
            .is_websocket()
            .then(|| (self.idle / 3).min(Duration::from_secs(60)));
        tokio::spawn(async move {
            let (_slot, _writing) = (writer_slot, writing);
            loop {
                let written = match ping_every {
                    Some(every) => match tokio::time::timeout(every, rx.recv()).await {
                        Ok(next) => next.map(Some),
                        Err(_) => Some(None),
                    },
                    None => rx.recv().await.map(Some),
                };
                let written = match written {
                    None => break,
                    Some(None) => tokio::time::timeout(limit, writer.ping()).await,
                    Some(Some(data)) => {
                        let written = tokio::time::timeout(limit, writer.write(&data)).await;
                        queued.bytes.fetch_sub(data.len(), Ordering::AcqRel);
                        written
                    }
                };
                if !matches!(written, Ok(Ok(()))) {
                    tracing::debug!(%remote, "peer not reading: connection closed");
                    if let Some(tx) = our_tx.upgrade() {
                        this.forget(remote, &tx, name.as_ref());
                    }
                    return; // the reader ends, and says so
                }
            }
            // The peer sees the end of the stream while the reader may still drain what it
            // sends.
            let _ = tokio::time::timeout(limit, writer.close()).await;
        });
        queue
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sip_message::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

    use super::*;

    #[test]
    fn an_ipv6_64_is_one_source_and_a_mapped_ipv4_its_address() {
        let src = |s: &str| source_of(s.parse().unwrap());
        assert_eq!(src("2001:db8:1:2::7"), src("2001:db8:1:2:ffff::1"));
        assert_ne!(src("2001:db8:1:2::7"), src("2001:db8:1:3::7"));
        assert_eq!(src("::ffff:192.0.2.7"), src("192.0.2.7"));
        assert_ne!(src("192.0.2.7"), src("192.0.2.8"));
    }

    const OPTIONS: &[u8] =
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKlim\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: lim\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

    /// Counts what the transport reports: the peers of messages, refusals and closed
    /// connections.
    struct Collect {
        messages: UnboundedSender<SocketAddr>,
        refused: AtomicUsize,
        closed: AtomicUsize,
    }

    impl Handler for Collect {
        fn on_message(&self, _msg: Message, src: Source) {
            let _ = self.messages.send(src.remote);
        }
        fn on_refused(&self, _src: Source) {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        fn on_closed(&self, _src: Source) {
            self.closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn start(
        limits: TcpLimits,
    ) -> (
        TcpConnections,
        SocketAddr,
        Arc<Collect>,
        UnboundedReceiver<SocketAddr>,
    ) {
        let (messages, rx) = unbounded_channel();
        let handler = Arc::new(Collect {
            messages,
            refused: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
        });
        let tcp = TcpConnections::new(handler.clone(), Duration::from_secs(60), limits);
        let addr = tcp.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        (tcp, addr, handler, rx)
    }

    /// A client connection whose message reached the handler.
    async fn served(to: SocketAddr, rx: &mut UnboundedReceiver<SocketAddr>) -> TcpStream {
        let mut c = TcpStream::connect(to).await.unwrap();
        c.write_all(OPTIONS).await.unwrap();
        let from = rx.recv().await.unwrap();
        assert_eq!(from, c.local_addr().unwrap());
        c
    }

    /// True when the server closed the connection (within a second).
    async fn closed(c: &mut TcpStream) -> bool {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(1), c.read(&mut buf)).await;
        matches!(read, Ok(Ok(0) | Err(_)))
    }

    #[tokio::test]
    async fn over_the_limit_per_ip_a_connection_is_closed_until_one_closes() {
        let limits = TcpLimits {
            total: 10,
            per_ip: 2,
        };
        let test = async {
            let (_tcp, addr, handler, mut rx) = start(limits).await;
            let first = served(addr, &mut rx).await;
            let _second = served(addr, &mut rx).await;
            let mut third = TcpStream::connect(addr).await.unwrap();
            assert!(
                closed(&mut third).await,
                "the third from 127.0.0.1 is closed"
            );
            assert_eq!(handler.refused.load(Ordering::Relaxed), 1);
            drop(first);
            // Once the server has seen the first close, its place is free again.
            loop {
                let mut c = TcpStream::connect(addr).await.unwrap();
                c.write_all(OPTIONS).await.unwrap();
                if !closed(&mut c).await {
                    assert_eq!(rx.recv().await, Some(c.local_addr().unwrap()));
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }

    #[tokio::test]
    async fn ipv6_and_ipv4_wildcards_share_a_port() {
        let (tcp, _addr, _handler, _rx) = start(TcpLimits::default()).await;
        let v6 = match tcp.listen("[::]:0".parse().unwrap()).await {
            Ok(a) => a,
            // No IPv6 on this machine: nothing to check.
            Err(_) => return,
        };
        let v4 = SocketAddr::new([0, 0, 0, 0].into(), v6.port());
        assert_eq!(tcp.listen(v4).await.unwrap(), v4, "IPv6 only, so no clash");
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_fills_a_bounded_queue_and_is_cut_off() {
        let test = async {
            let (mut tcp, _addr, handler, _rx) = start(TcpLimits::default()).await;
            tcp.write_timeout = Duration::from_millis(300);
            let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let peer_addr = peer.local_addr().unwrap();
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            tcp.send(peer_addr, None, chunk.clone()).await.unwrap();
            let (_silent, _) = peer.accept().await.unwrap();
            // Socket buffers hold some megabytes; then the queue fills (1 MiB: 16 of these,
            // not 1024), and sends fail at once instead of waiting or queueing without end.
            let mut sent = 1;
            let full = loop {
                match tcp.send(peer_addr, None, chunk.clone()).await {
                    Ok(()) => sent += 1,
                    Err(e) => break e,
                }
                let held = sent * chunk.len();
                assert!(
                    held < QUEUE_BYTES + (16 << 20),
                    "still queueing {held} bytes"
                );
                tokio::task::yield_now().await;
            };
            assert_eq!(full.kind(), std::io::ErrorKind::WouldBlock, "{full}");
            // Past the write timeout the connection is dropped.
            tokio::time::sleep(Duration::from_millis(600)).await;
            assert!(!tcp.has_connection(peer_addr), "cut off");
            // Its reader ends too, and tells of the close, once.
            assert_eq!(handler.closed.load(Ordering::Relaxed), 1);
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }

    /// A burst of sends to a hop without a connection opens one, not one each; and ours
    /// leave the limit per IP to those who connect to us.
    #[tokio::test]
    async fn a_burst_of_sends_shares_one_new_connection() {
        let limits = TcpLimits {
            total: 100,
            per_ip: 1,
        };
        let test = async {
            let (tcp, addr, _handler, mut rx) = start(limits).await;
            let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let peer_addr = peer.local_addr().unwrap();
            let sends = (0..10).map(|_| tcp.send(peer_addr, None, Bytes::from_static(OPTIONS)));
            for sent in futures_util::future::join_all(sends).await {
                sent.expect("sent");
            }
            let (mut first, _) = peer.accept().await.unwrap();
            let again = tokio::time::timeout(Duration::from_millis(300), peer.accept()).await;
            assert!(again.is_err(), "a second connection");
            let mut got = vec![0u8; 10 * OPTIONS.len()];
            first.read_exact(&mut got).await.expect("all ten over it");
            // 127.0.0.1 may still connect to us once.
            let _served = served(addr, &mut rx).await;
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }

    /// A quiet connection closes after the idle time, unless a registration keeps it.
    #[tokio::test]
    async fn a_kept_connection_outlives_the_idle_time_until_its_time_is_up() {
        let test = async {
            let (messages, mut rx) = unbounded_channel();
            let handler = Arc::new(Collect {
                messages,
                refused: AtomicUsize::new(0),
                closed: AtomicUsize::new(0),
            });
            let idle = Duration::from_millis(200);
            let tcp = TcpConnections::new(handler.clone(), idle, TcpLimits::default());
            let addr = tcp.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let mut quiet = served(addr, &mut rx).await;
            let mut kept = served(addr, &mut rx).await;
            tcp.keep_open(kept.local_addr().unwrap(), Duration::from_millis(900));
            assert!(closed(&mut quiet).await, "idle: closed");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(tcp.has_connection(kept.local_addr().unwrap()), "kept");
            assert!(closed(&mut kept).await, "closed once its time is up");
            assert_eq!(handler.closed.load(Ordering::Relaxed), 2);
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }

    #[tokio::test]
    async fn our_own_connections_count_toward_the_total() {
        let limits = TcpLimits {
            total: 2,
            per_ip: 0,
        };
        let test = async {
            let (tcp, addr, handler, mut rx) = start(limits).await;
            let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let peer_addr = peer.local_addr().unwrap();
            tcp.send(peer_addr, None, Bytes::from_static(OPTIONS))
                .await
                .unwrap();
            let (_ours, _) = peer.accept().await.unwrap();
            let _accepted = served(addr, &mut rx).await;
            let mut over = TcpStream::connect(addr).await.unwrap();
            assert!(closed(&mut over).await, "the total is reached");
            assert_eq!(handler.refused.load(Ordering::Relaxed), 1);
            let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let refused = tcp
                .send(
                    other.local_addr().unwrap(),
                    None,
                    Bytes::from_static(OPTIONS),
                )
                .await;
            assert!(refused.is_err(), "nor is one of ours opened");
            assert!(
                tcp.send(peer_addr, None, Bytes::from_static(OPTIONS))
                    .await
                    .is_ok(),
                "an open one is used"
            );
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }
}
