//! `ferrosip`: the SIP server binary and its operator subcommands.

/// jemalloc: transactions are created on the receive threads and completed or freed on the
/// main runtime, a cross-thread pattern glibc's arenas handle poorly (its frees and fastbin
/// consolidation cost a REGISTER about 8% more CPU in sipbench).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod api;
mod cmd;
mod config;
mod locate;
mod manage;
mod media;
mod metrics;
mod ng_client;
mod reload;
mod resolve;
mod script;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
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
        /// Database (SQLite file, postgres:// or mysql:// URL), replacing the configured one.
        #[arg(long)]
        db: Option<String>,
        /// Routing script, replacing the configured one.
        #[arg(long)]
        script: Option<PathBuf>,
        /// Management API address (`127.0.0.1:5080`), or `off`.
        #[arg(long)]
        api: Option<String>,
    },
    /// Run the media relay alone, answering rtpengine's ng protocol (for Kamailio's or
    /// OpenSIPS's rtpengine module, or a ferrosip with `[relay] ng`). Uses the `[relay]`
    /// section of the configuration.
    Relay {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The ng control address, replacing `[relay] ng_listen` (127.0.0.1:2223).
        #[arg(long)]
        ng: Option<std::net::SocketAddr>,
    },
    /// Check a configuration file and its routing script; exit non-zero with the file, line
    /// (and column) of every error. Without --config, checks the default script.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage the subscribers (in the database, or through the API with --api).
    User {
        #[command(flatten)]
        target: cmd::target::Target,
        #[command(subcommand)]
        action: cmd::manage::UserAction,
    },
    /// Manage the hosted domains.
    Domain {
        #[command(flatten)]
        target: cmd::target::Target,
        #[command(subcommand)]
        action: cmd::manage::DomainAction,
    },
    /// Manage aliases: extra addresses that reach a subscriber's contacts.
    Alias {
        #[command(flatten)]
        target: cmd::target::Target,
        #[command(subcommand)]
        action: cmd::manage::AliasAction,
    },
    /// Show or remove registered contacts.
    Location {
        #[command(flatten)]
        target: cmd::target::Target,
        #[command(subcommand)]
        action: cmd::manage::LocationAction,
    },
    /// The running server's calls in progress that its script follows (`dlg_manage()`):
    /// start, caller -> callee, ringing or talking since, Call-ID; or `end CALL-ID`.
    Calls {
        #[command(flatten)]
        target: cmd::target::Target,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<cmd::manage::CallsAction>,
    },
    /// Who may watch a user's presence: `allow`, `block` or `forget` a watcher, list the
    /// `rules` (with --api the running server applies them at once).
    Presence {
        #[command(flatten)]
        target: cmd::target::Target,
        #[command(subcommand)]
        action: cmd::manage::PresenceAction,
    },
    /// Call detail records of the calls the routing script follows (`dlg_manage()`).
    Cdr {
        #[command(flatten)]
        target: cmd::target::Target,
        #[command(subcommand)]
        action: cmd::manage::CdrAction,
    },
    /// Print the running server's counters (from its API's /metrics).
    Stats {
        #[command(flatten)]
        target: cmd::target::Target,
        /// Also the counters still at zero.
        #[arg(long)]
        all: bool,
    },
    /// Show the running server's counters and their rates, refreshed.
    Monitor {
        #[command(flatten)]
        target: cmd::target::Target,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Stop after this many refreshes.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Make the running server reload its routing script and directory (subscribers,
    /// domains, aliases); a script with errors is refused and the old one keeps running.
    Reload {
        #[command(flatten)]
        target: cmd::target::Target,
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
            api,
        } => {
            init_logging();
            cmd::serve::run(
                config.as_deref(),
                cmd::serve::Overrides {
                    listen,
                    database: db,
                    script,
                    api,
                },
            )
            .map(|()| ExitCode::SUCCESS)
        }
        Command::Relay { config, ng } => {
            init_logging();
            cmd::relay::run(config.as_deref(), ng).map(|()| ExitCode::SUCCESS)
        }
        Command::Check { config } => check(config.as_deref()),
        Command::Parse { file } => cmd::parse::run(file.as_deref()),
        Command::User { target, action } => target.run(action.op()).map(|()| ExitCode::SUCCESS),
        Command::Domain { target, action } => {
            target.run(Ok(action.op())).map(|()| ExitCode::SUCCESS)
        }
        Command::Alias { target, action } => {
            target.run(Ok(action.op())).map(|()| ExitCode::SUCCESS)
        }
        Command::Location { target, action } => {
            target.run(Ok(action.op())).map(|()| ExitCode::SUCCESS)
        }
        Command::Calls {
            target,
            json,
            action,
        } => {
            let op = match action {
                Some(cmd::manage::CallsAction::End { call_id }) => manage::Op::CallEnd { call_id },
                None => manage::Op::Calls,
            };
            target.run_as(op, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Presence { target, action } => {
            target.run(Ok(action.op())).map(|()| ExitCode::SUCCESS)
        }
        Command::Cdr { target, action } => {
            let (op, json) = action.op();
            target.run_as(op, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Stats { target, all } => target
            .client()
            .and_then(|c| cmd::stats::stats(&c, all))
            .map(|()| ExitCode::SUCCESS),
        Command::Monitor {
            target,
            interval,
            count,
        } => target
            .client()
            .and_then(|c| {
                let every = std::time::Duration::from_secs_f64(interval.max(0.1));
                cmd::stats::monitor(&c, every, count)
            })
            .map(|()| ExitCode::SUCCESS),
        Command::Reload { target } => target.reload().map(|r| {
            r.print();
            ExitCode::SUCCESS
        }),
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
    if let Some(files) = cfg.tls.files() {
        transport::Tls::load(&files).context("[tls]")?;
    }
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROSIP_LOG")
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
