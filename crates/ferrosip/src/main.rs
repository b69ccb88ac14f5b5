//! `ferrosip`: the SIP server binary and its operator subcommands.

mod cmd;
mod config;
mod script;

use std::path::PathBuf;
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
    /// Run the registrar and proxy. Without a config file: UDP and TCP on 0.0.0.0:5060 and
    /// the location table in ./ferrosip.db.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen address, replacing the configured ones: `udp:127.0.0.1:5070`,
        /// `tcp:[::1]:5060`. Repeat for several.
        #[arg(long)]
        listen: Vec<transport::Listen>,
        /// SQLite file of the location table.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Routing script, replacing the configured one.
        #[arg(long)]
        script: Option<PathBuf>,
    },
    /// Check a configuration file and its routing script; exit non-zero with the file, line
    /// (and column) of every error. Without --config, checks the default script.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage the subscribers (in the database of the configuration, or --db).
    User {
        /// Configuration file (TOML), for the database it names.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        /// SQLite database, instead of the configured one.
        #[arg(long, global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        action: cmd::user::UserAction,
    },
    /// Show or remove registered contacts (in the database of the configuration, or --db).
    Location {
        /// Configuration file (TOML), for the database it names.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        /// SQLite database, instead of the configured one.
        #[arg(long, global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        action: cmd::location::LocationAction,
    },
    /// Send OPTIONS to a SIP URI and print the answer and the round-trip time; exits 1
    /// without an answer.
    Ping {
        /// `sip:host[:port]` or `sip:user@host[:port]`.
        uri: String,
        /// Seconds to wait.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Parse one SIP message (raw bytes, as from a UDP datagram) and print it as JSON.
    /// Exits 1 with the reason and the offending line when the message is malformed.
    Parse {
        /// File to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            db,
            script,
        } => {
            init_logging();
            cmd::serve::run(
                config.as_deref(),
                cmd::serve::Overrides {
                    listen,
                    database: db,
                    script,
                },
            )
            .map(|()| ExitCode::SUCCESS)
        }
        Command::Check { config } => check(config.as_deref()),
        Command::Parse { file } => cmd::parse::run(file.as_deref()),
        Command::User { config, db, action } => {
            with_db(config.as_deref(), db, |db| cmd::user::run(db, action))
        }
        Command::Location { config, db, action } => {
            with_db(config.as_deref(), db, |db| cmd::location::run(db, action))
        }
        Command::Ping { uri, timeout } => {
            cmd::ping::run(&uri, std::time::Duration::from_secs(timeout))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `ferrosip check`: the configuration, then its routing script.
fn check(path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let cfg = match path {
        Some(p) => config::Config::load(p)?,
        None => config::Config::default(),
    };
    script::load_script(cfg.routing.script.as_deref())?;
    let script = cfg
        .routing
        .script
        .as_deref()
        .map_or("the default script".into(), |p| p.display().to_string());
    match path {
        Some(p) => println!("{}: OK ({script}: OK)", p.display()),
        None => println!("{script}: OK"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a database command on the database of the configuration (or `--db`).
fn with_db<F, Fut>(
    config: Option<&std::path::Path>,
    db: Option<PathBuf>,
    f: F,
) -> anyhow::Result<ExitCode>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let cfg = match config {
        Some(p) => config::Config::load(p)?,
        None => config::Config::default(),
    };
    let db = db.unwrap_or(cfg.server.database);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(f(db))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROSIP_LOG")
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
