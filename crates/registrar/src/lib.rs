//! The SIP registrar and location service (RFC 3261 §10, RFC 3327 Path, RFC 5626 flows),
//! without IO: a
//! REGISTER and the time go in; the changes to persist and the 200 OK come out.

mod aor;
mod binding;
mod limits;
mod location;
mod outbound;
mod register;
mod response;
#[cfg(test)]
mod tests;

pub use aor::{aor_of, uri_equal};
pub use binding::{Binding, Change};
pub use location::Location;
pub use outbound::{one_flow_per_instance, other_flows};
pub use register::{process_register, Registered, RegistrarConfig, Rejection};
pub use response::ok_response;
