//! What differs in the SQL of the three databases. Queries are written once, with `?`
//! placeholders and the fragments below.

use std::borrow::Cow;
use std::fmt::Write;

use sqlx::{Database, QueryBuilder};

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MariaDB and MySQL.
    MySql,
}

impl Dialect {
    /// `sql` with its `?` placeholders numbered `$1, $2…` for PostgreSQL (so no `?` may
    /// stand in a literal); as it is for the others.
    pub(crate) fn placeholders(self, sql: &str) -> Cow<'_, str> {
        if self != Dialect::Postgres {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 8);
        for (n, part) in sql.split('?').enumerate() {
            if n > 0 {
                let _ = write!(out, "${n}");
            }
            out.push_str(part);
        }
        Cow::Owned(out)
    }

    /// The end of an INSERT that makes it do nothing when the row exists. MySQL has none
    /// (`INSERT IGNORE` would also cut a value too long for its column instead of refusing
    /// it): there the duplicate key error is caught instead.
    pub(crate) fn on_conflict_do_nothing(self) -> &'static str {
        match self {
            Dialect::MySql => "",
            Dialect::Sqlite | Dialect::Postgres => " ON CONFLICT DO NOTHING",
        }
    }

    /// Pushes the end of an INSERT that, when a row with the same `key` exists, sets its
    /// `columns` to the new values instead.
    pub(crate) fn push_upsert<DB: Database>(
        self,
        q: &mut QueryBuilder<'_, DB>,
        key: &str,
        columns: &[&str],
    ) {
        match self {
            Dialect::MySql => q.push(" ON DUPLICATE KEY UPDATE "),
            Dialect::Sqlite | Dialect::Postgres => {
                q.push(format_args!(" ON CONFLICT ({key}) DO UPDATE SET "))
            }
        };
        for (i, c) in columns.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            match self {
                Dialect::MySql => q.push(format_args!("{sep}{c} = VALUES({c})")),
                Dialect::Sqlite | Dialect::Postgres => {
                    q.push(format_args!("{sep}{c} = excluded.{c}"))
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        let sql = "UPDATE t SET a = ? WHERE b = ? AND c = ?";
        assert_eq!(
            Dialect::Postgres.placeholders(sql),
            "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"
        );
        assert_eq!(Dialect::MySql.placeholders(sql), sql);
        assert_eq!(Dialect::Sqlite.placeholders(sql), sql);
    }

    #[test]
    fn upserts() {
        let sql = |d: Dialect| {
            let mut q = QueryBuilder::<sqlx::Sqlite>::new("INSERT …");
            d.push_upsert(&mut q, "k, l", &["a", "b"]);
            q.into_sql()
        };
        assert_eq!(
            sql(Dialect::Sqlite),
            "INSERT … ON CONFLICT (k, l) DO UPDATE SET a = excluded.a, b = excluded.b"
        );
        assert_eq!(
            sql(Dialect::MySql),
            "INSERT … ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"
        );
    }
}
