//! The location table: the registrar's bindings.

use std::collections::HashMap;

use registrar::{Binding, Change};
use sqlx::{Database, Encode, QueryBuilder, Sqlite, Type};

use crate::backend::{Backend, Columns};
use crate::dialect::Dialect;
use crate::{Store, StoreError};

/// Rows per INSERT or DELETE statement (12 parameters each, far below every database's limit).
const ROWS_PER_STATEMENT: usize = 200;

/// The columns, key first, in the order of [`binding`].
const COLUMNS: &str =
    "aor, contact, q, expires_at, call_id, cseq, path, source, user_agent, instance, reg_id, \
     via_at_source";

/// A row's key: a binding's AOR, contact and reg-id (0 for none: the column is part of
/// the key, so never NULL).
const KEY: &str = "aor, contact, reg_id";

/// What an upsert overwrites: all but the key.
const UPDATED: [&str; 9] = [
    "q",
    "expires_at",
    "call_id",
    "cseq",
    "path",
    "source",
    "user_agent",
    "instance",
    "via_at_source",
];

impl Store {
    /// Applies changes in one transaction (callers batch many REGISTERs into one call: group
    /// commit). Only the last change per binding counts; rows go in multi-row statements.
    pub async fn apply<'c>(
        &self,
        changes: impl IntoIterator<Item = &'c Change>,
    ) -> Result<(), StoreError> {
        // ahash, as the registrar's maps of the same keys: cheaper than SipHash, still
        // seeded per process.
        let mut last: HashMap<(&str, &str, Option<u32>), &Change, ahash::RandomState> =
            HashMap::default();
        for c in changes {
            last.insert(c.key(), c);
        }
        let (mut upserts, mut removes) = (Vec::new(), Vec::new());
        for (key, c) in last {
            match c {
                Change::Upsert(b) => upserts.push(b),
                Change::Remove { .. } => removes.push(key),
            }
        }
        if upserts.is_empty() && removes.is_empty() {
            return Ok(());
        }
        // A transaction of one statement after the other (PostgreSQL and MySQL prepare only
        // one at a time). Rows go in key order, so that concurrent batches of several servers
        // lock them in the same order.
        macro_rules! in_transaction {
            ($pool:expr, $dialect:expr) => {{
                upserts.sort_unstable_by(|a, b| {
                    (&a.aor, &a.contact, a.reg_id).cmp(&(&b.aor, &b.contact, b.reg_id))
                });
                removes.sort_unstable();
                let mut tx = $pool.begin().await?;
                for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::new("");
                    push_insert(&mut q, chunk, $dialect);
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in removes.chunks(ROWS_PER_STATEMENT) {
                    let mut q =
                        QueryBuilder::new(format!("DELETE FROM location WHERE ({KEY}) IN "));
                    q.push_tuples(chunk, |mut row, &(aor, contact, reg_id)| {
                        row.push_bind(aor)
                            .push_bind(contact)
                            .push_bind(reg_id_column(reg_id));
                    });
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }};
        }
        match &self.backend {
            Backend::Sqlite { location, .. } => {
                // The whole transaction is one query (sqlx binds the parameters of each
                // statement in turn): one round trip to the connection's worker thread
                // instead of one per statement. A batch of one statement (REGISTERs
                // only, the usual batch) is a transaction of its own: no BEGIN and COMMIT,
                // whose results would each wake this task.
                let statements = upserts.len().div_ceil(ROWS_PER_STATEMENT)
                    + removes.len().div_ceil(ROWS_PER_STATEMENT);
                let mut q = QueryBuilder::<Sqlite>::new(if statements > 1 {
                    "BEGIN IMMEDIATE;"
                } else {
                    ""
                });
                for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
                    push_insert(&mut q, chunk, Dialect::Sqlite);
                    q.push(";");
                }
                for chunk in removes.chunks(ROWS_PER_STATEMENT) {
                    q.push(format_args!("DELETE FROM location WHERE ({KEY}) IN ("));
                    q.push_values(chunk, |mut row, &(aor, contact, reg_id)| {
                        row.push_bind(aor)
                            .push_bind(contact)
                            .push_bind(reg_id_column(reg_id));
                    });
                    q.push(");");
                }
                if statements > 1 {
                    q.push("COMMIT;");
                }
                location.execute(q.build()).await?;
            }
            Backend::Postgres(pool) => in_transaction!(pool, Dialect::Postgres),
            Backend::MySql(pool) => in_transaction!(pool, Dialect::MySql),
        }
        Ok(())
    }

    /// Every stored binding.
    pub async fn load_all(&self) -> Result<Vec<Binding>, StoreError> {
        self.fetch(&format!("SELECT {COLUMNS} FROM location"), &[], binding)
            .await
    }

    /// Hands every stored binding to `each` as it is read: the table is never held whole
    /// (loading it at start leaves no peak behind).
    pub async fn for_each_binding(&self, mut each: impl FnMut(Binding)) -> Result<(), StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM location");
        let read = |r: &dyn Columns| {
            each(binding(r)?);
            Ok(())
        };
        match &self.backend {
            Backend::Sqlite { location, .. } => Ok(location.for_each_row(&sql, read).await?),
            _ => self.for_each_row(&sql, read).await,
        }
    }
}

/// Pushes an INSERT of `rows` that replaces the rows of the same keys.
fn push_insert<'a, DB: Database>(
    q: &mut QueryBuilder<'a, DB>,
    rows: &[&'a Binding],
    dialect: Dialect,
) where
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    q.push(format_args!("INSERT INTO location ({COLUMNS}) "));
    q.push_values(rows, |mut row, b| {
        row.push_bind(b.aor.as_str())
            .push_bind(b.contact.as_str())
            .push_bind(i64::from(b.q))
            .push_bind(i64::try_from(b.expires_at).unwrap_or(i64::MAX))
            .push_bind(b.call_id.as_str())
            .push_bind(i64::from(b.cseq))
            .push_bind(b.path.join("\n"))
            .push_bind(b.source.as_str())
            .push_bind(b.user_agent.as_deref())
            .push_bind(b.instance.as_deref())
            .push_bind(reg_id_column(b.reg_id))
            .push_bind(i64::from(b.via_at_source));
    });
    dialect.push_upsert(q, KEY, &UPDATED);
}

/// The `reg_id` column's value for a binding's reg-id.
fn reg_id_column(reg_id: Option<u32>) -> i64 {
    reg_id.map_or(0, i64::from)
}

/// Reads a row of [`COLUMNS`].
fn binding(r: &dyn Columns) -> Result<Binding, sqlx::Error> {
    Ok(Binding {
        aor: r.text(0)?,
        contact: r.text(1)?,
        q: u16::try_from(r.int(2)?).unwrap_or(1000),
        expires_at: u64::try_from(r.int(3)?).unwrap_or(0),
        call_id: r.text(4)?,
        cseq: u32::try_from(r.int(5)?).unwrap_or(0),
        path: r
            .text(6)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        source: r.text(7)?,
        user_agent: r.opt_text(8)?,
        instance: r.opt_text(9)?,
        reg_id: u32::try_from(r.int(10)?).ok().filter(|&v| v != 0),
        via_at_source: r.int(11)? != 0,
    })
}
