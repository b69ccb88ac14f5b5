//! `ferrosip user …`: the subscribers in the database, managed directly.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use auth::Secrets;
use clap::Subcommand;
use store::{SqliteStore, Subscriber};

/// What to do with subscribers.
#[derive(Debug, Subcommand)]
pub(crate) enum UserAction {
    /// Add a subscriber; the password is asked for (or read from standard input).
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

/// `user@domain`, both parts non-empty and without spaces.
fn split(address: &str) -> anyhow::Result<(&str, &str)> {
    match address.rsplit_once('@') {
        Some((u, d))
            if !u.is_empty() && !d.is_empty() && !address.contains(char::is_whitespace) =>
        {
            Ok((u, d))
        }
        _ => bail!("{address:?} is not user@domain"),
    }
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

/// Runs a `user` command against the database at `db`.
pub(crate) async fn run(db: PathBuf, action: UserAction) -> anyhow::Result<()> {
    let store = SqliteStore::open(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    match action {
        UserAction::Add {
            address,
            password_stdin,
        } => {
            let (user, domain) = split(&address)?;
            let secrets = Secrets::from_password(
                user,
                &domain.to_ascii_lowercase(),
                &password(password_stdin)?,
            );
            let s = Subscriber {
                username: user.to_owned(),
                domain: domain.to_ascii_lowercase(),
                secrets,
            };
            if !store.add_subscriber(&s).await? {
                bail!("{address} exists already (`ferrosip user passwd` changes its password)");
            }
            println!("added {user}@{}", s.domain);
        }
        UserAction::Passwd {
            address,
            password_stdin,
        } => {
            let (user, domain) = split(&address)?;
            let domain = domain.to_ascii_lowercase();
            let secrets = Secrets::from_password(user, &domain, &password(password_stdin)?);
            if !store.set_secrets(user, &domain, &secrets).await? {
                bail!("no subscriber {address}");
            }
            println!("password of {user}@{domain} changed");
        }
        UserAction::Rm { address } => {
            let (user, domain) = split(&address)?;
            if !store.remove_subscriber(user, domain).await? {
                bail!("no subscriber {address}");
            }
            println!("removed {address}");
        }
        UserAction::List { domain } => {
            for s in store.subscribers(domain.as_deref()).await? {
                println!("{}@{}", s.username, s.domain);
            }
        }
        UserAction::Show { address } => {
            let (user, domain) = split(&address)?;
            let found = store
                .subscribers(Some(domain))
                .await?
                .into_iter()
                .find(|s| s.username == user);
            let Some(s) = found else {
                bail!("no subscriber {address}");
            };
            println!("user:       {}\ndomain:     {}\nalgorithms: SHA-256, MD5 (HA1 stored, not the password)", s.username, s.domain);
        }
    }
    Ok(())
}
