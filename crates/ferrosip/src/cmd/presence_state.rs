//! The presence server's state in the server: each second the changes to subscriptions
//! and publications go to the store (in order, by one writer that keeps a failed batch and
//! tries it again with the next); at start the rules, subscriptions and publications the
//! store kept are taken back, so that a restart loses none.

use std::time::Instant;

use anyhow::Context;
use presence::Change;
use sip_proxy::Core;
use store::Store;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Most changes kept for a database that keeps failing; past it the oldest go (the state
/// in memory is right; a restart would miss them).
const MAX_UNWRITTEN: usize = 200_000;

/// Writes the presence server's changes.
pub(crate) struct PresenceWriter {
    writer: UnboundedSender<Vec<Change>>,
    written: tokio::task::JoinHandle<()>,
}

impl PresenceWriter {
    /// Starts the writer.
    pub(crate) fn start(store: &Store) -> PresenceWriter {
        let (writer, batches) = unbounded_channel();
        let written = tokio::spawn(write(store.clone(), batches));
        PresenceWriter { writer, written }
    }

    /// Queues a second's changes for the store.
    pub(crate) fn take(&self, changes: Vec<Change>) {
        if !changes.is_empty() && self.writer.send(changes).is_err() {
            tracing::error!("the presence writer has stopped");
        }
    }

    /// Takes the last changes and waits (5 s at most) for the writer to store them all.
    pub(crate) async fn finish(self, core: &Core) {
        let last = core.tick_presence(Instant::now());
        self.take(last.changes);
        drop(self.writer);
        let wait = tokio::time::timeout(std::time::Duration::from_secs(5), self.written);
        if wait.await.is_err() {
            tracing::error!("presence changes still unwritten at exit");
        }
    }
}

/// Takes back the rules, subscriptions and publications the store kept.
pub(crate) async fn restore(core: &Core, store: &Store) -> anyhow::Result<()> {
    let rules = store
        .presence_rules()
        .await
        .context("loading the presence rules")?;
    let (subs, pubs) = store
        .presence()
        .await
        .context("loading the subscriptions and publications")?;
    if rules.is_empty() && subs.is_empty() && pubs.is_empty() {
        return Ok(());
    }
    let (stored_subs, stored_pubs) = (subs.len(), pubs.len());
    let (subs, pubs) = core.restore_presence(Instant::now(), rules, subs, pubs);
    tracing::info!(
        subscriptions = subs,
        stored_subs,
        publications = pubs,
        stored_pubs,
        "presence state loaded"
    );
    Ok(())
}

/// Writes the batches in order; a batch the database refuses is tried again with the next.
async fn write(store: Store, mut batches: UnboundedReceiver<Vec<Change>>) {
    let mut pending: Vec<Change> = Vec::new();
    while let Some(b) = batches.recv().await {
        pending.extend(b);
        while let Ok(b) = batches.try_recv() {
            pending.extend(b);
        }
        match store.record_presence(&pending).await {
            Ok(()) => pending.clear(),
            Err(e) => {
                tracing::error!(error = %e, changes = pending.len(), "presence changes not stored yet");
                // One change the database refuses must not hold back the rest: each alone,
                // and one that fails alone is dropped (a database that is down keeps all).
                let mut kept = Vec::new();
                let mut refused = 0;
                for c in pending.drain(..) {
                    match store.record_presence(std::slice::from_ref(&c)).await {
                        Ok(()) => {}
                        Err(_) if store.ping().await => refused += 1,
                        Err(_) => kept.push(c),
                    }
                }
                if refused > 0 {
                    tracing::error!(refused, "presence changes the database refuses, dropped");
                }
                pending = kept;
                if pending.len() > MAX_UNWRITTEN {
                    let over = pending.len() - MAX_UNWRITTEN;
                    pending.drain(..over);
                }
            }
        }
    }
}
