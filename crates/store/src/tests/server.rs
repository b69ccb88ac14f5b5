//! Throw-away databases on the PostgreSQL and MariaDB servers of the tests: by default on
//! 127.0.0.1 at the standard ports (scripts/test.sh starts them), else where the
//! environment variables `FERROSIP_TEST_POSTGRES` and `FERROSIP_TEST_MYSQL` say, as URLs of
//! an administrator's connection to an existing database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{Connection, Executor, MySqlConnection, PgConnection};

use super::TestDb;

/// Tells apart the databases of one test run.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A database server.
#[derive(Debug, Clone, Copy)]
pub(super) enum Server {
    /// PostgreSQL.
    Postgres,
    /// MariaDB (or MySQL).
    MariaDb,
}

impl Server {
    /// Its name, the environment variable naming its URL, and the default URL.
    fn describe(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Server::Postgres => (
                "PostgreSQL",
                "FERROSIP_TEST_POSTGRES",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            Server::MariaDb => (
                "MariaDB",
                "FERROSIP_TEST_MYSQL",
                "mysql://root@127.0.0.1:3306/mysql",
            ),
        }
    }

    /// A new, empty database, dropped with the returned [`TestDb`]. Panics, saying so, when
    /// the server does not answer.
    pub(super) async fn scratch(self) -> TestDb {
        let (server, var, default) = self.describe();
        let admin = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let name = format!(
            "ferrosip_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = self.create(&admin, &name).await {
            panic!(
                "{server} for the store tests does not answer at {admin} ({e}): start it \
                 (scripts/test.sh does) or name another in {var}"
            );
        }
        let (scheme, rest) = admin.split_once("://").expect("a URL");
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let query = rest[host_end..]
            .find('?')
            .map_or("", |q| &rest[host_end + q..]);
        TestDb {
            url: format!("{scheme}://{}/{name}{query}", &rest[..host_end]),
            _cleanup: Box::new(DropDatabase {
                server: self,
                admin,
                name,
            }),
        }
    }

    /// Creates the database `name`.
    async fn create(self, admin: &str, name: &str) -> Result<(), String> {
        let sql = format!("CREATE DATABASE {name}");
        within_10s(async {
            match self {
                Server::Postgres => PgConnection::connect(admin)
                    .await?
                    .execute(&*sql)
                    .await
                    .map(drop),
                Server::MariaDb => MySqlConnection::connect(admin)
                    .await?
                    .execute(&*sql)
                    .await
                    .map(drop),
            }
        })
        .await
    }

    /// Drops the database `name`, even with connections to it left by a failed test.
    async fn drop_database(self, admin: &str, name: &str) -> Result<(), String> {
        within_10s(async {
            match self {
                Server::Postgres => {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    PgConnection::connect(admin).await?.execute(&*sql).await?;
                }
                Server::MariaDb => {
                    let mut c = MySqlConnection::connect(admin).await?;
                    let kills: Vec<String> = sqlx::query_scalar(
                        "SELECT CONCAT('KILL ', ID) FROM information_schema.PROCESSLIST \
                         WHERE DB = ? AND ID <> CONNECTION_ID()",
                    )
                    .bind(name)
                    .fetch_all(&mut c)
                    .await?;
                    for kill in kills {
                        // (It may have ended meanwhile.)
                        let _ = c.execute(&*kill).await;
                    }
                    c.execute(&*format!("DROP DATABASE IF EXISTS {name}"))
                        .await?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// The outcome of `work`, or an error after ten seconds without one.
async fn within_10s(
    work: impl std::future::Future<Output = Result<(), sqlx::Error>>,
) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(10), work).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within 10 s".into()),
    }
}

/// Drops the database `name` when dropped.
struct DropDatabase {
    server: Server,
    admin: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let (server, admin, name) = (self.server, self.admin.clone(), self.name.clone());
        // On a thread and runtime of its own: this runs within the test's runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(server.drop_database(&admin, &name))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop the test database {}: {dropped:?}",
                self.name
            );
        }
    }
}
