//! Where the management commands go: the database of the configuration (or `--db`), or a
//! running server's API (`--api`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::database::Database;
use crate::config::Config;
use crate::manage::{Client, Op, Reply};

/// The Debian package's configuration, read when neither `--config` nor `--db` is given.
const SYSTEM_CONFIG: &str = "/etc/ferrosip/ferrosip.toml";

/// Where operations go: the database, or a running server's API.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// Configuration file (TOML): the database and the API it names. Default:
    /// /etc/ferrosip/ferrosip.toml if it exists (and no --db), else the built-in defaults
    /// (./ferrosip.db, the API on 127.0.0.1:5080 with ./ferrosip.token).
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

impl Target {
    /// The configuration, and the file it came from.
    fn config(&self) -> anyhow::Result<(Config, Option<PathBuf>)> {
        let path = match &self.config {
            Some(p) => Some(p.clone()),
            None if self.db.is_none() && Path::new(SYSTEM_CONFIG).exists() => {
                Some(SYSTEM_CONFIG.into())
            }
            None => None,
        };
        let cfg = match &path {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        Ok((cfg, path))
    }

    /// Carries out `op` where the target says, and prints the answer (what was not found
    /// on standard error).
    pub(crate) fn run(&self, op: anyhow::Result<Op>) -> anyhow::Result<()> {
        self.run_as(op?, false)
    }

    /// [`Self::run`], printing the answer as JSON lines when `json`.
    pub(crate) fn run_as(&self, op: Op, json: bool) -> anyhow::Result<()> {
        let none = op.none_found();
        let (cfg, file) = self.config()?;
        let reply = if self.api {
            client(&cfg)?.execute(&op)?
        } else {
            let database = match &self.db {
                Some(url) => Database::new(url, "given with --db".into()),
                None => Database::new(
                    &cfg.server.database,
                    file.map_or("the default, in the current folder".into(), |f| {
                        format!("from {}", f.display())
                    }),
                ),
            };
            database.execute(op)?
        };
        match (reply.is_empty(), json) {
            (true, _) => eprintln!("{none}"),
            (false, true) => reply.print_json_lines(),
            (false, false) => reply.print(),
        }
        Ok(())
    }

    /// The API client for `stats`, `monitor` and `reload`.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        client(&self.config()?.0)
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
