//! A test certificate authority: certificates for 127.0.0.1 as PEM files.

use std::path::Path;

use rustls::pki_types::CertificateDer;

/// A test CA, writing PEM files in a folder.
pub struct Ca {
    dir: std::path::PathBuf,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    /// A CA, its certificate written as `{name}-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA");
        std::fs::write(dir.join(format!("{name}-ca.pem")), cert.pem()).expect("write");
        Ca {
            dir: dir.to_owned(),
            cert,
            key,
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A certificate for 127.0.0.1 written as `{file}.pem` and `{file}.key`; its DER.
    pub fn sign(&self, file: &str) -> CertificateDer<'static> {
        self.sign_for(file, &["127.0.0.1"])
    }

    /// A certificate for `names` (host names or IP addresses), written as `{file}.pem` and
    /// `{file}.key`; its DER.
    pub fn sign_for(&self, file: &str, names: &[&str]) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &self.cert, &self.key)
            .expect("certificate");
        std::fs::write(self.dir.join(format!("{file}.pem")), leaf.pem()).expect("write");
        std::fs::write(self.dir.join(format!("{file}.key")), key.serialize_pem()).expect("write");
        leaf.der().clone()
    }
}

/// A TLS client's configuration trusting `ca` alone.
pub fn client_config(ca: CertificateDer<'static>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("root");
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth()
}
