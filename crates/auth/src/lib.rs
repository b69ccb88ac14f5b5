//! SIP digest authentication (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760), without IO.
//!
//! The server keeps no state per challenge: a nonce carries the time it was issued and an
//! HMAC over it under the server's secret ([`NonceKey`]), so any nonce the server issued
//! can be checked, and an expired one answered with `stale=true`. What does need state is
//! replay protection: [`NonceCounts`] remembers the highest nonce-count seen per nonce
//! while the nonce lives. Subscribers' secrets are stored as HA1 per algorithm
//! ([`ha1`]), never as passwords; responses are compared in constant time.

mod algorithm;
mod credentials;
mod nonce;
mod replay;
mod subscribers;
mod verify;

pub use algorithm::{ha1, Algorithm};
pub use credentials::{CredentialError, Credentials, QopAuth};
pub use nonce::{NonceKey, NonceState};
pub use replay::NonceCounts;
pub use subscribers::{Secrets, Subscribers};
pub use verify::{challenge, expected_response, Authenticator, Verdict};
