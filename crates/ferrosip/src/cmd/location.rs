//! `ferrosip location show|rm`: the registered contacts in the database.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use registrar::Change;
use sip_message::Uri;
use store::SqliteStore;

/// What to do with the location table.
#[derive(Debug, Subcommand)]
pub(crate) enum LocationAction {
    /// Show the registered contacts, of one address-of-record or of all.
    Show {
        /// `user@domain` or `sip:user@domain`.
        aor: Option<String>,
    },
    /// Remove every contact of an address-of-record (a running server forgets them when it
    /// restarts; the management API will tell it at once).
    Rm {
        /// `user@domain` or `sip:user@domain`.
        aor: String,
    },
}

/// The canonical address-of-record of `user@domain` or a SIP URI.
fn canonical(aor: &str) -> anyhow::Result<String> {
    let text = if aor.contains(':') {
        aor.to_owned()
    } else {
        format!("sip:{aor}")
    };
    Uri::parse(&text)
        .ok()
        .as_ref()
        .and_then(registrar::aor_of)
        .with_context(|| format!("{aor:?} is not an address-of-record (user@domain)"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs a `location` command against the database at `db`.
pub(crate) async fn run(db: PathBuf, action: LocationAction) -> anyhow::Result<()> {
    let store = SqliteStore::open(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let now = unix_now();
    let live = store
        .load_all()
        .await?
        .into_iter()
        .filter(|b| b.expires_at > now);
    match action {
        LocationAction::Show { aor } => {
            let aor = aor.as_deref().map(canonical).transpose()?;
            let mut bindings: Vec<_> = live
                .filter(|b| aor.as_ref().is_none_or(|a| &b.aor == a))
                .collect();
            bindings.sort_by(|a, b| a.aor.cmp(&b.aor).then(b.q.cmp(&a.q)));
            for b in bindings {
                println!(
                    "{}\t{}\tq={}.{:03}\texpires in {} s\tfrom {}{}",
                    b.aor,
                    b.contact,
                    b.q / 1000,
                    b.q % 1000,
                    b.expires_at - now,
                    b.source,
                    b.user_agent.map_or(String::new(), |ua| format!("\t{ua}"))
                );
            }
        }
        LocationAction::Rm { aor } => {
            let aor = canonical(&aor)?;
            let changes: Vec<Change> = live
                .filter(|b| b.aor == aor)
                .map(|b| Change::Remove {
                    aor: b.aor,
                    contact: b.contact,
                })
                .collect();
            if changes.is_empty() {
                bail!("{aor} has no contacts");
            }
            store.apply(&changes).await?;
            println!("removed {} contact(s) of {aor}", changes.len());
        }
    }
    Ok(())
}
