//! A REGISTER load over connections kept open (sipp cannot do TLS as Debian builds it, nor
//! WebSocket): for `bench/transports.sh`.
//!
//! ```text
//! register_load certs DIR                   a test CA and a certificate for 127.0.0.1
//! register_load load PROTO ADDR CA CONNS RATE COUNT
//!                                           COUNT REGISTERs at RATE/s over CONNS connections
//! register_load idle PROTO ADDR CA CONNS SECONDS
//!                                           CONNS connections, each registered once, held
//! ```
//! PROTO is `udp`, `tls` or `wss`; CA the PEM file of the CA that signed the server's
//! certificate. `load` prints `sent ok failed seconds`; `idle` prints `open N` once every
//! connection is up, then holds them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    if arg(0) == "certs" {
        return certs(arg(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (proto, addr, ca) = (arg(1).to_owned(), arg(2).parse()?, arg(3).to_owned());
    let conns: usize = arg(4).parse()?;
    rt.block_on(async move {
        let tls = Arc::new(client_config(&ca)?);
        match arg(0) {
            "load" => load(&proto, addr, tls, conns, arg(5).parse()?, arg(6).parse()?).await,
            "idle" => idle(&proto, addr, tls, conns, arg(5).parse()?).await,
            other => Err(format!("unknown mode {other:?}").into()),
        }
    })
}

/// Writes `ca.pem`, `server.pem` and `server.key` (for 127.0.0.1) into `dir`.
fn certs(dir: &str) -> Result<(), Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key)?;
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf =
        rcgen::CertificateParams::new(vec!["127.0.0.1".into()])?.signed_by(&leaf_key, &ca, &key)?;
    let dir = std::path::Path::new(dir);
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), leaf.pem())?;
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem())?;
    Ok(())
}

fn client_config(ca: &str) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    if !ca.is_empty() {
        for c in CertificateDer::pem_file_iter(ca)? {
            roots.add(c?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// One client's way to the server: a message out, the next one in.
enum Conn {
    Udp(UdpSocket),
    Stream(Box<dyn Stream>, Vec<u8>),
    Ws(Box<tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>>),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(
    proto: &str,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Conn, Error> {
    if proto == "udp" {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        sock.connect(addr).await?;
        return Ok(Conn::Udp(sock));
    }
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    if proto == "tls" {
        return Ok(Conn::Stream(Box::new(stream), Vec::new()));
    }
    let mut request = format!("wss://{addr}").into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse()?);
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    Ok(Conn::Ws(Box::new(ws)))
}

impl Conn {
    async fn send(&mut self, text: String) -> Result<(), Error> {
        match self {
            Conn::Udp(s) => drop(s.send(text.as_bytes()).await?),
            Conn::Stream(s, _) => s.write_all(text.as_bytes()).await?,
            Conn::Ws(ws) => ws.send(Ws::text(text)).await?,
        }
        Ok(())
    }

    /// The status of the next response (a response has no body here).
    async fn status(&mut self) -> Result<u16, Error> {
        let text = match self {
            Conn::Udp(s) => {
                let mut buf = vec![0u8; 4096];
                let n = s.recv(&mut buf).await?;
                String::from_utf8_lossy(&buf[..n]).into_owned()
            }
            Conn::Stream(s, buf) => loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head: Vec<u8> = buf.drain(..end + 4).collect();
                    break String::from_utf8_lossy(&head).into_owned();
                }
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await? {
                    0 => return Err("closed".into()),
                    n => buf.extend_from_slice(&chunk[..n]),
                }
            },
            Conn::Ws(ws) => loop {
                match ws.next().await.ok_or("closed")?? {
                    Ws::Text(t) => break t.to_string(),
                    _ => continue,
                }
            },
        };
        let code = text.get(8..11).ok_or("short response")?;
        Ok(code.parse()?)
    }
}

/// REGISTER `n` of connection `conn`, in the registration `call` (a Call-ID prefix).
fn register(proto: &str, call: &str, conn: usize, n: usize) -> String {
    let via = proto.to_uppercase();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via} 127.0.0.1:9;rport;branch=z9hG4bKl{conn}x{n}\r\n\
From: <sip:u{conn}@127.0.0.1>;tag=l{conn}\r\nTo: <sip:u{conn}@127.0.0.1>\r\nCall-ID: {call}-{conn}\r\n\
CSeq: {} REGISTER\r\nContact: <sip:u{conn}@127.0.0.1:9;transport={proto}>\r\nExpires: 3600\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        n + 1
    )
}

async fn load(
    proto: &str,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    conns: usize,
    rate: usize,
    count: usize,
) -> Result<(), Error> {
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let per_conn = count / conns;
    let interval = Duration::from_secs_f64(conns as f64 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let mut conn = connect(proto, addr, tls.clone()).await?;
        let (ok, failed, proto) = (ok.clone(), failed.clone(), proto.to_owned());
        tasks.push(tokio::spawn(async move {
            // Spread over the interval, then paced.
            let mut next = tokio::time::Instant::now() + interval.mul_f64(c as f64 / conns as f64);
            for n in 0..per_conn {
                tokio::time::sleep_until(next).await;
                next += interval;
                let answered = async {
                    conn.send(register(&proto, &format!("load-{proto}"), c, n))
                        .await?;
                    conn.status().await
                };
                match tokio::time::timeout(Duration::from_secs(5), answered).await {
                    Ok(Ok(200)) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {} ok {ok} failed {failed} seconds {secs:.1}",
        per_conn * conns
    );
    Ok(())
}

async fn idle(
    proto: &str,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    conns: usize,
    seconds: u64,
) -> Result<(), Error> {
    let mut open = Vec::with_capacity(conns);
    for c in 0..conns {
        let mut conn = connect(proto, addr, tls.clone()).await?;
        conn.send(register(proto, "idle", c, 0)).await?;
        if conn.status().await? != 200 {
            return Err(format!("connection {c}: REGISTER refused").into());
        }
        open.push(conn);
    }
    println!("open {}", open.len());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    Ok(())
}
