//! Subcommands.

mod accounting;
mod database;
mod group_commit;
pub(crate) mod manage;
mod offline;
pub(crate) mod parse;
mod parse_json;
pub(crate) mod ping;
mod presence_state;
pub(crate) mod relay;
pub(crate) mod serve;
pub(crate) mod stats;
pub(crate) mod target;
