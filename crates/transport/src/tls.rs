//! TLS for SIP (RFC 3261 §26) with rustls: the server's certificate chain and key from PEM
//! files, and what connections we open trust (the system's roots, and a CA of the
//! operator's).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where the TLS settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM), leaf first.
    pub certificate: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// A CA (PEM) that connections we open trust besides the system's roots.
    pub ca: Option<PathBuf>,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be read, or holds no PEM of the kind wanted.
    #[error("{}: {cause}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// rustls refuses the certificate and key (a key that is not the certificate's…).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS side of the transports: accepting, and opening connections.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
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

impl Tls {
    /// Reads `files`: the server's chain and key, and the roots for connections we open.
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = certificates(&files.certificate)?;
        let key = PrivateKeyDer::from_pem_file(&files.private_key)
            .map_err(|e| file_error(&files.private_key, e))?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A system root rustls cannot read is skipped, as every TLS client does.
            let _ = roots.add(cert);
        }
        if let Some(ca) = &files.ca {
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| file_error(ca, e))?;
            }
        }
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name a connection we open to `ip` checks the server's certificate against: its
/// address (a host name needs the URI's, which comes with DNS).
pub(crate) fn server_name(ip: IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(ip.into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use sip_message::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

    use super::*;
    use crate::{Handler, Source, TcpConnections, TcpLimits};

    /// A CA, and a certificate it signed for 127.0.0.1, written as PEM files in `dir`.
    fn files(dir: &Path, name: &str) -> TlsFiles {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), name.into()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("certificate");
        let write = |file: &str, pem: String| {
            let path = dir.join(file);
            std::fs::write(&path, pem).expect("write");
            path
        };
        TlsFiles {
            certificate: write(&format!("{name}.pem"), leaf.pem()),
            private_key: write(&format!("{name}.key"), key.serialize_pem()),
            ca: Some(write(&format!("{name}-ca.pem"), ca.pem())),
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

    #[tokio::test]
    async fn messages_go_both_ways_over_tls_and_an_unknown_ca_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let (ours, theirs) = (files(dir.path(), "ours"), files(dir.path(), "theirs"));
        let (tx, mut rx) = unbounded_channel();
        let idle = Duration::from_secs(60);
        let server =
            TcpConnections::new(std::sync::Arc::new(Collect(tx)), idle, TcpLimits::default())
                .with_tls(Tls::load(&ours).expect("TLS"));
        let at = server
            .listen("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("listen");
        // A client that trusts our CA: its message arrives over TLS, and ours reaches it.
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            r.add(certificates(ours.ca.as_deref().expect("CA")).expect("CA")[0].clone())
                .expect("root");
            r
        };
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(at).await.expect("connect");
        let mut c = TlsConnector::from(Arc::new(client))
            .connect(server_name(at.ip()), tcp)
            .await
            .expect("handshake");
        c.write_all(OPTIONS).await.expect("write");
        let (line, src) = rx.recv().await.expect("message");
        assert_eq!(line, "OPTIONS sip:127.0.0.1 SIP/2.0");
        assert_eq!(src.protocol, sip_message::Protocol::Tls);
        server
            .send(src.remote, Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"))
            .await
            .expect("send back");
        let mut got = [0u8; 18];
        c.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"SIP/2.0 200 OK\r\n\r\n");
        // A connection we open trusts the CA configured: ours, not theirs.
        let (tx2, _rx2) = unbounded_channel();
        let handler = std::sync::Arc::new(Collect(tx2));
        let trusting = TcpConnections::new(handler.clone(), idle, TcpLimits::default())
            .with_tls(Tls::load(&ours).expect("TLS"));
        trusting
            .send(at, Bytes::from_static(OPTIONS))
            .await
            .expect("a server our CA signed");
        let (line, _) = rx.recv().await.expect("message");
        assert!(line.starts_with("OPTIONS"));
        let stranger = TcpConnections::new(handler, idle, TcpLimits::default())
            .with_tls(Tls::load(&theirs).expect("TLS"));
        assert!(
            stranger
                .send(at, Bytes::from_static(OPTIONS))
                .await
                .is_err(),
            "a certificate from a CA it does not trust"
        );
    }

    #[test]
    fn a_missing_or_empty_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let mut f = files(dir.path(), "x");
        f.private_key = dir.path().join("nowhere.key");
        let e = Tls::load(&f).expect_err("no key").to_string();
        assert!(e.contains("nowhere.key"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        f = files(dir.path(), "y");
        f.certificate = empty;
        let e = Tls::load(&f).expect_err("no certificate").to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no certificate"),
            "{e}"
        );
    }
}
