//! Subcommands.

pub(crate) mod parse;
mod parse_json;
pub(crate) mod serve;
pub(crate) mod user;
