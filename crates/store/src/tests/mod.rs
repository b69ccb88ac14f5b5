//! The store's tests: one behavioural suite run on every backend (`sqlite::…`,
//! `postgres::…`, `mariadb::…`), SQLite's own tests, and URL handling.
//!
//! The PostgreSQL and MariaDB tests need those servers (see [`server`]): each test makes a
//! database of its own there and drops it after. A server that does not answer fails them.

mod server;
mod sqlite_only;
mod suite;

use std::any::Any;

use sqlx::Executor;

use crate::backend::Backend;
use crate::{mask_password, Store};

/// A database for one test, removed after it.
struct TestDb {
    /// What [`Store::open`] takes.
    url: String,
    /// What removes it when dropped.
    _cleanup: Box<dyn Any>,
}

impl TestDb {
    /// A file in a temporary directory.
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        TestDb {
            url: format!("sqlite:{}", dir.path().join("test.db").display()),
            _cleanup: Box::new(dir),
        }
    }

    /// A new database on the PostgreSQL server.
    async fn postgres() -> TestDb {
        server::Server::Postgres.scratch().await
    }

    /// A new database on the MariaDB server.
    async fn mariadb() -> TestDb {
        server::Server::MariaDb.scratch().await
    }

    /// Opens the store (again).
    async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Makes the database as the release before SIP Outbound's flows had it (a binding keyed by
/// AOR and contact), and runs `sql` there, as it is.
async fn before_flows(db: &TestDb, sql: &str) {
    use crate::backend::{MYSQL_MIGRATIONS, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
    use sqlx::migrate::Migrator;
    let old = |m: &Migrator, n: usize| Migrator {
        migrations: std::borrow::Cow::Owned(m.migrations[..n].to_vec()),
        ..Migrator::DEFAULT
    };
    macro_rules! run {
        ($pool:ty, $url:expr, $migrator:expr) => {{
            let pool = <$pool>::connect(&$url).await.unwrap();
            $migrator.run(&pool).await.unwrap();
            pool.execute(sql).await.unwrap();
            pool.close().await;
        }};
    }
    match db.url.split(':').next() {
        Some("sqlite") => run!(
            sqlx::SqlitePool,
            format!("{}?mode=rwc", db.url),
            old(&SQLITE_MIGRATIONS, 5)
        ),
        Some("postgres") => run!(sqlx::PgPool, db.url, old(&POSTGRES_MIGRATIONS, 2)),
        _ => run!(sqlx::MySqlPool, db.url, old(&MYSQL_MIGRATIONS, 2)),
    }
}

/// Runs the statements for the store's database as they are (not prepared).
async fn run_as_is(store: &Store, sqlite: &str, postgres: &str, mysql: &str) {
    match &store.backend {
        Backend::Sqlite { pool, .. } => pool.execute(sqlite).await.map(drop),
        Backend::Postgres(pool) => pool.execute(postgres).await.map(drop),
        Backend::MySql(pool) => pool.execute(mysql).await.map(drop),
    }
    .unwrap();
}

/// Makes a module per backend, each running every named test of [`suite`].
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        on_every_backend!(@ sqlite $($test)*);
        on_every_backend!(@ postgres $($test)*);
        on_every_backend!(@ mariadb $($test)*);
    };
    (@ $backend:ident $($test:ident)*) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    super::suite::$test(&super::TestDb::$backend().await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    bindings_upsert_remove_and_reload,
    a_failed_batch_leaves_nothing_behind,
    many_changes_in_one_batch,
    the_last_change_of_a_binding_wins,
    long_and_unicode_values,
    names_are_case_sensitive,
    subscribers,
    subscriber_count,
    domains,
    aliases,
    secrets,
    reopening_keeps_everything,
    flows_of_one_instance_share_a_contact,
    call_records,
    dialogs_in_progress,
    presence_state,
    offline_messages,
);

#[tokio::test]
async fn an_unknown_url_is_refused() {
    let e = Store::open("redis://u:secret@h/x").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot open redis://u:***@h/x: error with configuration: unknown kind of database \
         \"redis\" (not sqlite, postgres or mysql)"
    );
}

#[tokio::test]
async fn a_failure_names_the_url_without_its_password() {
    let e = Store::open("postgres://u:secret@127.0.0.1:port/x")
        .await
        .unwrap_err();
    let e = e.to_string();
    assert!(
        e.starts_with("cannot open postgres://u:***@127.0.0.1:port/x: "),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
}

#[test]
fn passwords_are_masked() {
    for (url, masked) in [
        ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
        ("mysql://u:p/w@d@h:3306/db", "mysql://u:***@h:3306/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        (
            "postgres://h/db?user=u&password=pw&x=1",
            "postgres://h/db?user=u&password=***&x=1",
        ),
        ("sqlite:/var/lib/a:b@c.db", "sqlite:/var/lib/a:b@c.db"),
        ("/var/lib/ferrosip.db", "/var/lib/ferrosip.db"),
    ] {
        assert_eq!(mask_password(url), masked, "{url}");
    }
}

/// The server runs the store's futures on tokio's worker threads.
#[tokio::test]
async fn futures_are_send() {
    fn send<T: Send>(_: T) {}
    let db = TestDb::sqlite().await;
    let store = db.open().await;
    send(store.apply(&[]));
    send(store.load_all());
    send(store.add_subscriber(&suite::alice("example.com", "a")));
    send(store.subscribers(None));
    send(store.load_subscribers());
    send(store.aliases(None));
    send(store.checkpoint());
}
