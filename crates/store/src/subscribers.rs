//! The subscriber table: users of each domain with their HA1s.

use auth::{Secrets, Subscribers};
use sqlx::Row;

use crate::{SqliteStore, StoreError};

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

impl SqliteStore {
    /// Adds a subscriber; false when `username@domain` exists already.
    pub async fn add_subscriber(&self, s: &Subscriber) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO subscriber (username, domain, ha1_md5, ha1_sha256) VALUES (?, ?, ?, ?) \
             ON CONFLICT (username, domain) DO NOTHING",
        )
        .bind(&s.username)
        .bind(s.domain.to_ascii_lowercase())
        .bind(&s.secrets.md5)
        .bind(&s.secrets.sha256)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a subscriber's secrets (a new password); false when there is no such one.
    pub async fn set_secrets(
        &self,
        username: &str,
        domain: &str,
        secrets: &Secrets,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE subscriber SET ha1_md5 = ?, ha1_sha256 = ? WHERE username = ? AND domain = ?",
        )
        .bind(&secrets.md5)
        .bind(&secrets.sha256)
        .bind(username)
        .bind(domain.to_ascii_lowercase())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a subscriber; false when there was none.
    pub async fn remove_subscriber(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM subscriber WHERE username = ? AND domain = ?")
            .bind(username)
            .bind(domain.to_ascii_lowercase())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The subscribers, of one domain or of all, ordered by domain and user name.
    pub async fn subscribers(&self, domain: Option<&str>) -> Result<Vec<Subscriber>, StoreError> {
        let rows = sqlx::query(
            "SELECT username, domain, ha1_md5, ha1_sha256 FROM subscriber \
             WHERE ?1 IS NULL OR domain = ?1 ORDER BY domain, username",
        )
        .bind(domain.map(str::to_ascii_lowercase))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Subscriber {
                    username: r.try_get("username")?,
                    domain: r.try_get("domain")?,
                    secrets: Secrets {
                        md5: r.try_get("ha1_md5")?,
                        sha256: r.try_get("ha1_sha256")?,
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Every subscriber, as the table the server authenticates against.
    pub async fn load_subscribers(&self) -> Result<Subscribers, StoreError> {
        let mut table = Subscribers::new();
        for s in self.subscribers(None).await? {
            table.insert(&s.username, &s.domain, s.secrets);
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(domain: &str, password: &str) -> Subscriber {
        Subscriber {
            username: "alice".into(),
            domain: domain.into(),
            secrets: Secrets::from_password("alice", domain, password),
        }
    }

    #[tokio::test]
    async fn add_change_list_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        assert!(store
            .add_subscriber(&alice("example.com", "a"))
            .await
            .unwrap());
        assert!(
            !store
                .add_subscriber(&alice("Example.com", "b"))
                .await
                .unwrap(),
            "exists"
        );
        assert!(store
            .add_subscriber(&alice("example.net", "c"))
            .await
            .unwrap());
        assert_eq!(store.subscribers(None).await.unwrap().len(), 2);
        assert_eq!(
            store.subscribers(Some("EXAMPLE.NET")).await.unwrap(),
            [alice("example.net", "c")]
        );
        let new = Secrets::from_password("alice", "example.com", "new");
        assert!(store
            .set_secrets("alice", "example.com", &new)
            .await
            .unwrap());
        assert!(!store.set_secrets("bob", "example.com", &new).await.unwrap());
        let table = store.load_subscribers().await.unwrap();
        assert_eq!(table.get("alice", "example.com"), Some(&new));
        assert!(store
            .remove_subscriber("alice", "example.com")
            .await
            .unwrap());
        assert!(!store
            .remove_subscriber("alice", "example.com")
            .await
            .unwrap());
        // Reopened: what was written is there.
        drop(store);
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        assert_eq!(
            store.subscribers(None).await.unwrap(),
            [alice("example.net", "c")]
        );
    }
}
