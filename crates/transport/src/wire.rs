//! The two halves of a connection as the connection table drives them: a reader that yields
//! whole messages, and a writer that writes one message at a time. A byte stream (TCP, TLS)
//! is cut into messages by the stream decoder; WebSocket brings its own framing (`ws`).

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sip_message::{Frame, Message, ParseError, StreamDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a connection's reader yields next.
// Matched as soon as it is returned; boxing the message would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Incoming {
    /// A whole message.
    Message(Message),
    /// A keep-alive ping (RFC 5626 §3.5.1): answered with one CRLF.
    Ping,
    /// Bytes that are not a SIP message. `fatal` when the connection cannot be read on (a
    /// byte stream has lost its framing); a WebSocket message is one message, so the next
    /// is still readable.
    Malformed {
        /// What was read and could not be parsed.
        data: Bytes,
        /// Why.
        error: ParseError,
        /// True when the connection must close (after the answer, if any).
        fatal: bool,
    },
    /// Something that is no message but shows the peer is there (a WebSocket ping or pong).
    Alive,
    /// The peer closed, or the connection failed.
    Closed,
}

/// The reading half of a connection.
pub(crate) trait Reader: Send + 'static {
    /// The next message, or what else arrived.
    fn next(&mut self) -> impl Future<Output = Incoming> + Send;
    /// After an answer to a fatal error: reads and drops what the peer still sends until it
    /// closes too (2 s and 1 MiB at most), so that closing with unread bytes (a reset) does
    /// not destroy the answer before the peer reads it.
    fn drain(&mut self) -> impl Future<Output = ()> + Send;
}

/// The writing half of a connection.
pub(crate) trait Writer: Send + 'static {
    /// Writes one message and flushes it.
    fn write(&mut self, data: &Bytes) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Ends our side (over TLS after close_notify, over WebSocket after a Close frame).
    fn close(&mut self) -> impl Future<Output = ()> + Send;
    /// Asks the peer for a sign of life, where the framing has a way to (WebSocket's ping,
    /// which browsers answer on their own); nothing by default.
    fn ping(&mut self) -> impl Future<Output = std::io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// A byte stream's reading half, cut into messages.
pub(crate) struct StreamReader<R> {
    reader: R,
    decoder: StreamDecoder,
    buf: BytesMut,
}

impl<R> StreamReader<R> {
    pub(crate) fn new(reader: R) -> Self {
        StreamReader {
            reader,
            decoder: StreamDecoder::default(),
            buf: BytesMut::with_capacity(8192),
        }
    }
}

impl<R: AsyncRead + Send + Unpin + 'static> Reader for StreamReader<R> {
    async fn next(&mut self) -> Incoming {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Frame::Message(m))) => return Incoming::Message(m),
                Ok(Some(Frame::Ping)) => return Incoming::Ping,
                Ok(None) => {}
                Err(error) => {
                    return Incoming::Malformed {
                        data: self.buf.split().freeze(),
                        error,
                        fatal: true,
                    }
                }
            }
            self.buf.reserve(4096);
            match self.reader.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Incoming::Closed,
                Ok(_) => {}
            }
        }
    }

    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut scratch = vec![0u8; 16 * 1024];
        let mut left = 1usize << 20;
        while left > 0 {
            match tokio::time::timeout_at(deadline, self.reader.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                _ => return,
            }
        }
    }
}

/// A byte stream's writing half.
pub(crate) struct StreamWriter<W>(pub(crate) W);

impl<W: AsyncWrite + Send + Unpin + 'static> Writer for StreamWriter<W> {
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()> {
        // Written, then flushed: TLS keeps what the socket does not take at once until a
        // flush, and a response must not wait for the next message.
        self.0.write_all(data).await?;
        self.0.flush().await
    }

    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}
