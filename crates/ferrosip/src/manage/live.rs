//! The running server's side of management: what it holds in memory.

use std::sync::Arc;

use registrar::Location;
use sip_proxy::{Command, Core};
use store::{Store, StoreError};

use super::OpError;

/// The running server, for operations that change what it holds.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) core: Arc<Core>,
    pub(crate) location: Arc<Location>,
    /// Carries out what the core asks for (the BYEs that end a call).
    pub(crate) execute: Arc<dyn Fn(Vec<Command>) + Send + Sync>,
}

impl Live {
    /// Reloads subscribers, domains and aliases from the database.
    pub(crate) async fn reload_directory(&self, store: &Store) -> Result<(), OpError> {
        load_directory(&self.core, store).await?;
        Ok(())
    }
}

/// How much a directory holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Directory {
    pub(crate) subscribers: usize,
    pub(crate) domains: usize,
    pub(crate) aliases: usize,
}

impl std::fmt::Display for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} subscriber(s), {} domain(s), {} alias(es)",
            self.subscribers, self.domains, self.aliases
        )
    }
}

/// Gives the core the subscribers, hosted domains and aliases in the database; how many.
pub(crate) async fn load_directory(core: &Core, store: &Store) -> Result<Directory, StoreError> {
    let subscribers = store.load_subscribers().await?;
    let domains = store.domains().await?;
    let aliases = store.aliases(None).await?;
    let directory = Directory {
        subscribers: subscribers.len(),
        domains: domains.len(),
        aliases: aliases.len(),
    };
    core.set_subscribers(Arc::new(subscribers));
    core.config().hosted.replace(
        domains
            .iter()
            .map(|d| sip_message::canonical_domain(d).into_owned())
            .collect(),
    );
    core.set_aliases(
        aliases
            .into_iter()
            .map(|a| {
                let at = |user: &str, domain: &str| {
                    let domain = sip_message::canonical_domain(domain);
                    format!("{user}@{}", sip_message::domain_in_uri(&domain))
                };
                (
                    at(&a.username, &a.domain),
                    at(&a.target_username, &a.target_domain),
                )
            })
            .collect(),
    );
    Ok(directory)
}
