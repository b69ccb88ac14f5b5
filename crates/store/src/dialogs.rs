//! The dialogs of the calls in progress (`dlg_manage()`), kept so that a restart or a crash
//! loses no call record, and the records of the calls that ended, written together.

use std::collections::HashMap;

use dialog::{CallKey, Cdr, Change, Leg, Saved};
use sqlx::QueryBuilder;

use crate::backend::{Backend, Columns};
use crate::cdr::{aor, cap, ending_name, ms, COLUMNS as CDR_COLUMNS, ROWS_PER_STATEMENT};
use crate::{Store, StoreError};

/// The columns, in the order of [`saved`].
const COLUMNS: &str = "call_id, from_tag, to_tag, caller, dialled, started_ms, answered_ms, \
                       caller_contact, caller_route, caller_hop, caller_cseq, \
                       callee_contact, callee_route, callee_hop, callee_cseq, \
                       session_ms, refreshed_ms, profiles";

impl Store {
    /// Stores what the calls left since the last time, in one transaction: the records of
    /// those that ended, and the changes to the dialogs in progress (in order: the last
    /// change of a dialog is what stays).
    pub async fn record_calls(
        &self,
        records: &[Cdr],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        // Each dialog's last change: what to store, and whether a row may be there already.
        let mut last: HashMap<(&CallKey, &str), (Option<&Saved>, bool)> = HashMap::new();
        for c in changes {
            let (key, to_tag, change) = match c {
                Change::Added(s) => (&s.key, s.to_tag.as_str(), (Some(&**s), false)),
                Change::Saved(s) => (&s.key, s.to_tag.as_str(), (Some(&**s), true)),
                Change::Ended { key, to_tag } => (key, to_tag.as_str(), (None, true)),
            };
            last.insert((key, to_tag), change);
        }
        let kept: Vec<&Saved> = last.values().filter_map(|(s, _)| *s).collect();
        let touched: Vec<(&CallKey, &str)> = last
            .iter()
            .filter(|(_, (_, replaces))| *replaces)
            .map(|(k, _)| *k)
            .collect();
        crate::backend::dispatch!(&self.backend, pool => {
            let mut tx = pool.begin().await?;
            // One statement per chunk of dialogs (a second's worth, usually).
            for chunk in touched.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new("DELETE FROM dialog WHERE ");
                for (i, (key, to_tag)) in chunk.iter().enumerate() {
                    q.push(if i == 0 { "(call_id = " } else { " OR (call_id = " })
                        .push_bind(key.call_id.as_str())
                        .push(" AND from_tag = ")
                        .push_bind(key.from_tag.as_str())
                        .push(" AND to_tag = ")
                        .push_bind(*to_tag)
                        .push(")");
                }
                q.build().execute(&mut *tx).await?;
            }
            for chunk in kept.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(format!("INSERT INTO dialog ({COLUMNS}) "));
                q.push_values(chunk, |mut row, s| {
                    row.push_bind(s.key.call_id.as_str())
                        .push_bind(s.key.from_tag.as_str())
                        .push_bind(s.to_tag.as_str())
                        .push_bind(s.caller.as_str())
                        .push_bind(s.dialled.as_str())
                        .push_bind(ms(s.started_ms))
                        .push_bind(ms(s.answered_ms));
                    for leg in [&s.caller_leg, &s.callee_leg] {
                        row.push_bind(leg.contact.as_str())
                            .push_bind(leg.route.as_str())
                            .push_bind(leg.hop.as_str())
                            .push_bind(i64::from(leg.cseq));
                    }
                    row.push_bind(s.session_ms.map(ms))
                        .push_bind(ms(s.refreshed_ms))
                        .push_bind(s.profiles.join("\n"));
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(format!("INSERT INTO cdr ({CDR_COLUMNS}) "));
                q.push_values(chunk, |mut row, r| {
                    row.push_bind(cap(&r.call_id))
                        .push_bind(cap(&r.caller))
                        .push_bind(aor(&r.caller))
                        .push_bind(cap(&r.dialled))
                        .push_bind(aor(&r.dialled))
                        .push_bind(r.reached.as_deref().map(cap))
                        .push_bind(ms(r.started_ms))
                        .push_bind(r.answered_ms.map(ms))
                        .push_bind(ms(r.ended_ms))
                        .push_bind(i64::from(r.status))
                        .push_bind(ending_name(r.ending));
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The dialogs stored: the calls that were in progress when the server stopped.
    pub async fn dialogs(&self) -> Result<Vec<Saved>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM dialog");
        let rows = crate::backend::dispatch!(&self.backend, pool => {
            sqlx::query(&sql)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| saved(r))
                .collect::<Result<Vec<_>, _>>()
        });
        Ok(rows?)
    }
}

/// Reads a row of [`COLUMNS`].
fn saved(r: &dyn Columns) -> Result<Saved, sqlx::Error> {
    let ms = |v: i64| u64::try_from(v).unwrap_or(0);
    let leg = |i: usize| -> Result<Leg, sqlx::Error> {
        Ok(Leg {
            contact: r.text(i)?,
            route: r.text(i + 1)?,
            hop: r.text(i + 2)?,
            cseq: u32::try_from(r.int(i + 3)?).unwrap_or(0),
        })
    };
    Ok(Saved {
        key: CallKey {
            call_id: r.text(0)?,
            from_tag: r.text(1)?,
        },
        to_tag: r.text(2)?,
        caller: r.text(3)?,
        dialled: r.text(4)?,
        started_ms: ms(r.int(5)?),
        answered_ms: ms(r.int(6)?),
        caller_leg: leg(7)?,
        callee_leg: leg(11)?,
        session_ms: r.opt_int(15)?.map(ms),
        refreshed_ms: ms(r.int(16)?),
        profiles: r
            .text(17)?
            .split('\n')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}
