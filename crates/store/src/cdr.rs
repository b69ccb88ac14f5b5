//! Call detail records (`dlg_manage()`), and the calls of a user.

use dialog::{Cdr, Ending};
use sqlx::QueryBuilder;

use crate::backend::{Backend, Columns};
use crate::{Store, StoreError};

/// The columns, in the order of [`record`].
pub(crate) const COLUMNS: &str =
    "call_id, caller, caller_aor, dialled, callee_aor, reached, started_ms, \
                       answered_ms, ended_ms, status, ending";

/// Most characters of a text stored (a stranger writes the From and To it records).
const MAX_TEXT: usize = 512;

/// Rows per INSERT statement.
pub(crate) const ROWS_PER_STATEMENT: usize = 200;

impl Store {
    /// Stores call detail records.
    pub async fn add_cdrs(&self, records: &[Cdr]) -> Result<(), StoreError> {
        self.record_calls(records, &[]).await
    }

    /// The records of the calls `user` (an address-of-record, `sip:user@domain`) made or
    /// got, or of all calls, that started at or after `since_ms`; newest first, `limit` at
    /// most.
    pub async fn cdrs(
        &self,
        user: Option<&str>,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<Cdr>, StoreError> {
        let user = user.map(aor);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = crate::backend::dispatch!(&self.backend, pool => {
            let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM cdr WHERE started_ms >= "));
            q.push_bind(ms(since_ms));
            if let Some(u) = &user {
                q.push(" AND (caller_aor = ").push_bind(u.clone());
                q.push(" OR callee_aor = ").push_bind(u.clone()).push(")");
            }
            q.push(" ORDER BY started_ms DESC LIMIT ").push_bind(limit);
            q.build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| record(r))
                .collect::<Result<Vec<_>, _>>()
        });
        Ok(rows?)
    }
}

/// `s`, cut to [`MAX_TEXT`] characters.
pub(crate) fn cap(s: &str) -> &str {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The address-of-record a URI names (`sip:user@domain`, canonical), or the URI itself
/// (cut) when it names none.
pub(crate) fn aor(uri: &str) -> String {
    sip_message::Uri::parse(uri)
        .ok()
        .and_then(|u| registrar::aor_of(&u))
        .map_or_else(|| cap(uri).to_owned(), |a| cap(&a).to_owned())
}

/// Milliseconds as the database holds them.
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn ending_name(e: Ending) -> &'static str {
    match e {
        Ending::CallerHungUp => "caller",
        Ending::CalleeHungUp => "callee",
        Ending::EndedByServer => "server",
        Ending::Expired => "expired",
        Ending::NotAnswered => "unanswered",
    }
}

fn ending_of(name: &str) -> Ending {
    match name {
        "caller" => Ending::CallerHungUp,
        "callee" => Ending::CalleeHungUp,
        "server" => Ending::EndedByServer,
        "expired" => Ending::Expired,
        _ => Ending::NotAnswered,
    }
}

/// Reads a row of [`COLUMNS`].
fn record(r: &dyn Columns) -> Result<Cdr, sqlx::Error> {
    let ms = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(Cdr {
        call_id: r.text(0)?,
        caller: r.text(1)?,
        dialled: r.text(3)?,
        reached: r.opt_text(5)?,
        started_ms: ms(r.int(6)?),
        answered_ms: r.opt_int(7)?.map(ms),
        ended_ms: ms(r.int(8)?),
        status: u16::try_from(r.int(9)?).unwrap_or(0),
        ending: ending_of(&r.text(10)?),
    })
}
