//! The relay's DTLS identity: a self-signed certificate made at start, and its
//! fingerprint, which the SDP towards a browser names (RFC 8122 §5).

use std::sync::Arc;

use dimpl::DtlsCertificate;
use sdp::Fingerprint;
use sha2::Digest;

/// Why no identity could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityError(String);

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no DTLS certificate: {}", self.0)
    }
}

impl std::error::Error for IdentityError {}

/// A certificate, its key, its SHA-256 fingerprint and the DTLS settings every leg shares.
#[derive(Clone)]
pub struct Identity {
    pub(crate) certificate: DtlsCertificate,
    pub(crate) config: Arc<dimpl::Config>,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", fingerprint_value(&self.fingerprint))
    }
}

impl Identity {
    /// A new self-signed ECDSA P-256 certificate. The peer must present one too, which
    /// is checked against its SDP's fingerprint; the server's cookie exchange (RFC 6347
    /// §4.2.1) stays on, so a spoofed ClientHello gets no handshake flight.
    pub fn generate() -> Result<Identity, IdentityError> {
        let certificate = dimpl::certificate::generate_self_signed_certificate()
            .map_err(|e| IdentityError(format!("{e:?}")))?;
        let config = dimpl::Config::builder()
            .build()
            .map_err(|e| IdentityError(e.to_string()))?;
        let fingerprint = Fingerprint {
            hash: "sha-256".to_owned(),
            digest: sha2::Sha256::digest(&certificate.certificate).to_vec(),
        };
        Ok(Identity {
            certificate,
            config: Arc::new(config),
            fingerprint,
        })
    }

    /// The certificate's fingerprint (SHA-256).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// The value of an `a=fingerprint` line: `sha-256 AB:CD:…`.
pub fn fingerprint_value(f: &Fingerprint) -> String {
    let hex: Vec<String> = f.digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("{} {}", f.hash, hex.join(":"))
}

/// True when the certificate `der` has the fingerprint `f` (SHA-256, -384 or -512; a
/// fingerprint by another function, SHA-1 included, matches nothing).
pub(crate) fn matches(f: &Fingerprint, der: &[u8]) -> bool {
    let digest = match f.hash.as_str() {
        "sha-256" => sha2::Sha256::digest(der).to_vec(),
        "sha-384" => sha2::Sha384::digest(der).to_vec(),
        "sha-512" => sha2::Sha512::digest(der).to_vec(),
        _ => return false,
    };
    digest == f.digest
}
