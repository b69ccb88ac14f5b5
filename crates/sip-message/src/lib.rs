//! SIP messages (RFC 3261) without IO: a zero-copy parser that indexes one shared buffer and
//! parses header values on demand, stream framing, and an editor that writes a modified
//! message by splicing the original bytes.
//!
//! ```
//! use sip_message::{HeaderName, Message};
//!
//! let msg = Message::parse(&b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
//!     To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\n\
//!     Call-ID: a84b4c76e66710\r\nCSeq: 63104 OPTIONS\r\nContent-Length: 0\r\n\r\n"[..])?;
//! assert_eq!(msg.top_via()?.branch(), Some("z9hG4bK776asdhds"));
//! assert_eq!(msg.from()?.tag(), Some("1928301774"));
//! assert_eq!(msg.header(HeaderName::CallId).map(|h| h.value), Some("a84b4c76e66710"));
//! # Ok::<(), sip_message::ParseError>(())
//! ```

mod builder;
mod edit;
mod error;
mod framing;
pub mod header;
mod host;
mod limits;
mod message;
mod method;
mod params;
mod protocol;
mod syntax;
mod uri;

pub use builder::{
    push_decimal, push_ip, push_socket_addr, response_to_unparsable, RequestBuilder,
    ResponseBuilder,
};
pub use edit::Editor;
pub use error::{ErrorKind, ParseError, SyntaxError};
pub use framing::{Frame, StreamDecoder};
pub use header::HeaderName;
pub use host::{canonical_domain, domain_in_uri, parse_port, Host};
pub use limits::Limits;
pub use message::{Header, Message};
pub use method::Method;
pub use params::{Param, ParamIter, Params};
pub use protocol::Protocol;
pub use syntax::{is_token, percent_decode, unquote};
pub use uri::{OtherUri, SipUri, TelUri, Uri};
