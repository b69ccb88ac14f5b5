//! TCP: listeners, one task per connection framing messages with the stream decoder, and a
//! table of open connections by peer address so responses and requests reuse them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sip_message::{Frame, StreamDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::{Handler, Protocol, Source};

/// Outgoing queue depth per connection.
const QUEUE: usize = 1024;

/// Open TCP connections by peer address.
#[derive(Clone)]
pub struct TcpConnections {
    conns: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Bytes>>>>,
    handler: Arc<dyn Handler>,
    idle: Duration,
}

impl std::fmt::Debug for TcpConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConnections")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl TcpConnections {
    /// A table whose connections deliver messages to `handler` and close after `idle`
    /// without traffic.
    pub fn new(handler: Arc<dyn Handler>, idle: Duration) -> Self {
        TcpConnections {
            conns: Arc::default(),
            handler,
            idle,
        }
    }

    /// Listens on `addr` and accepts connections until the runtime stops.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let sock = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        sock.set_reuseaddr(true)?;
        sock.bind(addr)?;
        let listener: TcpListener = sock.listen(1024)?;
        let local = listener.local_addr()?;
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        this.run(stream, remote, local);
                    }
                    Err(e) => {
                        tracing::warn!(%local, error = %e, "tcp accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(local)
    }

    /// True when a connection to `addr` is open.
    pub fn has_connection(&self, addr: SocketAddr) -> bool {
        self.lock().contains_key(&addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Bytes>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends over the open connection to `addr`, or connects first.
    pub async fn send(&self, addr: SocketAddr, data: Bytes) -> std::io::Result<()> {
        let existing = self.lock().get(&addr).cloned();
        let tx = match existing {
            Some(tx) => tx,
            None => {
                let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                    })??;
                let local = stream.local_addr()?;
                self.run(stream, addr, local)
            }
        };
        tx.send(data)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed"))
    }

    /// Registers the connection and spawns its reader and writer.
    fn run(&self, stream: TcpStream, remote: SocketAddr, local: SocketAddr) -> mpsc::Sender<Bytes> {
        let _ = stream.set_nodelay(true);
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        self.lock().insert(remote, tx.clone());
        let (mut reader, mut writer) = stream.into_split();
        tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if writer.write_all(&data).await.is_err() {
                    break;
                }
            }
        });
        let this = self.clone();
        let src = Source {
            protocol: Protocol::Tcp,
            remote,
            local,
        };
        let our_tx = tx.clone();
        tokio::spawn(async move {
            let decoder = StreamDecoder::default();
            let mut buf = BytesMut::with_capacity(8192);
            'conn: loop {
                buf.reserve(4096);
                match tokio::time::timeout(this.idle, reader.read_buf(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                }
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(Frame::Message(m))) => crate::deliver(&*this.handler, m, src),
                        Ok(Some(Frame::Ping)) => {
                            let _ = our_tx.try_send(Bytes::from_static(b"\r\n"));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            this.handler.on_malformed(&buf, e, src);
                            break 'conn;
                        }
                    }
                }
            }
            let mut conns = this.lock();
            if conns.get(&remote).is_some_and(|t| t.same_channel(&our_tx)) {
                conns.remove(&remote);
            }
            tracing::debug!(%remote, "tcp connection closed");
        });
        tx
    }
}
