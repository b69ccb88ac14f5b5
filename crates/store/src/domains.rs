//! The domains the server hosts, and the aliases: extra addresses of subscribers.

use crate::backend::Columns;
use crate::{Store, StoreError};

/// An extra address: `username@domain` stands for `target_username@target_domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The user part of the alias.
    pub username: String,
    /// The domain of the alias, lower case.
    pub domain: String,
    /// The user part of the address it stands for.
    pub target_username: String,
    /// The domain of the address it stands for, lower case.
    pub target_domain: String,
}

impl Store {
    /// Adds a hosted domain (in lower case); false when it is there already.
    pub async fn add_domain(&self, domain: &str) -> Result<bool, StoreError> {
        let sql = "INSERT INTO domain (domain) VALUES (?)";
        self.insert(sql, &[&domain.to_ascii_lowercase()]).await
    }

    /// Removes a hosted domain; false when there was none. Its subscribers and aliases stay.
    pub async fn remove_domain(&self, domain: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM domain WHERE domain = ?";
        Ok(self.execute(sql, &[&domain.to_ascii_lowercase()]).await? == 1)
    }

    /// The hosted domains, sorted.
    pub async fn domains(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT domain FROM domain ORDER BY domain";
        self.fetch(sql, &[], |r| r.text(0)).await
    }

    /// Adds an alias (its domains in lower case); false when the alias exists already.
    pub async fn add_alias(&self, a: &Alias) -> Result<bool, StoreError> {
        let sql =
            "INSERT INTO alias (alias_username, alias_domain, username, domain) VALUES (?, ?, ?, ?)";
        let params = [
            a.username.as_str(),
            &a.domain.to_ascii_lowercase(),
            &a.target_username,
            &a.target_domain.to_ascii_lowercase(),
        ];
        self.insert(sql, &params).await
    }

    /// Removes the alias `username@domain`; false when there was none.
    pub async fn remove_alias(&self, username: &str, domain: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM alias WHERE alias_username = ? AND alias_domain = ?";
        Ok(self
            .execute(sql, &[username, &domain.to_ascii_lowercase()])
            .await?
            == 1)
    }

    /// The aliases in one domain or in all, ordered by domain and user name.
    pub async fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, StoreError> {
        const SELECT: &str = "SELECT alias_username, alias_domain, username, domain FROM alias";
        match domain {
            Some(d) => {
                let sql = format!("{SELECT} WHERE alias_domain = ? ORDER BY alias_username");
                self.fetch(&sql, &[&d.to_ascii_lowercase()], alias).await
            }
            None => {
                let sql = format!("{SELECT} ORDER BY alias_domain, alias_username");
                self.fetch(&sql, &[], alias).await
            }
        }
    }
}

/// Reads a row of (alias_username, alias_domain, username, domain).
fn alias(r: &dyn Columns) -> Result<Alias, sqlx::Error> {
    Ok(Alias {
        username: r.text(0)?,
        domain: r.text(1)?,
        target_username: r.text(2)?,
        target_domain: r.text(3)?,
    })
}
