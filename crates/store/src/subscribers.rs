//! The subscriber table: users of each domain with their HA1s.

use auth::{Secrets, Subscribers};

use crate::backend::Columns;
use crate::{Store, StoreError};

/// One stored subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The user name (the user part of the address, and the digest username).
    pub username: String,
    /// The domain (also the digest realm), lower case.
    pub domain: String,
    /// HA1 per algorithm.
    pub secrets: Secrets,
}

impl Store {
    /// Adds a subscriber; false when `username@domain` exists already.
    pub async fn add_subscriber(&self, s: &Subscriber) -> Result<bool, StoreError> {
        self.insert(
            "INSERT INTO subscriber (username, domain, ha1_md5, ha1_sha256) VALUES (?, ?, ?, ?)",
            &[
                &s.username,
                &s.domain.to_ascii_lowercase(),
                &s.secrets.md5,
                &s.secrets.sha256,
            ],
        )
        .await
    }

    /// Replaces a subscriber's secrets (a new password); false when there is no such one.
    pub async fn set_secrets(
        &self,
        username: &str,
        domain: &str,
        secrets: &Secrets,
    ) -> Result<bool, StoreError> {
        let sql =
            "UPDATE subscriber SET ha1_md5 = ?, ha1_sha256 = ? WHERE username = ? AND domain = ?";
        let params = [
            secrets.md5.as_str(),
            &secrets.sha256,
            username,
            &domain.to_ascii_lowercase(),
        ];
        Ok(self.execute(sql, &params).await? == 1)
    }

    /// Removes a subscriber; false when there was none.
    pub async fn remove_subscriber(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<bool, StoreError> {
        let sql = "DELETE FROM subscriber WHERE username = ? AND domain = ?";
        Ok(self
            .execute(sql, &[username, &domain.to_ascii_lowercase()])
            .await?
            == 1)
    }

    /// The subscribers, of one domain or of all, ordered by domain and user name.
    pub async fn subscribers(&self, domain: Option<&str>) -> Result<Vec<Subscriber>, StoreError> {
        const SELECT: &str = "SELECT username, domain, ha1_md5, ha1_sha256 FROM subscriber";
        match domain {
            Some(d) => {
                let sql = format!("{SELECT} WHERE domain = ? ORDER BY username");
                self.fetch(&sql, &[&d.to_ascii_lowercase()], subscriber)
                    .await
            }
            None => {
                let sql = format!("{SELECT} ORDER BY domain, username");
                self.fetch(&sql, &[], subscriber).await
            }
        }
    }

    /// The subscriber `username@domain`, if there is one.
    pub async fn subscriber(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Option<Subscriber>, StoreError> {
        let sql = "SELECT username, domain, ha1_md5, ha1_sha256 FROM subscriber \
                   WHERE username = ? AND domain = ?";
        let found = self
            .fetch(sql, &[username, &domain.to_ascii_lowercase()], subscriber)
            .await?;
        Ok(found.into_iter().next())
    }

    /// How many subscribers `domain` has.
    pub async fn subscriber_count(&self, domain: &str) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) FROM subscriber WHERE domain = ?";
        let counts = self
            .fetch(sql, &[&domain.to_ascii_lowercase()], |r| r.int(0))
            .await?;
        Ok(counts.first().map_or(0, |&n| u64::try_from(n).unwrap_or(0)))
    }

    /// Every subscriber, as the table the server authenticates against.
    pub async fn load_subscribers(&self) -> Result<Subscribers, StoreError> {
        let mut table = Subscribers::new();
        let sql = "SELECT username, domain, ha1_md5, ha1_sha256 FROM subscriber";
        self.for_each_row(sql, |r| {
            let s = subscriber(r)?;
            table.insert(&s.username, &s.domain, s.secrets);
            Ok(())
        })
        .await?;
        Ok(table)
    }
}

/// Reads a row of (username, domain, ha1_md5, ha1_sha256).
fn subscriber(r: &dyn Columns) -> Result<Subscriber, sqlx::Error> {
    Ok(Subscriber {
        username: r.text(0)?,
        domain: r.text(1)?,
        secrets: Secrets {
            md5: r.text(2)?,
            sha256: r.text(3)?,
        },
    })
}
