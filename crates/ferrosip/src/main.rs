//! `ferrosip`: the SIP server binary and its operator subcommands.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ferrosip — SIP registrar, proxy and redirect server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse one SIP message (raw bytes, as from a UDP datagram) and print it as JSON.
    /// Exits 1 with the reason and the offending line when the message is malformed.
    Parse {
        /// File to read; `-` or nothing reads standard input.
        file: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse { file } => cmd::parse::run(file.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
