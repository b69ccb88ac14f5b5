//! Messages kept for users who are offline (`m_store()`), until delivered or expired.

use message_store::Stored;
use sqlx::QueryBuilder;

use crate::backend::{Backend, Columns};
use crate::cdr::{ms, ROWS_PER_STATEMENT};
use crate::{Store, StoreError};

const COLUMNS: &str =
    "id, recipient, from_hdr, to_hdr, content_type, body, received_ms, expires_ms";

impl Store {
    /// Keeps a message.
    pub async fn keep_message(&self, m: &Stored) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO offline_message ({COLUMNS}) ");
        crate::backend::dispatch!(&self.backend, pool => {
            let mut q = QueryBuilder::new(&sql);
            q.push_values([m], |mut row, m| {
                row.push_bind(i64::try_from(m.id).unwrap_or(i64::MAX))
                    .push_bind(m.recipient.as_str())
                    .push_bind(m.from.as_str())
                    .push_bind(m.to.as_str())
                    .push_bind(m.content_type.as_str())
                    .push_bind(m.body.as_slice())
                    .push_bind(ms(m.received_ms))
                    .push_bind(ms(m.expires_ms));
            });
            q.build().execute(pool).await?;
        });
        Ok(())
    }

    /// Removes the messages `ids` (delivered or expired).
    pub async fn remove_messages(&self, ids: &[u64]) -> Result<(), StoreError> {
        crate::backend::dispatch!(&self.backend, pool => {
            let mut tx = pool.begin().await?;
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new("DELETE FROM offline_message WHERE id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(i64::try_from(*id).unwrap_or(i64::MAX));
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The messages kept, in the order they came.
    pub async fn messages(&self) -> Result<Vec<Stored>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM offline_message ORDER BY id");
        let rows = crate::backend::dispatch!(&self.backend, pool => {
            sqlx::query(&sql)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| stored(r))
                .collect::<Result<Vec<_>, _>>()
        });
        Ok(rows?)
    }
}

/// Reads a row of [`COLUMNS`].
fn stored(r: &dyn Columns) -> Result<Stored, sqlx::Error> {
    let number = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(Stored {
        id: number(r.int(0)?),
        recipient: r.text(1)?,
        from: r.text(2)?,
        to: r.text(3)?,
        content_type: r.text(4)?,
        body: r.bytes(5)?,
        received_ms: number(r.int(6)?),
        expires_ms: number(r.int(7)?),
    })
}
