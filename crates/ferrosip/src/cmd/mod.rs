//! Subcommands.

pub(crate) mod parse;
mod parse_json;
