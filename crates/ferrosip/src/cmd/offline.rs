//! Messages for users who are offline, in the server: the writes the core asks for
//! ([`Command::Messages`]) go to the store in order, each tried again a few times; at start
//! the messages the store kept are taken back.
//!
//! [`Command::Messages`]: sip_proxy::Command::Messages

use std::time::Duration;

use anyhow::Context;
use sip_proxy::{Core, MessageWrite};
use store::Store;
use tokio::sync::mpsc::UnboundedReceiver;

/// Writes what the core asks, in order.
pub(crate) async fn writer(store: Store, mut writes: UnboundedReceiver<MessageWrite>) {
    while let Some(w) = writes.recv().await {
        for pause in [0, 100, 500, 2000, u64::MAX] {
            if pause == u64::MAX {
                // Kept in memory all the same: delivered unless the server stops first.
                tracing::error!(?w, "a message write failed");
                break;
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let done = match &w {
                MessageWrite::Keep(m) => store.keep_message(m).await,
                MessageWrite::Remove(ids) => store.remove_messages(ids).await,
            };
            match done {
                Ok(()) => break,
                Err(e) => tracing::warn!(error = %e, "a message write failed; trying again"),
            }
        }
    }
}

/// Takes back the messages the store kept.
pub(crate) async fn restore(core: &Core, store: &Store) -> anyhow::Result<()> {
    let kept = store
        .messages()
        .await
        .context("loading the messages kept for users offline")?;
    if !kept.is_empty() {
        let (stored, taken) = (kept.len(), core.restore_messages(kept));
        tracing::info!(stored, taken, "messages for users offline loaded");
    }
    Ok(())
}
