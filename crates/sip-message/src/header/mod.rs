//! Header names and the typed views of header values, each parsed on demand from the
//! message buffer.

mod auth;
mod cseq;
pub(crate) mod list;
mod name;
mod name_addr;
mod simple;
mod via;

pub use auth::AuthHeader;
pub use cseq::CSeq;
pub use list::ListIter;
pub use name::HeaderName;
pub use name_addr::{parse_delta_seconds, parse_qvalue, Contact, NameAddr};
pub use simple::{
    check_date, parse_call_id, parse_content_length, parse_max_forwards, parse_seconds,
    parse_tokens, MediaType,
};
pub use via::Via;
