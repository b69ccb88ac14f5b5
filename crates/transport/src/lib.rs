//! SIP transports over tokio (RFC 3261 §18): UDP sockets, TCP, TLS and WebSocket (RFC 7118)
//! listeners and connections, framing received bytes into messages and sending responses and requests the way §18 and
//! RFC 3581 say. The protocol logic above stays free of IO.

mod addr;
mod stun;
mod tcp;
mod tls;
mod udp;
mod wire;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use sip_message::Message;

pub use addr::{Listen, ParseListenError, Protocol};
pub use stun::listen_stun;
/// The STUN port (RFC 5389 §9).
pub const STUN_PORT: u16 = ::stun::PORT;
pub use tcp::{TcpConnections, TcpLimits};
pub use tls::{ClientCertificates, KeyPair, Tls, TlsError, TlsFiles};

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    /// The transport protocol.
    pub protocol: Protocol,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Our address that received it.
    pub local: SocketAddr,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.protocol, self.remote)
    }
}

/// Receives every message the transports frame.
pub trait Handler: Send + Sync + 'static {
    /// A message arrived; it has been parsed but not validated.
    fn on_message(&self, msg: Message, src: Source);
    /// A datagram or stream bytes that are not a SIP message; returns an answer to send
    /// back where they came from (over a TCP connection: before it closes, as the stream
    /// cannot be read on). The default ignores them.
    fn on_malformed(
        &self,
        _data: &[u8],
        _error: sip_message::ParseError,
        _src: Source,
    ) -> Option<Bytes> {
        None
    }
    /// A TCP connection was accepted over a limit and closed at once; the default ignores it.
    fn on_refused(&self, _src: Source) {}
    /// A connection that carried messages closed; the default ignores it.
    fn on_closed(&self, _src: Source) {}
}

/// Hands a message to the handler; a bug that panics there costs that message, not the
/// receive loop (which would leave the server deaf).
pub(crate) fn deliver(handler: &dyn Handler, msg: Message, src: Source) {
    let call = std::panic::AssertUnwindSafe(|| handler.on_message(msg, src));
    if std::panic::catch_unwind(call).is_err() {
        tracing::error!(%src, "message handler panicked; message dropped");
    }
}

/// Errors of the transport layer. Each message holds its cause (none is chained as a
/// `source`, so a report that prints the chain does not repeat it).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A socket could not be bound.
    #[error("cannot listen on {listen}: {cause}")]
    Bind {
        /// What we tried to bind.
        listen: Listen,
        /// Why.
        cause: std::io::Error,
    },
    /// Sending failed.
    #[error("cannot send to {protocol}:{addr}: {cause}")]
    Send {
        /// Transport used.
        protocol: Protocol,
        /// Destination.
        addr: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
    /// A TLS or WSS listener without TLS settings (a certificate and key).
    #[error("cannot listen on {0}: no TLS certificate and key configured")]
    NoTls(Listen),
    /// No listener of that protocol and address family to send from.
    #[error("no {0} transport for {1}")]
    NoTransport(Protocol, SocketAddr),
}

/// All the listening sockets, and the way out for every message.
#[derive(Debug, Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// A UDP socket of each address, to send from, with its bound address.
    udp: Vec<(SocketAddr, std::net::UdpSocket)>,
    tcp: TcpConnections,
    /// TLS connections, when TLS is set up.
    tls: Option<TcpConnections>,
    /// WebSocket connections.
    ws: TcpConnections,
    /// Secure WebSocket connections, when TLS is set up.
    wss: Option<TcpConnections>,
    listens: Vec<(Listen, SocketAddr)>,
}

/// How each UDP address is received.
#[derive(Debug, Clone, Copy)]
pub struct UdpReceive {
    /// Sockets (SO_REUSEPORT), each with a receive thread.
    pub threads: usize,
    /// Under load, a thread takes what arrived once per this time at most instead of waking
    /// for each datagram, sooner as the rate grows (zero: for each datagram).
    pub coalesce: std::time::Duration,
}

impl Transports {
    /// Binds every listen address and starts receiving; messages go to `handler`. Each UDP
    /// address is served by `udp.threads` sockets (SO_REUSEPORT), each with a thread of its
    /// own on which the handler runs; TCP, TLS, WS and WSS (TLS and WSS with `tls`) run on
    /// the calling runtime,
    /// their connections closed after `tcp_idle` without traffic and at most `tcp_limits`
    /// together.
    pub async fn start(
        listens: &[Listen],
        handler: Arc<dyn Handler>,
        tcp_idle: std::time::Duration,
        tcp_limits: TcpLimits,
        udp_receive: UdpReceive,
        tls: Option<Tls>,
    ) -> Result<Transports, TransportError> {
        let UdpReceive {
            threads: udp_threads,
            coalesce,
        } = udp_receive;
        let tcp = TcpConnections::new(handler.clone(), tcp_idle, tcp_limits);
        let ws = tcp.websocket(None);
        let wss = tls.as_ref().map(|t| tcp.websocket(Some(t.for_browsers())));
        let tls = tls.map(|t| tcp.with_tls(t));
        let mut udp = Vec::new();
        let mut bound = Vec::new();
        for l in listens {
            let local = match l.protocol {
                Protocol::Udp => {
                    let bind_err = |cause| TransportError::Bind { listen: *l, cause };
                    let shared = udp_threads > 1;
                    // SO_REUSEPORT alone would share a port another server holds: bind
                    // once without it first, so that a taken port is an error.
                    let probe = udp::bind(l.addr, false).map_err(bind_err)?;
                    let addr = probe.local_addr().map_err(bind_err)?;
                    drop(probe);
                    let first = udp::bind(addr, shared).map_err(bind_err)?;
                    let local = first.local_addr().map_err(bind_err)?;
                    udp.push((local, first.try_clone().map_err(bind_err)?));
                    let name = |i| format!("ferrosip-udp-{}-{i}", local.port());
                    udp::spawn_receiver(name(0), first, local, handler.clone(), coalesce)
                        .map_err(bind_err)?;
                    for i in 1..udp_threads {
                        let extra = udp::bind(local, shared).map_err(bind_err)?;
                        udp::spawn_receiver(name(i), extra, local, handler.clone(), coalesce)
                            .map_err(bind_err)?;
                    }
                    local
                }
                stream => {
                    let conns = match stream {
                        Protocol::Tls => tls.as_ref().ok_or(TransportError::NoTls(*l))?,
                        Protocol::Wss => wss.as_ref().ok_or(TransportError::NoTls(*l))?,
                        Protocol::Ws => &ws,
                        _ => &tcp,
                    };
                    conns
                        .listen(l.addr)
                        .await
                        .map_err(|cause| TransportError::Bind { listen: *l, cause })?
                }
            };
            tracing::info!(protocol = %l.protocol, %local, "listening");
            bound.push((*l, local));
        }
        Ok(Transports {
            inner: Arc::new(Inner {
                udp,
                tcp,
                tls,
                ws,
                wss,
                listens: bound,
            }),
        })
    }

    /// The addresses actually bound (port 0 resolved), in the order given.
    pub fn local_addrs(&self) -> Vec<(Protocol, SocketAddr)> {
        self.inner
            .listens
            .iter()
            .map(|(l, a)| (l.protocol, *a))
            .collect()
    }

    /// Sends `data` to `addr` over `protocol`. UDP goes out of a socket of the same address
    /// family; TCP and TLS use the open connection `connection` when given and still there,
    /// else one to `addr`, opening it if needed; WebSocket only ever an open connection.
    /// With `name` (`addr` was found by looking it up), TLS goes only over `connection` or
    /// a connection that checked the server's certificate against that name (RFC 5922 §4).
    pub async fn send(
        &self,
        protocol: Protocol,
        addr: SocketAddr,
        connection: Option<SocketAddr>,
        name: Option<&str>,
        data: Bytes,
    ) -> Result<(), TransportError> {
        match protocol {
            Protocol::Udp => {
                let sock = self
                    .udp_socket(addr)
                    .ok_or(TransportError::NoTransport(protocol, addr))?;
                sock.send_to(&data, addr)
                    .map(drop)
                    .map_err(|cause| TransportError::Send {
                        protocol,
                        addr,
                        cause,
                    })
            }
            _ => {
                let conns = self
                    .connections(protocol)
                    .ok_or(TransportError::NoTransport(protocol, addr))?;
                // The client's own connection, whatever name its Contact has (it was
                // accepted, so it checked none); else one that checked the name.
                let (to, name) = match connection.filter(|c| conns.has_connection(*c)) {
                    Some(c) => (c, None),
                    None => (addr, name),
                };
                conns
                    .send(to, name, data)
                    .await
                    .map_err(|cause| TransportError::Send {
                        protocol,
                        addr: to,
                        cause,
                    })
            }
        }
    }

    /// Sends a UDP datagram at once (a datagram is copied into the socket's buffer); `false`
    /// when the caller must use [`send`](Self::send) (not UDP, or no socket of that family).
    pub fn try_send_udp(&self, protocol: Protocol, addr: SocketAddr, data: &[u8]) -> bool {
        if protocol != Protocol::Udp {
            return false;
        }
        match self.udp_socket(addr) {
            Some(sock) => {
                if let Err(e) = sock.send_to(data, addr) {
                    tracing::debug!(%addr, error = %e, "udp send failed");
                }
                true
            }
            None => false,
        }
    }

    fn udp_socket(&self, to: SocketAddr) -> Option<&std::net::UdpSocket> {
        self.inner
            .udp
            .iter()
            .find(|(local, _)| local.is_ipv4() == to.is_ipv4())
            .map(|(_, s)| s)
    }

    /// Keeps the connection over `protocol` from `remote` open for `time` however quiet
    /// (a client registered over it), or (zero) only while not idle.
    pub fn keep_open(&self, protocol: Protocol, remote: SocketAddr, time: std::time::Duration) {
        if let Some(c) = self.connections(protocol) {
            c.keep_open(remote, time);
        }
    }

    /// True when a connection to `addr` is open (so a request can reuse it).
    pub fn has_connection(&self, addr: SocketAddr) -> bool {
        Protocol::ALL
            .into_iter()
            .filter_map(|p| self.connections(p))
            .any(|c| c.has_connection(addr))
    }

    /// The connections of a stream protocol.
    fn connections(&self, protocol: Protocol) -> Option<&TcpConnections> {
        match protocol {
            Protocol::Tcp => Some(&self.inner.tcp),
            Protocol::Tls => self.inner.tls.as_ref(),
            Protocol::Ws => Some(&self.inner.ws),
            Protocol::Wss => self.inner.wss.as_ref(),
            Protocol::Udp => None,
        }
    }
}
