//! Secrets the servers sharing a database share (the key of their Record-Route entries).

use crate::{Store, StoreError};

impl Store {
    /// The secret called `name`: `candidate` (stored now) when there was none yet, else the
    /// one stored before, by this server or another sharing the database.
    pub async fn secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        let sql = "INSERT INTO secret (name, value) VALUES (?, ?)";
        self.insert(sql, &[name, candidate]).await?;
        let sql = "SELECT value FROM secret WHERE name = ?";
        let mut found = self.fetch(sql, &[name], |r| r.text(0)).await?;
        found
            .pop()
            .ok_or(StoreError::Query(sqlx::Error::RowNotFound))
    }
}
