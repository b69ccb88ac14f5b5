//! What only SQLite has: checkpoints, a file named by a path or a URL, and the history of its
//! migrations.

use std::borrow::Cow;
use std::time::Duration;

use registrar::Change;
use sqlx::migrate::Migrator;
use sqlx::SqlitePool;

use super::suite::binding;
use super::TestDb;
use crate::backend::{Backend, SQLITE_MIGRATIONS};
use crate::Store;

/// The pool's connection (all but the bindings).
fn writer(store: &Store) -> &SqlitePool {
    match &store.backend {
        Backend::Sqlite { pool, .. } => pool,
        _ => unreachable!("an SQLite store"),
    }
}

#[tokio::test]
async fn checkpoint_copies_the_log_into_the_file() {
    let db = TestDb::sqlite().await;
    let store = db.open().await;
    let changes: Vec<Change> = (0..300)
        .map(|i| Change::Upsert(binding(&format!("sip:u{i}@h"), 10)))
        .collect();
    store.apply(&changes).await.unwrap();
    let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(writer(&store))
        .await
        .unwrap();
    assert_eq!(auto, 0, "commits do not checkpoint");
    let Backend::Sqlite { location, .. } = &store.backend else {
        unreachable!("an SQLite store")
    };
    let mut bindings_auto = None;
    location
        .for_each_row("PRAGMA wal_autocheckpoint", |r| {
            bindings_auto = Some(r.int(0)?);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(bindings_auto, Some(0), "nor do the bindings' commits");
    store.checkpoint().await.unwrap();
    // (busy, frames in the log, frames checkpointed)
    let (_, logged, done): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(writer(&store))
        .await
        .unwrap();
    assert!(logged > 0, "the batch went through the log");
    assert_eq!(logged, done, "everything copied");
}

#[tokio::test]
async fn a_batch_given_up_on_leaves_no_transaction_open() {
    let db = TestDb::sqlite().await;
    let store = db.open().await;
    // Another connection holds the write lock: a batch of two statements (an upsert and a
    // removal) waits in its BEGIN, and its caller gives up on it.
    let path = crate::sqlite_file(&db.url).unwrap();
    let other = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    // The bindings' connection is open before: the batch waits for the lock, not to open.
    store
        .apply(&[Change::Upsert(binding("sip:z@h", 10))])
        .await
        .unwrap();
    store
        .apply(&[binding("sip:z@h", 10).removal()])
        .await
        .unwrap();
    let lock = other.begin_with("BEGIN IMMEDIATE").await.unwrap();
    let two = [
        Change::Upsert(binding("sip:a@h", 10)),
        binding("sip:b@h", 10).removal(),
    ];
    let given_up = tokio::time::timeout(Duration::from_millis(200), store.apply(&two)).await;
    assert!(given_up.is_err(), "the batch waits for the lock");
    // The lock goes while SQLite's worker still waits in that BEGIN: the BEGIN then
    // succeeds, and the statements after it are never run.
    lock.commit().await.unwrap();
    // The next batch, one statement, is committed: another connection sees it.
    store
        .apply(&[Change::Upsert(binding("sip:c@h", 10))])
        .await
        .unwrap();
    let seen: Vec<String> = sqlx::query_scalar("SELECT contact FROM location")
        .fetch_all(&other)
        .await
        .unwrap();
    assert_eq!(seen, ["sip:c@h"]);
}

#[tokio::test]
async fn open_reports_the_file() {
    let e = Store::open("/nonexistent-dir/x.db").await.unwrap_err();
    assert!(e.to_string().contains("/nonexistent-dir/x.db"), "{e}");
}

#[tokio::test]
async fn a_path_and_both_urls_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db").display().to_string();
    Store::open(&path)
        .await
        .unwrap()
        .add_domain("example.com")
        .await
        .unwrap();
    for url in [format!("sqlite:{path}"), format!("sqlite://{path}")] {
        let domains = Store::open(&url).await.unwrap().domains().await.unwrap();
        assert_eq!(domains, ["example.com"], "{url}");
    }
}

#[test]
fn sqlite_file_names_the_file_of_sqlite_urls_only() {
    use crate::sqlite_file;
    use std::path::Path;
    for url in [
        "/var/lib/f.db",
        "sqlite:/var/lib/f.db",
        "sqlite:///var/lib/f.db",
    ] {
        assert_eq!(sqlite_file(url), Some(Path::new("/var/lib/f.db")), "{url}");
    }
    assert_eq!(sqlite_file("f.db"), Some(Path::new("f.db")));
    assert_eq!(sqlite_file("postgres://u@h/d"), None);
    assert_eq!(sqlite_file("mysql://u@h/d"), None);
}

#[tokio::test]
async fn close_leaves_no_log_beside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    store.add_domain("example.com").await.unwrap();
    let beside = |suffix: &str| dir.path().join(format!("c.db{suffix}")).exists();
    assert!(beside("-wal"), "open in WAL mode");
    store.close().await;
    assert!(!beside("-wal") && !beside("-shm"), "log and index removed");
    let again = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(again.domains().await.unwrap(), ["example.com"]);
    again.close().await;
}

/// A batch that comes after the store closed (REGISTERs still arriving at shutdown) fails:
/// a connection opened for it would keep the log beside the file.
#[tokio::test]
async fn no_binding_is_written_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    let a = [Change::Upsert(binding("sip:a@h", 10))];
    store.apply(&a).await.unwrap();
    store.close().await;
    assert!(store.apply(&a).await.is_err(), "closed");
    let beside = |suffix: &str| dir.path().join(format!("c.db{suffix}")).exists();
    assert!(!beside("-wal") && !beside("-shm"), "log and index removed");
}

/// The first migrations moved to `migrations/sqlite/` unchanged: sqlx refuses a database
/// whose applied migrations' checksums (SHA-384 of the file) differ.
#[test]
fn the_released_migrations_are_unchanged() {
    let released = [
        "05cc00dc9ceb462d2aaae11a5c298f63e5a58fbe8699a0f013bf2d25018e910f25a81e205749f1219e82595785340494",
        "fb529a366ebc1564b51eed62efec9bef17de0973b92da1bc375bd96faa78784e55d3f8f905185c20838839706fea218b",
        "cd1288b883c79b3a9b2dce4fbdef2156c23760c38402d9e784c9945dd1f39616b50d31a6fedb0387a3fbe0fa5a54cf35",
    ];
    for (m, sum) in SQLITE_MIGRATIONS.migrations.iter().zip(released) {
        let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, sum, "migration {} changed", m.version);
    }
}

/// A database that the first three migrations made (as the previous release did) opens,
/// gains the new tables and keeps its data.
#[tokio::test]
async fn a_database_of_the_previous_release_opens() {
    let db = TestDb::sqlite().await;
    let old = Migrator {
        migrations: Cow::Owned(SQLITE_MIGRATIONS.migrations[..3].to_vec()),
        ..Migrator::DEFAULT
    };
    let pool = SqlitePool::connect(&format!("{}?mode=rwc", db.url))
        .await
        .unwrap();
    old.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO location VALUES ('sip:alice@example.com', 'sip:a@h', 500, 100, 'c', 7, \
         '<sip:p1;lr>\n<sip:p2;lr>', 'udp:192.0.2.1:5060', 'Phone', NULL, 1); \
         INSERT INTO subscriber VALUES ('alice', 'example.com', 'm', 's')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = db.open().await;
    // Its reg-id came without an instance: it meant nothing, and goes. Its Via was not
    // recorded: taken as not naming the source (its Contact decides NAT as before).
    let expected = registrar::Binding {
        reg_id: None,
        via_at_source: false,
        ..binding("sip:a@h", 100)
    };
    assert_eq!(store.load_all().await.unwrap(), [expected]);
    assert_eq!(store.subscriber_count("example.com").await.unwrap(), 1);
    assert_eq!(
        store.domains().await.unwrap(),
        ["example.com"],
        "the subscribers' domain is hosted"
    );
    assert!(store.aliases(None).await.unwrap().is_empty(), "new table");
}
