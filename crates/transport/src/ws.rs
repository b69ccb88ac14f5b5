//! SIP over WebSocket (RFC 7118): the server's opening handshake, which must agree on the
//! `sip` subprotocol, and the two halves of an open WebSocket, each of whose text or binary
//! messages is one SIP message. A quiet connection is pinged (browsers answer on their own,
//! and send no keep-alives of their own by default).

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sip_message::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::wire::{Incoming, Reader, Writer};

/// The largest message a peer may send: a SIP message over UDP is at most 64 KiB too.
const MAX_MESSAGE: usize = 64 * 1024;

/// The subprotocol of SIP (RFC 7118 §4).
const SUBPROTOCOL: &str = "sip";

/// Buffers sized for SIP: tungstenite's defaults (128 KiB read buffer, 64 MiB messages)
/// would cost every idle connection a lot, and let one peer hold far more.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// True when the handshake's `Sec-WebSocket-Protocol` offers `sip`.
fn offers_sip(request: &Request) -> bool {
    request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
}

/// Answers a client's opening handshake: with `Sec-WebSocket-Protocol: sip` when it offers
/// it, else 400 (a client that does not speak SIP has nothing to do here).
#[allow(clippy::result_large_err)] // tungstenite's callback type
fn agree(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    if !offers_sip(request) {
        let mut refusal = ErrorResponse::new(Some("the sip subprotocol is required\n".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

/// Runs the server's side of the opening handshake over `stream`; the two halves of the
/// WebSocket it opens.
pub(crate) async fn accept<S>(stream: S) -> Result<(WsReader<S>, WsWriter<S>), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, agree, Some(config())).await?;
    let (sink, stream) = ws.split();
    Ok((WsReader(stream), WsWriter(sink)))
}

/// The reading half of a WebSocket.
pub(crate) struct WsReader<S>(SplitStream<WebSocketStream<S>>);

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Reader for WsReader<S> {
    async fn next(&mut self) -> Incoming {
        loop {
            // Pings are answered by tungstenite as it reads.
            let data = match self.0.next().await {
                Some(Ok(tungstenite::Message::Text(text))) => Bytes::from(text),
                Some(Ok(tungstenite::Message::Binary(data))) => data,
                Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) | None => {
                    return Incoming::Closed
                }
                Some(Ok(tungstenite::Message::Frame(_))) => continue,
                Some(Ok(_)) => return Incoming::Alive,
            };
            // RFC 5626 keep-alives in a message of their own (SIP.js sends them so).
            if data.iter().all(|&b| b == b'\r' || b == b'\n') {
                if &data[..] == b"\r\n\r\n" {
                    return Incoming::Ping;
                }
                return Incoming::Alive;
            }
            return match Message::parse(data.clone()) {
                Ok(m) => Incoming::Message(m),
                Err(error) => Incoming::Malformed {
                    data,
                    error,
                    fatal: false,
                },
            };
        }
    }

    async fn drain(&mut self) {}
}

/// The writing half of a WebSocket: each SIP message goes as one text message (binary when
/// it is not UTF-8, RFC 7118 §5.1).
pub(crate) struct WsWriter<S>(SplitSink<WebSocketStream<S>, tungstenite::Message>);

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Writer for WsWriter<S> {
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()> {
        let message = match Utf8Bytes::try_from(data.clone()) {
            Ok(text) => tungstenite::Message::Text(text),
            Err(_) => tungstenite::Message::Binary(data.clone()),
        };
        self.0.send(message).await.map_err(std::io::Error::other)
    }

    async fn close(&mut self) {
        let _ = self.0.close().await;
    }

    async fn ping(&mut self) -> std::io::Result<()> {
        let ping = tungstenite::Message::Ping(Bytes::new());
        self.0.send(ping).await.map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::net::TcpStream;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use super::*;
    use crate::{Handler, Protocol, Source, TcpConnections, TcpLimits};

    const OPTIONS: &str = "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\n\
To: <sip:127.0.0.1>\r\nCall-ID: ws\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    /// Passes on what the transport delivers; answers garbage with a fixed line.
    struct Collect(UnboundedSender<(Message, Source)>);

    impl Handler for Collect {
        fn on_message(&self, msg: Message, src: Source) {
            let _ = self.0.send((msg, src));
        }
        fn on_malformed(
            &self,
            _data: &[u8],
            _error: sip_message::ParseError,
            _src: Source,
        ) -> Option<Bytes> {
            Some(Bytes::from_static(b"SIP/2.0 400 Bad Request\r\n\r\n"))
        }
    }

    async fn server() -> (
        TcpConnections,
        SocketAddr,
        UnboundedReceiver<(Message, Source)>,
    ) {
        server_idle(Duration::from_secs(60)).await
    }

    async fn server_idle(
        idle: Duration,
    ) -> (
        TcpConnections,
        SocketAddr,
        UnboundedReceiver<(Message, Source)>,
    ) {
        let (tx, rx) = unbounded_channel();
        let tcp = TcpConnections::new(Arc::new(Collect(tx)), idle, TcpLimits::default());
        let ws = tcp.websocket(None);
        let addr = ws.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        (ws, addr, rx)
    }

    type Client = WebSocketStream<TcpStream>;

    /// A client offering `protocols`; the handshake's error when the server refuses it.
    async fn connect(to: SocketAddr, protocols: &str) -> Result<Client, tungstenite::Error> {
        let mut request = format!("ws://{to}").into_client_request().unwrap();
        if !protocols.is_empty() {
            let value = HeaderValue::from_str(protocols).unwrap();
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", value);
        }
        let stream = TcpStream::connect(to).await.unwrap();
        let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
        assert_eq!(response.headers()["Sec-WebSocket-Protocol"], "sip");
        Ok(ws)
    }

    /// The next text message the client gets.
    async fn text(c: &mut Client) -> String {
        loop {
            match c.next().await {
                Some(Ok(tungstenite::Message::Text(t))) => return t.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_sip_client_is_heard_and_answered_over_its_connection() {
        let test = async {
            let (ws, addr, mut rx) = server().await;
            let mut c = connect(addr, "chat, sip").await.expect("sip agreed");
            c.send(tungstenite::Message::text(OPTIONS)).await.unwrap();
            let (msg, src) = rx.recv().await.unwrap();
            assert_eq!(msg.call_id().unwrap(), "ws");
            assert_eq!(src.protocol, Protocol::Ws);
            assert!(ws.has_connection(src.remote));
            ws.send(
                src.remote,
                None,
                Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"),
            )
            .await
            .unwrap();
            assert_eq!(text(&mut c).await, "SIP/2.0 200 OK\r\n\r\n");
            // A keep-alive gets its pong; garbage its answer, and the connection goes on.
            c.send(tungstenite::Message::text("\r\n\r\n"))
                .await
                .unwrap();
            assert_eq!(text(&mut c).await, "\r\n");
            c.send(tungstenite::Message::text("hello")).await.unwrap();
            assert!(text(&mut c).await.starts_with("SIP/2.0 400"));
            c.send(tungstenite::Message::binary(OPTIONS.as_bytes().to_vec()))
                .await
                .unwrap();
            assert_eq!(rx.recv().await.unwrap().1.remote, src.remote);
            // Once it is gone, nothing reaches it: no connection is made to a browser.
            drop(c);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let gone = ws.send(src.remote, None, Bytes::from_static(b"x")).await;
            assert_eq!(gone.unwrap_err().kind(), std::io::ErrorKind::NotConnected);
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }

    /// A browser sends no keep-alives by default: the server pings a quiet connection, and
    /// the answers keep it past the idle timeout; one that stops answering is closed.
    #[tokio::test]
    async fn a_quiet_client_that_answers_pings_stays_connected() {
        let test = async {
            let (ws, addr, mut rx) = server_idle(Duration::from_millis(600)).await;
            let mut c = connect(addr, "sip").await.unwrap();
            c.send(tungstenite::Message::text(OPTIONS)).await.unwrap();
            let (_, src) = rx.recv().await.unwrap();
            // Reading answers the pings (tungstenite replies on its own).
            let reader = tokio::spawn(async move {
                let mut pings = 0;
                while let Some(Ok(m)) = c.next().await {
                    if matches!(m, tungstenite::Message::Ping(_)) {
                        pings += 1;
                    }
                    if pings == 8 {
                        break;
                    }
                }
                (pings, c)
            });
            let (pings, c) = reader.await.unwrap();
            assert_eq!(pings, 8, "pinged about every 200 ms");
            assert!(ws.has_connection(src.remote), "kept past the idle timeout");
            // Now silent (it reads nothing, so answers nothing): closed at the timeout.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!ws.has_connection(src.remote), "closed once silent");
            drop(c);
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }

    #[tokio::test]
    async fn a_client_that_does_not_offer_sip_is_refused() {
        let test = async {
            let (_ws, addr, _rx) = server().await;
            for protocols in ["", "chat"] {
                match connect(addr, protocols).await {
                    Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
                    other => panic!("{protocols:?}: {:?}", other.map(|_| ())),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }

    #[tokio::test]
    async fn a_message_over_the_size_limit_closes_the_connection() {
        let test = async {
            let (_ws, addr, _rx) = server().await;
            let mut c = connect(addr, "sip").await.unwrap();
            let big = "x".repeat(MAX_MESSAGE + 1);
            let _ = c.send(tungstenite::Message::text(big)).await;
            loop {
                match c.next().await {
                    Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), test)
            .await
            .expect("within 10 s");
    }
}
