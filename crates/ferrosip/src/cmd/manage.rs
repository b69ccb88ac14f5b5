//! `ferrosip user|domain|alias|location …`: management operations, on the database or
//! through a running server's API.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::config::Config;
use crate::manage::{self, Client, Op, Reply};

/// Where operations go: the database, or a running server's API.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// Configuration file (TOML): the database and the API it names.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Database (SQLite file, postgres:// or mysql:// URL) instead of the configured one.
    #[arg(long, global = true)]
    db: Option<String>,
    /// Go through the running server's management API (a change applies at once) instead
    /// of the database (the server then picks it up on `ferrosip reload` or SIGHUP).
    #[arg(long, global = true)]
    api: bool,
}

/// Subscribers.
#[derive(Debug, Subcommand)]
pub(crate) enum UserAction {
    /// Add a subscriber (and its domain, if new); the password is asked for.
    Add {
        /// `user@domain`.
        address: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a subscriber's password.
    Passwd {
        /// `user@domain`.
        address: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a subscriber.
    Rm {
        /// `user@domain`.
        address: String,
    },
    /// List the subscribers, of one domain or of all.
    List {
        /// Only this domain.
        domain: Option<String>,
    },
    /// Show one subscriber.
    Show {
        /// `user@domain`.
        address: String,
    },
}

/// Hosted domains.
#[derive(Debug, Subcommand)]
pub(crate) enum DomainAction {
    /// Host a domain: requests for it are ours (registrar, location).
    Add { domain: String },
    /// Stop hosting a domain (refused while it has subscribers or aliases).
    Rm { domain: String },
    /// List the hosted domains.
    List,
}

/// Aliases: extra addresses that reach a subscriber.
#[derive(Debug, Subcommand)]
pub(crate) enum AliasAction {
    /// Make `alias` (user@domain) reach the contacts of `target` (user@domain).
    Add { alias: String, target: String },
    /// Remove an alias.
    Rm { alias: String },
    /// List the aliases, of one domain or of all.
    List { domain: Option<String> },
}

/// Registered contacts.
#[derive(Debug, Subcommand)]
pub(crate) enum LocationAction {
    /// Show the registered contacts, of one address-of-record or of all.
    Show {
        /// `user@domain` or `sip:user@domain`.
        aor: Option<String>,
    },
    /// Remove every contact of an address-of-record.
    Rm {
        /// `user@domain` or `sip:user@domain`.
        aor: String,
    },
}

/// The password from a prompt (twice, without echo) or the first line of standard input.
fn password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

impl UserAction {
    pub(crate) fn op(self) -> anyhow::Result<Op> {
        Ok(match self {
            UserAction::Add {
                address,
                password_stdin,
            } => {
                manage::split(&address)?;
                Op::UserAdd {
                    address,
                    password: password(password_stdin)?,
                }
            }
            UserAction::Passwd {
                address,
                password_stdin,
            } => {
                manage::split(&address)?;
                Op::UserPasswd {
                    address,
                    password: password(password_stdin)?,
                }
            }
            UserAction::Rm { address } => Op::UserRm { address },
            UserAction::List { domain } => Op::UserList { domain },
            UserAction::Show { address } => Op::UserShow { address },
        })
    }
}

impl DomainAction {
    pub(crate) fn op(self) -> Op {
        match self {
            DomainAction::Add { domain } => Op::DomainAdd { domain },
            DomainAction::Rm { domain } => Op::DomainRm { domain },
            DomainAction::List => Op::DomainList,
        }
    }
}

impl AliasAction {
    pub(crate) fn op(self) -> Op {
        match self {
            AliasAction::Add { alias, target } => Op::AliasAdd { alias, target },
            AliasAction::Rm { alias } => Op::AliasRm { alias },
            AliasAction::List { domain } => Op::AliasList { domain },
        }
    }
}

impl LocationAction {
    pub(crate) fn op(self) -> Op {
        match self {
            LocationAction::Show { aor } => Op::LocationShow { aor },
            LocationAction::Rm { aor } => Op::LocationRm { aor },
        }
    }
}

impl Target {
    fn config(&self) -> anyhow::Result<Config> {
        match &self.config {
            Some(p) => Config::load(p),
            None => Ok(Config::default()),
        }
    }

    /// Carries out `op` where the target says, and prints the answer.
    pub(crate) fn run(&self, op: anyhow::Result<Op>) -> anyhow::Result<()> {
        let op = op?;
        let cfg = self.config()?;
        let reply = if self.api {
            client(&cfg)?.execute(&op)?
        } else {
            let url = self.db.clone().unwrap_or(cfg.server.database);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let store = store::Store::open(&url).await?;
                anyhow::Ok(manage::execute(&store, None, op).await?)
            })?
        };
        reply.print();
        Ok(())
    }

    /// The API client for `stats`, `monitor` and `reload`.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        client(&self.config()?)
    }

    /// Asks the running server to reload its script and directory.
    pub(crate) fn reload(&self) -> anyhow::Result<Reply> {
        self.client()?.reload()
    }
}

/// The API of the configuration, with its token (`FERROSIP_API_TOKEN` overrides it).
fn client(cfg: &Config) -> anyhow::Result<Client> {
    let Some(addr) = cfg.api.address() else {
        bail!("the management API is off in the configuration ([api] listen)");
    };
    let token = match std::env::var("FERROSIP_API_TOKEN") {
        Ok(t) => t,
        Err(_) => match &cfg.api.token {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(&cfg.api.token_file)
                .with_context(|| {
                    format!(
                        "reading the API token from {} (made by `ferrosip serve`; or set FERROSIP_API_TOKEN)",
                        cfg.api.token_file.display()
                    )
                })?
                .trim()
                .to_owned(),
        },
    };
    Ok(Client::new(&format!("http://{addr}"), &token))
}
