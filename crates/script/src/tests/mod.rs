//! Unit tests.

mod env;
mod errors;
mod lexer;
mod parser;
mod preprocess;
mod preprocess_props;
mod props;
mod runtime;
