//! The database as the management commands use it: a missing SQLite file is created only
//! by an operation that adds something, and the commands that change it name it.

use std::path::Path;

use anyhow::bail;
use store::Store;

use crate::manage::{self, Op, Reply};

/// A database named by a URL or path, and where that came from (for messages).
pub(crate) struct Database {
    url: String,
    origin: String,
}

impl Database {
    pub(crate) fn new(url: &str, origin: String) -> Database {
        Database {
            url: url.to_owned(),
            origin,
        }
    }

    /// Carries out `op` on the database. A missing SQLite file is refused unless `op` adds
    /// something; then it is created (and removed again if `op` fails).
    pub(crate) fn execute(&self, op: Op) -> anyhow::Result<Reply> {
        let file = store::sqlite_file(&self.url)
            .map(std::path::absolute)
            .transpose()?;
        let created = match &file {
            Some(f) if !f.exists() => {
                if !op.adds() {
                    bail!(
                        "no database at {} ({}; `ferrosip serve` or an `add` command creates it, \
                         --config FILE or --db FILE|URL names another)",
                        f.display(),
                        self.origin
                    );
                }
                eprintln!("creating database {}", f.display());
                Some(f.as_path())
            }
            _ => None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let reply = runtime.block_on(async {
            let store = Store::open(&self.url).await?;
            let reply = manage::execute(&store, None, op).await;
            store.close().await;
            anyhow::Ok(reply?)
        });
        match (created, &reply) {
            (Some(f), Err(_)) => {
                let _ = std::fs::remove_file(f);
            }
            (Some(f), Ok(_)) => give_to_folder_owner(f),
            _ => {}
        }
        let shown = file.map_or(store::mask_password(&self.url), |f| f.display().to_string());
        Ok(match reply? {
            Reply::Done { message } => Reply::Done {
                message: format!("{message} (database {shown})"),
            },
            other => other,
        })
    }
}

/// A database file root made in another user's folder (`/var/lib/ferrosip`, the service's)
/// goes to that user, so that the server running as it can write it.
fn give_to_folder_owner(file: &Path) {
    use std::os::unix::fs::MetadataExt;
    let folder = file.parent().map(Path::metadata);
    let (Ok(meta), Some(Ok(folder))) = (file.metadata(), folder) else {
        return;
    };
    if meta.uid() == 0 && folder.uid() != 0 {
        if let Err(e) = std::os::unix::fs::chown(file, Some(folder.uid()), Some(folder.gid())) {
            eprintln!("warning: {} stays root's: {e}", file.display());
        }
    }
}
