//! `ferrosip parse`: a captured message as JSON, or why it is malformed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sip_message::Message;

use super::parse_json::message_json;

/// Reads the message from `file` (standard input for `None` or `-`), prints JSON and returns
/// success, or prints the error and the offending line and returns exit code 1.
pub(crate) fn run(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut bytes = Vec::new();
    match file {
        Some(p) if p != Path::new("-") => {
            bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
        }
    }
    let parsed = Message::parse(bytes.clone()).and_then(|m| m.validate().map(|()| m));
    match parsed {
        Ok(m) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`ferrosip parse x | head`) is not an error worth a panic.
            let _ = writeln!(out, "{:#}", message_json(&m));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let (line, text) = e.line_in(&bytes);
            eprintln!("malformed message: {}\n  line {line}: {text}", e.kind);
            Ok(ExitCode::from(1))
        }
    }
}
