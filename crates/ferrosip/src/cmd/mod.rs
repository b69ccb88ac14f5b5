//! Subcommands.

pub(crate) mod location;
pub(crate) mod parse;
mod parse_json;
pub(crate) mod ping;
pub(crate) mod serve;
pub(crate) mod user;
