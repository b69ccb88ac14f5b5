//! TLS for SIP (RFC 3261 §26) with rustls: the server's certificates from PEM files (one
//! per domain, picked by the name a client asks for: SNI), clients' certificates checked
//! when asked, what connections we open trust (the system's roots, and a CA of the
//! operator's), and all of it read again on a reload without dropping a connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, PKCS#1, SEC1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The chain.
    pub certificate: PathBuf,
    /// The key.
    pub private_key: PathBuf,
}

/// Whether clients show a certificate (peering trunks do), checked against a CA (PEM).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientCertificates {
    /// Not asked for.
    #[default]
    No,
    /// Asked for; a client without one is let in, one with a bad one refused.
    Optional(PathBuf),
    /// A client without a good one is refused.
    Required(PathBuf),
}

/// Where the TLS settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate, for clients that name no domain of `domains`.
    pub default: KeyPair,
    /// Other domains' certificates, by domain.
    pub domains: Vec<(String, KeyPair)>,
    /// Clients' certificates.
    pub clients: ClientCertificates,
    /// A CA that connections we open trust besides the system's roots.
    pub ca: Option<PathBuf>,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be read, or holds no PEM of the kind wanted, or a key that is not
    /// its certificate's.
    #[error("{}: {cause}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// rustls refuses the settings.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS side of the transports: accepting, and opening connections. Clones share the
/// settings, which [`Tls::reload`] replaces for the connections that follow.
#[derive(Clone)]
pub struct Tls {
    server: Arc<ArcSwap<rustls::ServerConfig>>,
    browsers: Arc<ArcSwap<rustls::ServerConfig>>,
    client: Arc<ArcSwap<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

fn file_error(path: &Path, cause: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        cause: cause.to_string(),
    }
}

/// The certificates of a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate (PEM) in it"));
    }
    Ok(certs)
}

/// The roots of a CA file.
fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// A chain and its key, checked to belong together.
fn certified(pair: &KeyPair, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(&pair.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&pair.private_key)
        .map_err(|e| file_error(&pair.private_key, e))?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| file_error(&pair.private_key, e))
}

/// The certificate for the domain a client names (SNI), else the default one.
#[derive(Debug)]
struct ByDomain {
    default: Arc<CertifiedKey>,
    domains: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ByDomain {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello
            .server_name()
            .and_then(|n| self.domains.get(&n.to_ascii_lowercase()));
        Some(named.unwrap_or(&self.default).clone())
    }
}

/// The server's certificate, shown by the connections it opens when the peer asks for one
/// (mutual TLS between servers, RFC 3261 §26.3.2.2).
#[derive(Debug)]
struct OwnCertificate(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for OwnCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The settings from `files`: the server's, the server's for browsers (WSS: never asked
/// for a client certificate, which no browser has), and the client's.
type Configs = (
    rustls::ServerConfig,
    rustls::ServerConfig,
    rustls::ClientConfig,
);

/// The settings from `files`.
fn configs(files: &TlsFiles) -> Result<Configs, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut domains = HashMap::new();
    for (name, pair) in &files.domains {
        domains.insert(name.to_ascii_lowercase(), certified(pair, &provider)?);
    }
    let default = certified(&files.default, &provider)?;
    let resolver = Arc::new(ByDomain {
        default: default.clone(),
        domains,
    });
    let server_builder = || {
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
    };
    let browsers = server_builder()?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    let builder = server_builder()?;
    let builder = match &files.clients {
        ClientCertificates::No => builder.with_no_client_auth(),
        ClientCertificates::Optional(ca) | ClientCertificates::Required(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider.clone());
            let verifier = match files.clients {
                ClientCertificates::Optional(_) => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier.build().map_err(|e| file_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder.with_cert_resolver(resolver);
    let mut trusted = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system root rustls cannot read is skipped, as every TLS client does.
        let _ = trusted.add(cert);
    }
    if let Some(ca) = &files.ca {
        trusted.roots.extend(roots(ca)?.roots);
    }
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(trusted)
        .with_client_cert_resolver(Arc::new(OwnCertificate(default)));
    Ok((server, browsers, client))
}

impl Tls {
    /// Reads `files`.
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let (server, browsers, client) = configs(files)?;
        Ok(Tls {
            server: Arc::new(ArcSwap::from_pointee(server)),
            browsers: Arc::new(ArcSwap::from_pointee(browsers)),
            client: Arc::new(ArcSwap::from_pointee(client)),
        })
    }

    /// The same settings for a listener of browsers (WSS): they are never asked for a
    /// client certificate, whatever `verify_clients` says for phones and servers.
    pub fn for_browsers(&self) -> Tls {
        Tls {
            server: self.browsers.clone(),
            ..self.clone()
        }
    }

    /// Reads `files` again (a certificate renewed on disk): the connections that follow
    /// use them, those open go on. On an error nothing changes.
    pub fn reload(&self, files: &TlsFiles) -> Result<(), TlsError> {
        let (server, browsers, client) = configs(files)?;
        self.server.store(Arc::new(server));
        self.browsers.store(Arc::new(browsers));
        self.client.store(Arc::new(client));
        Ok(())
    }

    /// The server's side of a handshake, with the settings of now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.server.load_full())
    }

    /// The client's side of a handshake, with the settings of now.
    pub(crate) fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.client.load_full())
    }
}

/// True when a handshake failed on the peer's certificate (none, or a bad one).
pub(crate) fn bad_certificate(e: &std::io::Error) -> bool {
    let rustls = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    matches!(
        rustls,
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// The name a connection we open to `ip` asks for (SNI) and checks the server's
/// certificate against (RFC 5922 §4): the domain whose lookup led there, else the address.
/// A domain that is no DNS name is an error, not a check of the address instead.
pub(crate) fn server_name(
    ip: IpAddr,
    domain: Option<&str>,
) -> std::io::Result<ServerName<'static>> {
    match domain {
        None => Ok(ServerName::IpAddress(ip.into())),
        Some(d) => ServerName::try_from(d.to_owned()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{d}: {e}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use sip_message::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

    use super::*;
    use crate::{Handler, Source, TcpConnections, TcpLimits};

    /// A test CA that signs certificates, written as PEM files in a folder.
    struct Ca {
        dir: PathBuf,
        name: String,
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    }

    impl Ca {
        fn new(dir: &Path, name: &str) -> Ca {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).expect("CA");
            std::fs::write(dir.join(format!("{name}-ca.pem")), cert.pem()).expect("write");
            Ca {
                dir: dir.to_owned(),
                name: name.into(),
                cert,
                key,
            }
        }

        fn path(&self) -> PathBuf {
            self.dir.join(format!("{}-ca.pem", self.name))
        }

        /// A certificate for `names` (the first is its file's name).
        fn sign(&self, names: &[&str]) -> KeyPair {
            let key = rcgen::KeyPair::generate().expect("key");
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let cert = rcgen::CertificateParams::new(names.clone())
                .expect("params")
                .signed_by(&key, &self.cert, &self.key)
                .expect("certificate");
            let file = |ext: &str| self.dir.join(format!("{}-{}.{ext}", self.name, names[0]));
            std::fs::write(file("pem"), cert.pem()).expect("write");
            std::fs::write(file("key"), key.serialize_pem()).expect("write");
            KeyPair {
                certificate: file("pem"),
                private_key: file("key"),
            }
        }

        /// Settings with a certificate for 127.0.0.1, trusting this CA.
        fn files(&self) -> TlsFiles {
            TlsFiles {
                default: self.sign(&["127.0.0.1"]),
                domains: Vec::new(),
                clients: ClientCertificates::No,
                ca: Some(self.path()),
            }
        }
    }

    /// Passes on what arrives: the message's first line, with its source.
    struct Collect(UnboundedSender<(String, Source)>);

    impl Handler for Collect {
        fn on_message(&self, msg: Message, src: Source) {
            let text = String::from_utf8_lossy(&msg.to_bytes()).into_owned();
            let line = text.lines().next().unwrap_or_default().to_owned();
            let _ = self.0.send((line, src));
        }
    }

    const OPTIONS: &[u8] =
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKtls\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tls\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

    /// A server with `tls`, and where it listens.
    async fn server(
        tls: Tls,
    ) -> (
        TcpConnections,
        SocketAddr,
        UnboundedReceiver<(String, Source)>,
    ) {
        let (tx, rx) = unbounded_channel();
        let idle = Duration::from_secs(60);
        let server =
            TcpConnections::new(Arc::new(Collect(tx)), idle, TcpLimits::default()).with_tls(tls);
        let at = server
            .listen("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("listen");
        (server, at, rx)
    }

    /// A client's handshake with the server at `to`, naming `sni` (else its address),
    /// trusting `ca`, with a certificate of its own if given; the certificate the server
    /// showed.
    async fn handshake(
        to: SocketAddr,
        sni: Option<&str>,
        ca: &Ca,
        own: Option<&KeyPair>,
    ) -> std::io::Result<(
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        CertificateDer<'static>,
    )> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots(&ca.path()).expect("roots"));
        let config = match own {
            Some(pair) => builder
                .with_client_auth_cert(
                    certificates(&pair.certificate).expect("chain"),
                    PrivateKeyDer::from_pem_file(&pair.private_key).expect("key"),
                )
                .expect("client certificate"),
            None => builder.with_no_client_auth(),
        };
        let name = match sni {
            Some(n) => ServerName::try_from(n.to_owned()).expect("name"),
            None => server_name(to.ip(), None).expect("an address"),
        };
        let tcp = tokio::net::TcpStream::connect(to).await?;
        let mut c = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        // TLS 1.3 tells a client of its refused certificate after the handshake: a
        // message and its answer show the connection really stands.
        c.write_all(OPTIONS).await?;
        c.flush().await?;
        let shown = c.get_ref().1.peer_certificates().expect("a certificate")[0].clone();
        Ok((c, shown))
    }

    fn leaf(pair: &KeyPair) -> CertificateDer<'static> {
        certificates(&pair.certificate).expect("chain")[0].clone()
    }

    #[tokio::test]
    async fn messages_go_both_ways_over_tls_and_an_unknown_ca_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let (ours, theirs) = (Ca::new(dir.path(), "ours"), Ca::new(dir.path(), "theirs"));
        let (server, at, mut rx) = server(Tls::load(&ours.files()).expect("TLS")).await;
        // A client that trusts our CA: its message arrives over TLS, and ours reaches it.
        let (mut c, _) = handshake(at, None, &ours, None).await.expect("handshake");
        let (line, src) = rx.recv().await.expect("message");
        assert_eq!(line, "OPTIONS sip:127.0.0.1 SIP/2.0");
        assert_eq!(src.protocol, sip_message::Protocol::Tls);
        server
            .send(
                src.remote,
                None,
                Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"),
            )
            .await
            .expect("send back");
        let mut got = [0u8; 18];
        c.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"SIP/2.0 200 OK\r\n\r\n");
        // A connection we open trusts the CA configured: ours, not theirs.
        let (tx2, _rx2) = unbounded_channel();
        let handler = Arc::new(Collect(tx2));
        let idle = Duration::from_secs(60);
        let trusting = TcpConnections::new(handler.clone(), idle, TcpLimits::default())
            .with_tls(Tls::load(&ours.files()).expect("TLS"));
        trusting
            .send(at, None, Bytes::from_static(OPTIONS))
            .await
            .expect("a server our CA signed");
        let (line, _) = rx.recv().await.expect("message");
        assert!(line.starts_with("OPTIONS"));
        let stranger = TcpConnections::new(handler, idle, TcpLimits::default())
            .with_tls(Tls::load(&theirs.files()).expect("TLS"));
        assert!(
            stranger
                .send(at, None, Bytes::from_static(OPTIONS))
                .await
                .is_err(),
            "a certificate from a CA it does not trust"
        );
    }

    /// RFC 5922 §4: a connection we open for a name checked that name, and only a request
    /// for that name reuses it: another name at the same address gets a connection of its
    /// own, and one whose certificate the server cannot show gets none.
    #[tokio::test]
    async fn a_connection_is_reused_for_the_name_it_checked_only() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = Ca::new(dir.path(), "ca");
        let mut files = ca.files();
        files.domains = vec![
            ("a.example.com".into(), ca.sign(&["a.example.com"])),
            ("b.example.com".into(), ca.sign(&["b.example.com"])),
        ];
        let (_server, at, mut rx) = server(Tls::load(&files).expect("TLS")).await;
        let (tx, _) = unbounded_channel();
        let idle = Duration::from_secs(60);
        let client = TcpConnections::new(Arc::new(Collect(tx)), idle, TcpLimits::default())
            .with_tls(Tls::load(&ca.files()).expect("TLS"));
        // The connection (its port, as the server saw it) a message for `name` came over.
        let mut from = async |name: Option<&str>| {
            client
                .send(at, name, Bytes::from_static(OPTIONS))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(rx.recv().await.expect("message").1.remote)
        };
        let a = from(Some("a.example.com")).await.expect("a");
        let b = from(Some("B.example.com")).await.expect("b");
        assert_ne!(a, b, "a connection of its own for another name");
        assert_eq!(from(Some("a.example.com")).await, Ok(a), "reused");
        let c = from(Some("c.example.com")).await;
        assert!(c.is_err(), "no certificate for c.example.com: {c:?}");
        // Without a name (a response, a hop given by address): any connection there.
        assert!([a, b].contains(&from(None).await.expect("by address")));
    }

    #[tokio::test]
    async fn each_domain_gets_its_certificate_and_a_renewed_one_is_used_after_a_reload() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = Ca::new(dir.path(), "ca");
        let mut files = ca.files();
        let (a, b) = (ca.sign(&["a.example.com"]), ca.sign(&["b.example.com"]));
        files.domains = vec![
            ("a.example.com".into(), a.clone()),
            ("B.Example.com".into(), b.clone()),
        ];
        let tls = Tls::load(&files).expect("TLS");
        let (_server, at, _rx) = server(tls.clone()).await;
        for (sni, pair) in [("a.example.com", &a), ("b.example.com", &b)] {
            let (_, shown) = handshake(at, Some(sni), &ca, None).await.expect(sni);
            assert_eq!(shown, leaf(pair), "{sni}");
        }
        let (old, shown) = handshake(at, None, &ca, None).await.expect("by address");
        assert_eq!(shown, leaf(&files.default));
        // Renewed on disk and reloaded: new connections get the new one; the old goes on.
        let renewed = ca.sign(&["renewed.example.com", "a.example.com"]);
        std::fs::copy(&renewed.certificate, &a.certificate).expect("copy");
        std::fs::copy(&renewed.private_key, &a.private_key).expect("copy");
        tls.reload(&files).expect("reload");
        let (_, shown) = handshake(at, Some("a.example.com"), &ca, None)
            .await
            .expect("renewed");
        assert_eq!(shown, leaf(&renewed));
        let mut old = old;
        old.write_all(OPTIONS)
            .await
            .expect("the old connection goes on");
        // A broken file on a reload changes nothing.
        std::fs::write(&a.private_key, "").expect("write");
        assert!(tls.reload(&files).is_err());
        let (_, shown) = handshake(at, Some("a.example.com"), &ca, None)
            .await
            .expect("still served");
        assert_eq!(shown, leaf(&renewed));
    }

    #[tokio::test]
    async fn a_client_certificate_is_required_and_checked_when_asked() {
        let dir = tempfile::tempdir().expect("dir");
        let (ca, peers, other) = (
            Ca::new(dir.path(), "ca"),
            Ca::new(dir.path(), "peers"),
            Ca::new(dir.path(), "other"),
        );
        let mut files = ca.files();
        files.clients = ClientCertificates::Required(peers.path());
        let (_server, at, mut rx) = server(Tls::load(&files).expect("TLS")).await;
        let trunk = peers.sign(&["trunk.example.net"]);
        handshake(at, None, &ca, Some(&trunk))
            .await
            .expect("a peer's certificate");
        assert!(rx.recv().await.is_some(), "its message arrives");
        let forged = other.sign(&["trunk.example.net"]);
        for own in [None, Some(&forged)] {
            if let Ok((mut c, _)) = handshake(at, None, &ca, own).await {
                // Refused after the handshake (TLS 1.3): the server says so and closes.
                let mut buf = [0u8; 16];
                assert!(
                    !matches!(c.read(&mut buf).await, Ok(n) if n > 0),
                    "refused: {own:?}"
                );
            }
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "nothing from a client without a good certificate"
        );
        // Another server of ours opens a connection to it: it shows its own certificate
        // (here one the peers' CA signed), as mutual TLS between servers asks.
        let mut ours = peers.files();
        ours.ca = Some(ca.path());
        let (tx, _) = unbounded_channel();
        let idle = Duration::from_secs(60);
        let client = TcpConnections::new(Arc::new(Collect(tx)), idle, TcpLimits::default())
            .with_tls(Tls::load(&ours).expect("TLS"));
        client
            .send(at, None, Bytes::from_static(OPTIONS))
            .await
            .expect("sent");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(got, Ok(Some(_))), "our certificate let us in");
        // A browsers' listener (WSS) with the same settings asks none of them.
        let tls = Tls::load(&files).expect("TLS").for_browsers();
        let (_browsers, at, mut rx) = server(tls).await;
        handshake(at, None, &ca, None)
            .await
            .expect("no certificate asked");
        assert!(rx.recv().await.is_some(), "its message arrives");
    }

    #[test]
    fn a_missing_or_mismatched_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = Ca::new(dir.path(), "x");
        let mut f = ca.files();
        f.default.private_key = dir.path().join("nowhere.key");
        let e = Tls::load(&f).expect_err("no key").to_string();
        assert!(e.contains("nowhere.key"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        f = ca.files();
        f.default.certificate = empty;
        let e = Tls::load(&f).expect_err("no certificate").to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no certificate"),
            "{e}"
        );
        f = ca.files();
        f.default.private_key = ca.sign(&["other"]).private_key;
        let e = Tls::load(&f).expect_err("another key").to_string();
        assert!(e.contains("x-other.key"), "{e}");
    }
}
