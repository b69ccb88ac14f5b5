//! The database: the location table — bindings are written before the REGISTER is answered
//! and loaded again at start-up, so they survive a restart and a `kill -9` — the
//! subscribers, the hosted domains and the aliases.
//!
//! One [`Store`] type over three databases, chosen by the URL given to [`Store::open`]: an
//! SQLite file (the embedded default), PostgreSQL, or MariaDB/MySQL. Each has its own
//! migrations (`migrations/<backend>/`) that make the same tables.

mod backend;
mod cdr;
mod dialect;
mod dialogs;
mod domains;
mod location;
mod messages;
mod presence;
mod secrets;
mod subscribers;
#[cfg(test)]
mod tests;

pub use domains::Alias;
pub use subscribers::Subscriber;

use backend::Backend;

/// Errors of the store. Each message holds its cause (none is chained as a `source`, so a
/// report that prints the chain does not repeat it).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened (or its URL is not one of a known kind).
    #[error("cannot open {url}: {cause}")]
    Open {
        /// The URL or path, its password masked.
        url: String,
        /// Why.
        cause: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(sqlx::Error),
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> StoreError {
        StoreError::Migrate(e)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::Query(e)
    }
}

/// The database, whichever kind it is. Cloning is cheap: clones share the connections.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens the database and applies the migrations it lacks. `url` is one of:
    /// - `sqlite:PATH`, `sqlite://PATH` or a bare path: an SQLite file, created if needed, in
    ///   WAL mode with `synchronous = NORMAL` (every committed write survives a process
    ///   crash): the bindings written through a connection of their own, all else through
    ///   another;
    /// - `postgres://…` or `postgresql://…`: PostgreSQL;
    /// - `mysql://…` or `mariadb://…`: MariaDB or MySQL.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::connect(url).await?,
        })
    }

    /// Closes the connections of this store and of its clones; queries under way finish
    /// first, later ones fail. An SQLite database is left without `-wal` and `-shm` files.
    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Whether the database answers (a write it refused was refused for what it held).
    pub async fn ping(&self) -> bool {
        let answered = crate::backend::dispatch!(&self.backend, pool => {
            sqlx::query("SELECT 1").execute(pool).await.is_ok()
        });
        answered
    }

    /// On SQLite, copies the write-ahead log into the database file as far as it can without
    /// waiting for the writer (a PASSIVE checkpoint); call it every few seconds. Nothing to
    /// do on the other databases.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Backend::Sqlite { checkpointer, .. } = &self.backend {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(checkpointer)
                .await?;
        }
        Ok(())
    }
}

/// The file of an SQLite database URL (`sqlite:PATH`, `sqlite://PATH` or a bare path);
/// None for the URL of a database server.
pub fn sqlite_file(url: &str) -> Option<&std::path::Path> {
    let path = match url.split_once("://") {
        Some(("sqlite", path)) => path,
        Some(_) => return None,
        None => url.strip_prefix("sqlite:").unwrap_or(url),
    };
    Some(std::path::Path::new(path))
}

/// `url` with its password, in the user information or a `password=` parameter, as `***`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user information ends at the last '@': a password may hold a bare '@' or '/'.
    let mut masked = match rest
        .rfind('@')
        .and_then(|at| Some((rest[..at].find(':')?, at)))
    {
        Some((colon, at)) => format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    };
    if let Some(i) = masked.find("password=") {
        let start = i + "password=".len();
        let end = masked[start..]
            .find('&')
            .map_or(masked.len(), |n| start + n);
        masked.replace_range(start..end, "***");
    }
    masked
}
