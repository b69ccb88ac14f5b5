//! `ferrosip user|domain|alias|location …`: the subcommands and the operations they name.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::manage::{self, Op};

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

/// Who may watch a user's presence.
#[derive(Debug, Subcommand)]
pub(crate) enum PresenceAction {
    /// OWNER (user@domain) lets WATCHER (user@domain) see its presence and calls.
    Allow { owner: String, watcher: String },
    /// OWNER blocks WATCHER: its subscriptions end and new ones get no state.
    Block { owner: String, watcher: String },
    /// Forgets OWNER's rule for WATCHER (the default again: its domain sees, others wait).
    Forget { owner: String, watcher: String },
    /// OWNER's rules: watcher and rule, one per line.
    Rules { owner: String },
}

impl PresenceAction {
    pub(crate) fn op(self) -> Op {
        let rule = |owner, watcher, rule: Option<&str>| Op::PresenceRule {
            owner,
            watcher,
            rule: rule.map(str::to_owned),
        };
        match self {
            PresenceAction::Allow { owner, watcher } => rule(owner, watcher, Some("allow")),
            PresenceAction::Block { owner, watcher } => rule(owner, watcher, Some("block")),
            PresenceAction::Forget { owner, watcher } => rule(owner, watcher, None),
            PresenceAction::Rules { owner } => Op::PresenceRules { owner },
        }
    }
}

/// What else `ferrosip calls` does.
#[derive(Debug, Subcommand)]
pub(crate) enum CallsAction {
    /// End an answered call from the server: a BYE to each side (its record says so).
    End {
        /// Its Call-ID, as `ferrosip calls` shows it.
        call_id: String,
    },
}

/// Call records.
#[derive(Debug, Subcommand)]
pub(crate) enum CdrAction {
    /// List the call records, newest first: one line each (start, caller -> callee, status,
    /// talk time or "missed", who hung up, Call-ID), or JSON lines with --json.
    List {
        /// Only the calls this user made or got (`user@domain` or `sip:user@domain`).
        #[arg(long)]
        user: Option<String>,
        /// Only the calls started at or after this time (Unix seconds).
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// At most this many.
        #[arg(long, default_value_t = CDR_LIMIT)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// Call records listed at most, unless asked for more.
pub(crate) const CDR_LIMIT: usize = 1000;

impl CdrAction {
    /// The operation, and whether its answer is printed as JSON lines.
    pub(crate) fn op(self) -> (Op, bool) {
        match self {
            CdrAction::List {
                user,
                since,
                limit,
                json,
            } => (Op::CdrList { user, since, limit }, json),
        }
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
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask the password on: give --password-stdin to read it from standard input");
        }
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
