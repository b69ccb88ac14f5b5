//! The three databases behind a [`Store`]: their connections, their migrations, and the few
//! helpers through which every query runs but the server's own reads and writes of bindings.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Connection;
use sqlx::{MySqlPool, PgPool, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

use crate::dialect::Dialect;
use crate::{Store, StoreError};

/// The SQLite migrations.
pub(crate) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL migrations.
pub(crate) static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
/// The MariaDB/MySQL migrations.
pub(crate) static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

/// The connections to one of the databases.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// An SQLite file: one connection writes the bindings (and reads them at start), one
    /// does everything else (each page cache stays warm), another checkpoints.
    Sqlite {
        /// Everything else: subscribers, calls, presence, the CLI's reads of bindings.
        pool: SqlitePool,
        /// The checkpointer.
        checkpointer: SqlitePool,
        /// The bindings' writer.
        location: LocationConnection,
    },
    /// PostgreSQL.
    Postgres(PgPool),
    /// MariaDB or MySQL.
    MySql(MySqlPool),
}

/// Matches a [`Backend`] with `$pool` bound to its pool in `$body`: the body is compiled once
/// per database, against that database's own sqlx types.
macro_rules! dispatch {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            Backend::Sqlite { pool: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
            Backend::MySql($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// How long a query waits for a connection of a PostgreSQL or MySQL pool.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Backend {
    /// Connects to the database of `url` (see [`Store::open`]) and migrates it.
    pub(crate) async fn connect(url: &str) -> Result<Backend, StoreError> {
        let open_err = |cause| StoreError::Open {
            url: crate::mask_password(url),
            cause,
        };
        if let Some(path) = crate::sqlite_file(url) {
            let options = sqlite_options(path).map_err(open_err)?;
            let pool = one_connection()
                .connect_with(options.clone())
                .await
                .map_err(open_err)?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            let checkpointer = one_connection()
                .connect_with(options.clone())
                .await
                .map_err(open_err)?;
            let location = LocationConnection::new(options);
            return Ok(Backend::Sqlite {
                pool,
                checkpointer,
                location,
            });
        }
        let (scheme, rest) = url.split_once("://").unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" => {
                // One connection first: its error says why (refused, password, no such
                // database), where a pool would retry until it times out.
                sqlx::PgConnection::connect(url)
                    .await
                    .map_err(open_err)?
                    .close()
                    .await
                    .map_err(open_err)?;
                let pool = PgPoolOptions::new()
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(open_err)?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Ok(Backend::Postgres(pool))
            }
            "mysql" | "mariadb" => {
                let url = format!("mysql://{rest}");
                sqlx::MySqlConnection::connect(&url)
                    .await
                    .map_err(open_err)?
                    .close()
                    .await
                    .map_err(open_err)?;
                let pool = MySqlPoolOptions::new()
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(&url)
                    .await
                    .map_err(open_err)?;
                MYSQL_MIGRATIONS.run(&pool).await?;
                Ok(Backend::MySql(pool))
            }
            _ => Err(open_err(sqlx::Error::Configuration(
                format!("unknown kind of database {scheme:?} (not sqlite, postgres or mysql)")
                    .into(),
            ))),
        }
    }

    /// Closes the connections, waiting for queries under way. On SQLite the last one to
    /// close copies the write-ahead log into the file and removes it (and `-shm`).
    pub(crate) async fn close(&self) {
        match self {
            Backend::Sqlite {
                pool,
                checkpointer,
                location,
            } => {
                location.close().await;
                for pool in [checkpointer, pool] {
                    // Each pool has one connection. `Pool::close` alone can miss it while a
                    // task is handing it back (sqlx 0.8), leaving it open at exit: take it
                    // out and close it first.
                    if let Ok(conn) = pool.acquire().await {
                        let _ = conn.detach().close().await;
                    }
                    pool.close().await;
                }
            }
            Backend::Postgres(pool) => pool.close().await,
            Backend::MySql(pool) => pool.close().await,
        }
    }

    /// The SQL dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Backend::Sqlite { .. } => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
            Backend::MySql(_) => Dialect::MySql,
        }
    }
}

/// The SQLite file at `path`, created if needed, in WAL mode. `synchronous = NORMAL` with WAL
/// keeps every committed write across a process crash.
fn sqlite_options(path: &Path) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        // Commits never checkpoint (the fsync would hold up every waiting 200 OK);
        // `checkpoint` does it beside them.
        .pragma("wal_autocheckpoint", "0"))
}

/// The SQLite connection that writes the bindings (and reads them at start), opened when
/// first needed. It is not pooled: a pool pings each connection handed back, a round trip
/// to the connection's worker thread (two thread wake-ups) per batch of REGISTERs.
#[derive(Debug, Clone)]
pub(crate) struct LocationConnection(Arc<(SqliteConnectOptions, Mutex<Slot>)>);

/// Where the connection stands.
#[derive(Debug, Default)]
enum Slot {
    /// None open: the next query opens one.
    #[default]
    Empty,
    /// Open, between queries.
    Open(SqliteConnection),
    /// A query failed or was given up on: its connection is closing, which rolls back what
    /// it left open once the statement its worker still runs ends.
    Closing(tokio::task::JoinHandle<()>),
    /// The store is closed: no query runs (a new connection would keep the log open).
    Closed,
}

/// How long a query waits for the connection of a failed one to close: its worker ends the
/// statement it runs first, which may wait `busy_timeout` (5 s) for the lock.
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl LocationConnection {
    fn new(options: SqliteConnectOptions) -> Self {
        LocationConnection(Arc::new((options, Mutex::default())))
    }

    /// Runs `query` on the connection.
    pub(crate) async fn execute<'q>(
        &self,
        query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    ) -> Result<(), sqlx::Error> {
        let mut conn = self.checkout().await?;
        query.execute(conn.connection()).await?;
        conn.done();
        Ok(())
    }

    /// Hands each row of `sql` to `each`. The bindings loaded at start leave their pages in
    /// the page cache of the connection that goes on writing them, not in another's.
    pub(crate) async fn for_each_row(
        &self,
        sql: &str,
        mut each: impl FnMut(&dyn Columns) -> Result<(), sqlx::Error>,
    ) -> Result<(), sqlx::Error> {
        use futures_util::TryStreamExt;
        let mut conn = self.checkout().await?;
        let mut rows = sqlx::query(sql).fetch(conn.connection());
        while let Some(r) = rows.try_next().await? {
            each(&r)?;
        }
        drop(rows);
        conn.done();
        Ok(())
    }

    /// The connection, opened if none is, for one query; the slot stays locked meanwhile,
    /// so queries run one after the other, each after the last one's connection closed.
    async fn checkout(&self) -> Result<CloseUnlessDone<'_>, sqlx::Error> {
        let (options, slot) = &*self.0;
        let mut slot = slot.lock().await;
        let conn = match std::mem::take(&mut *slot) {
            Slot::Open(conn) => conn,
            Slot::Empty => SqliteConnection::connect_with(options).await?,
            Slot::Closing(closing) => {
                let _ = tokio::time::timeout(CLOSING_WAIT, closing).await;
                SqliteConnection::connect_with(options).await?
            }
            Slot::Closed => {
                *slot = Slot::Closed;
                return Err(sqlx::Error::PoolClosed);
            }
        };
        Ok(CloseUnlessDone {
            slot,
            conn: Some(conn),
        })
    }

    /// Closes the connection (after a query under way); no query runs after.
    async fn close(&self) {
        let mut slot = self.0 .1.lock().await;
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Open(conn) => drop(conn.close().await),
            Slot::Closing(closing) => drop(tokio::time::timeout(CLOSING_WAIT, closing).await),
            Slot::Empty | Slot::Closed => {}
        }
    }
}

/// The connection while a query runs on it. A query that fails or is given up on (its
/// future dropped) may leave the connection inside its transaction (SQLite's worker runs no
/// statement after the one whose result nobody takes): then it is closed, which rolls back
/// what it left open, rather than used again, which would run the next batch inside that
/// transaction and never commit it.
struct CloseUnlessDone<'a> {
    slot: MutexGuard<'a, Slot>,
    conn: Option<SqliteConnection>,
}

impl CloseUnlessDone<'_> {
    fn connection(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("held until done")
    }

    /// The query ended: the connection goes back for the next.
    fn done(mut self) {
        if let Some(conn) = self.conn.take() {
            *self.slot = Slot::Open(conn);
        }
    }
}

impl Drop for CloseUnlessDone<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // Closing queues behind the statement the worker still runs; the next query waits
        // for it, so that statement cannot land after a later batch.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let closing = runtime.spawn(async move { drop(conn.close().await) });
            *self.slot = Slot::Closing(closing);
        }
    }
}

/// A pool of one SQLite connection.
fn one_connection() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(1)
        // A local connection: nothing to check before each use.
        .test_before_acquire(false)
}

impl Store {
    /// Runs one statement with text parameters; how many rows it changed.
    pub(crate) async fn execute(&self, sql: &str, params: &[&str]) -> Result<u64, StoreError> {
        let sql = self.backend.dialect().placeholders(sql);
        Ok(dispatch!(&self.backend, pool => {
            let mut q = sqlx::query(&sql);
            for p in params {
                q = q.bind(*p);
            }
            q.execute(pool).await?.rows_affected()
        }))
    }

    /// Runs an INSERT with text parameters, unless its row exists; whether it inserted.
    pub(crate) async fn insert(&self, sql: &str, params: &[&str]) -> Result<bool, StoreError> {
        let sql = format!("{sql}{}", self.backend.dialect().on_conflict_do_nothing());
        match self.execute(&sql, params).await {
            Ok(rows) => Ok(rows == 1),
            Err(StoreError::Query(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs a query with text parameters; its rows, each read by `read`.
    pub(crate) async fn fetch<T>(
        &self,
        sql: &str,
        params: &[&str],
        read: fn(&dyn Columns) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let sql = self.backend.dialect().placeholders(sql);
        let rows = dispatch!(&self.backend, pool => {
            let mut q = sqlx::query(&sql);
            for p in params {
                q = q.bind(*p);
            }
            q.fetch_all(pool).await?.iter().map(|r| read(r)).collect::<Result<_, _>>()
        });
        Ok(rows?)
    }

    /// Runs a query without parameters and hands each row to `each` as it arrives (a large
    /// table is never held whole in memory).
    pub(crate) async fn for_each_row(
        &self,
        sql: &str,
        mut each: impl FnMut(&dyn Columns) -> Result<(), sqlx::Error>,
    ) -> Result<(), StoreError> {
        use futures_util::TryStreamExt;
        dispatch!(&self.backend, pool => {
            let mut rows = sqlx::query(sql).fetch(pool);
            while let Some(r) = rows.try_next().await? {
                each(&r)?;
            }
        });
        Ok(())
    }
}

/// The columns of a row, by position, whatever the database.
pub(crate) trait Columns {
    /// A text column.
    fn text(&self, i: usize) -> Result<String, sqlx::Error>;
    /// A text column that may be NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error>;
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;
    /// An integer column that may be NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error>;
    /// A binary column.
    fn bytes(&self, i: usize) -> Result<Vec<u8>, sqlx::Error>;
}

macro_rules! columns {
    ($($row:ty),*) => {$(
        impl Columns for $row {
            // Text unchecked: sqlx takes MySQL's byte-compared (`utf8mb4_bin`) text for binary
            // data (sqlx issue 3387). Decoding still checks that it is UTF-8.
            fn text(&self, i: usize) -> Result<String, sqlx::Error> {
                self.try_get_unchecked(i)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
                self.try_get_unchecked(i)
            }
            fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
                self.try_get(i)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(i)
            }
            fn bytes(&self, i: usize) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get_unchecked(i)
            }
        }
    )*};
}
columns!(SqliteRow, PgRow, MySqlRow);
