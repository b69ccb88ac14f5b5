//! The database (SQLite through sqlx): the location table — bindings are written before
//! the REGISTER is answered and loaded again at start-up, so they survive a restart and a
//! `kill -9` — and the subscribers.

mod subscribers;

pub use subscribers::Subscriber;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use registrar::{Binding, Change};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

/// Rows per INSERT or DELETE statement (11 parameters each, far below SQLite's limit).
const ROWS_PER_STATEMENT: usize = 200;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// The database in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    checkpointer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the file, in WAL mode, and applies the migrations.
    /// `synchronous = NORMAL` with WAL keeps every committed write across a process crash.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // Commits never checkpoint (the fsync would hold up every waiting 200 OK);
            // `checkpoint` does it beside them.
            .pragma("wal_autocheckpoint", "0");
        // One connection writes (its page cache stays warm), another checkpoints.
        let one = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                // A local connection: nothing to check before each use.
                .test_before_acquire(false)
        };
        let pool = one()
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let checkpointer = one().connect_with(options).await.map_err(open_err)?;
        Ok(SqliteStore { pool, checkpointer })
    }

    /// Applies changes in one transaction (callers batch many REGISTERs into one call: group
    /// commit). Only the last change per binding counts; rows go in multi-row statements.
    pub async fn apply<'c>(
        &self,
        changes: impl IntoIterator<Item = &'c Change>,
    ) -> Result<(), StoreError> {
        let mut last: HashMap<(&str, &str), &Change> = HashMap::new();
        for c in changes {
            let key = match c {
                Change::Upsert(b) => (b.aor.as_str(), b.contact.as_str()),
                Change::Remove { aor, contact } => (aor.as_str(), contact.as_str()),
            };
            last.insert(key, c);
        }
        let (mut upserts, mut removes) = (Vec::new(), Vec::new());
        for c in last.into_values() {
            match c {
                Change::Upsert(b) => upserts.push(b),
                Change::Remove { aor, contact } => removes.push((aor, contact)),
            }
        }
        if upserts.is_empty() && removes.is_empty() {
            return Ok(());
        }
        // The whole transaction is one query (sqlx binds the parameters of each statement in
        // turn): one round trip to the connection's worker thread instead of one per statement.
        let mut q = QueryBuilder::<Sqlite>::new("BEGIN IMMEDIATE;");
        for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
            q.push(
                "INSERT INTO location (aor, contact, q, expires_at, call_id, cseq, path, source, user_agent, instance, reg_id) ",
            );
            q.push_values(chunk, |mut row, b| {
                row.push_bind(&b.aor)
                    .push_bind(&b.contact)
                    .push_bind(i64::from(b.q))
                    .push_bind(i64::try_from(b.expires_at).unwrap_or(i64::MAX))
                    .push_bind(&b.call_id)
                    .push_bind(i64::from(b.cseq))
                    .push_bind(b.path.join("\n"))
                    .push_bind(&b.source)
                    .push_bind(&b.user_agent)
                    .push_bind(&b.instance)
                    .push_bind(b.reg_id.map(i64::from));
            });
            q.push(
                " ON CONFLICT (aor, contact) DO UPDATE SET q = excluded.q, expires_at = excluded.expires_at, \
                 call_id = excluded.call_id, cseq = excluded.cseq, path = excluded.path, source = excluded.source, \
                 user_agent = excluded.user_agent, instance = excluded.instance, reg_id = excluded.reg_id;",
            );
        }
        for chunk in removes.chunks(ROWS_PER_STATEMENT) {
            q.push("DELETE FROM location WHERE (aor, contact) IN (");
            q.push_values(chunk, |mut row, (aor, contact)| {
                row.push_bind(*aor).push_bind(*contact);
            });
            q.push(");");
        }
        q.push("COMMIT;");
        let mut conn = self.pool.acquire().await?;
        if let Err(e) = q.build().execute(&mut *conn).await {
            // A statement failed before COMMIT: end the transaction it left open.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Copies the write-ahead log into the database file as far as it can without waiting
    /// for the writer (SQLite's PASSIVE checkpoint); call it every second or so.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.checkpointer)
            .await?;
        Ok(())
    }

    /// Every stored binding.
    pub async fn load_all(&self) -> Result<Vec<Binding>, StoreError> {
        let rows = sqlx::query(
            "SELECT aor, contact, q, expires_at, call_id, cseq, path, source, user_agent, instance, reg_id FROM location",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let path: String = r.try_get("path")?;
                Ok(Binding {
                    aor: r.try_get("aor")?,
                    contact: r.try_get("contact")?,
                    q: u16::try_from(r.try_get::<i64, _>("q")?).unwrap_or(1000),
                    expires_at: u64::try_from(r.try_get::<i64, _>("expires_at")?).unwrap_or(0),
                    call_id: r.try_get("call_id")?,
                    cseq: u32::try_from(r.try_get::<i64, _>("cseq")?).unwrap_or(0),
                    path: path
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    source: r.try_get("source")?,
                    user_agent: r.try_get("user_agent")?,
                    instance: r.try_get("instance")?,
                    reg_id: r
                        .try_get::<Option<i64>, _>("reg_id")?
                        .and_then(|v| u32::try_from(v).ok()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, expires_at: u64) -> Binding {
        Binding {
            aor: "sip:alice@example.com".into(),
            contact: contact.into(),
            q: 500,
            expires_at,
            call_id: "c".into(),
            cseq: 7,
            path: vec!["<sip:p1;lr>".into(), "<sip:p2;lr>".into()],
            source: "udp:192.0.2.1:5060".into(),
            user_agent: Some("Phone".into()),
            instance: None,
            reg_id: Some(1),
        }
    }

    #[tokio::test]
    async fn upsert_remove_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let (a, b) = (binding("sip:a@h", 100), binding("sip:b@h", 200));
        store
            .apply(&[Change::Upsert(a.clone()), Change::Upsert(b.clone())])
            .await
            .unwrap();
        let mut refreshed = a.clone();
        refreshed.expires_at = 300;
        store
            .apply(&[
                Change::Upsert(refreshed.clone()),
                Change::Remove {
                    aor: b.aor.clone(),
                    contact: b.contact.clone(),
                },
            ])
            .await
            .unwrap();
        assert_eq!(store.load_all().await.unwrap(), [refreshed.clone()]);
        drop(store);
        let reopened = SqliteStore::open(&path).await.unwrap();
        assert_eq!(reopened.load_all().await.unwrap(), [refreshed]);
    }

    #[tokio::test]
    async fn many_changes_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("loc.db")).await.unwrap();
        let changes: Vec<Change> = (0..500)
            .map(|i| Change::Upsert(binding(&format!("sip:u{i}@h"), 10)))
            .collect();
        store.apply(&changes).await.unwrap();
        assert_eq!(store.load_all().await.unwrap().len(), 500);
    }

    #[tokio::test]
    async fn a_failed_batch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("loc.db")).await.unwrap();
        store
            .apply(&[Change::Upsert(binding("sip:kept@h", 10))])
            .await
            .unwrap();
        // Make the DELETE fail after the INSERT ran in the same transaction.
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE DELETE ON location BEGIN SELECT RAISE(ABORT, 'no'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let bad = [
            Change::Upsert(binding("sip:new@h", 10)),
            Change::Remove {
                aor: "sip:alice@example.com".into(),
                contact: "sip:kept@h".into(),
            },
        ];
        assert!(store.apply(&bad).await.is_err());
        let contacts: Vec<String> = store
            .load_all()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.contact)
            .collect();
        assert_eq!(contacts, ["sip:kept@h"], "the INSERT was rolled back");
        // The connection is usable again.
        store
            .apply(&[Change::Upsert(binding("sip:after@h", 10))])
            .await
            .unwrap();
        assert_eq!(store.load_all().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn checkpoint_copies_the_log_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("loc.db")).await.unwrap();
        let changes: Vec<Change> = (0..300)
            .map(|i| Change::Upsert(binding(&format!("sip:u{i}@h"), 10)))
            .collect();
        store.apply(&changes).await.unwrap();
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(auto, 0, "commits do not checkpoint");
        // (busy, frames in the log, frames checkpointed)
        let frames = |r: sqlx::sqlite::SqliteRow| (r.get::<i64, _>(1), r.get::<i64, _>(2));
        store.checkpoint().await.unwrap();
        let (logged, done) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&store.pool)
            .await
            .map(frames)
            .unwrap();
        assert!(logged > 0, "the batch went through the log");
        assert_eq!(logged, done, "everything copied");
    }

    #[tokio::test]
    async fn open_reports_the_file() {
        let e = SqliteStore::open(Path::new("/nonexistent-dir/x.db"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/x.db"), "{e}");
    }
}
