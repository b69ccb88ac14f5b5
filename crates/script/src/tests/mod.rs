//! Unit tests.

mod env;
mod errors;
mod lexer;
mod parser;
mod props;
mod runtime;
