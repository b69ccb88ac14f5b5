//! The presence server's state (`handle_subscribe()`, `handle_publish()`): subscriptions,
//! publications and the users' rules, kept so that a restart loses none.

use std::collections::HashMap;

use presence::{Change, Package, Peer, Rule, Status, StoredPublication, SubKey, Subscription};
use sqlx::QueryBuilder;

use crate::backend::{Backend, Columns};
use crate::cdr::{ms, ROWS_PER_STATEMENT};
use crate::{Store, StoreError};

/// The columns of a subscription, in the order of [`subscription`].
const SUB_COLUMNS: &str = "call_id, from_tag, package, event_id, our_tag, presentity, \
                           presentity_uri, watcher, watcher_uri, contact, route, hop, \
                           expires_ms, cseq, remote_cseq, status";
/// The columns of a publication, in the order of [`publication`].
const PUB_COLUMNS: &str = "presentity, etag, presentity_uri, package, expires_ms, body";

impl Store {
    /// Stores what the presence server changed since the last time, in one transaction
    /// (in order: the last change of a subscription or publication is what stays).
    pub async fn record_presence(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut subs: HashMap<&SubKey, Option<&Subscription>> = HashMap::new();
        let mut pubs: HashMap<(&str, &str), Option<&StoredPublication>> = HashMap::new();
        for c in changes {
            match c {
                Change::Subscription(s) => {
                    subs.insert(&s.key, Some(s));
                }
                Change::SubscriptionGone(k) => {
                    subs.insert(k, None);
                }
                Change::Publication(p) => {
                    pubs.insert((&p.presentity, &p.etag), Some(p));
                }
                Change::PublicationGone { presentity, etag } => {
                    pubs.insert((presentity, etag), None);
                }
            }
        }
        let sub_keys: Vec<&SubKey> = subs.keys().copied().collect();
        let kept_subs: Vec<&Subscription> = subs.values().filter_map(|s| *s).collect();
        let pub_keys: Vec<(&str, &str)> = pubs.keys().copied().collect();
        let kept_pubs: Vec<&StoredPublication> = pubs.values().filter_map(|p| *p).collect();
        crate::backend::dispatch!(&self.backend, pool => {
            let mut tx = pool.begin().await?;
            for chunk in sub_keys.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new("DELETE FROM presence_subscription WHERE ");
                for (i, k) in chunk.iter().enumerate() {
                    q.push(if i == 0 { "(call_id = " } else { " OR (call_id = " })
                        .push_bind(k.call_id.as_str())
                        .push(" AND from_tag = ")
                        .push_bind(k.from_tag.as_str())
                        .push(" AND package = ")
                        .push_bind(k.package.name())
                        .push(" AND event_id = ")
                        .push_bind(k.id.as_str())
                        .push(")");
                }
                q.build().execute(&mut *tx).await?;
            }
            for chunk in kept_subs.chunks(ROWS_PER_STATEMENT) {
                let sql = format!("INSERT INTO presence_subscription ({SUB_COLUMNS}) ");
                let mut q = QueryBuilder::new(sql);
                q.push_values(chunk, |mut row, s| {
                    row.push_bind(s.key.call_id.as_str())
                        .push_bind(s.key.from_tag.as_str())
                        .push_bind(s.key.package.name())
                        .push_bind(s.key.id.as_str())
                        .push_bind(s.our_tag.as_str())
                        .push_bind(s.presentity.as_str())
                        .push_bind(s.presentity_uri.as_str())
                        .push_bind(s.watcher.as_str())
                        .push_bind(s.watcher_uri.as_str())
                        .push_bind(s.peer.contact.as_str())
                        .push_bind(s.peer.route.as_str())
                        .push_bind(s.peer.hop.as_str())
                        .push_bind(ms(s.expires_ms))
                        .push_bind(i64::from(s.cseq))
                        .push_bind(i64::from(s.remote_cseq))
                        .push_bind(status_name(s.status));
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in pub_keys.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new("DELETE FROM presence_publication WHERE ");
                for (i, (presentity, etag)) in chunk.iter().enumerate() {
                    q.push(if i == 0 { "(presentity = " } else { " OR (presentity = " })
                        .push_bind(*presentity)
                        .push(" AND etag = ")
                        .push_bind(*etag)
                        .push(")");
                }
                q.build().execute(&mut *tx).await?;
            }
            for chunk in kept_pubs.chunks(ROWS_PER_STATEMENT) {
                let sql = format!("INSERT INTO presence_publication ({PUB_COLUMNS}) ");
                let mut q = QueryBuilder::new(sql);
                q.push_values(chunk, |mut row, p| {
                    row.push_bind(p.presentity.as_str())
                        .push_bind(p.etag.as_str())
                        .push_bind(p.presentity_uri.as_str())
                        .push_bind(p.package.name())
                        .push_bind(ms(p.expires_ms))
                        .push_bind(p.body.as_str());
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The subscriptions and publications stored.
    pub async fn presence(
        &self,
    ) -> Result<(Vec<Subscription>, Vec<StoredPublication>), StoreError> {
        let subs_sql = format!("SELECT {SUB_COLUMNS} FROM presence_subscription");
        let pubs_sql = format!("SELECT {PUB_COLUMNS} FROM presence_publication");
        let (subs, pubs) = crate::backend::dispatch!(&self.backend, pool => {
            let subs = sqlx::query(&subs_sql).fetch_all(pool).await?;
            let pubs = sqlx::query(&pubs_sql).fetch_all(pool).await?;
            (
                subs.iter().filter_map(|r| subscription(r).transpose()).collect::<Result<Vec<_>, _>>(),
                pubs.iter().filter_map(|r| publication(r).transpose()).collect::<Result<Vec<_>, _>>(),
            )
        });
        Ok((subs?, pubs?))
    }

    /// Sets (or with `None` forgets) `owner`'s presence rule for `watcher`.
    pub async fn set_presence_rule(
        &self,
        owner: &str,
        watcher: &str,
        rule: Option<Rule>,
    ) -> Result<(), StoreError> {
        let delete = self
            .backend
            .dialect()
            .placeholders("DELETE FROM presence_rule WHERE owner = ? AND watcher = ?");
        let insert = self
            .backend
            .dialect()
            .placeholders("INSERT INTO presence_rule (owner, watcher, allow) VALUES (?, ?, ?)");
        crate::backend::dispatch!(&self.backend, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(&delete).bind(owner).bind(watcher).execute(&mut *tx).await?;
            if let Some(rule) = rule {
                let allow = i64::from(rule == Rule::Allow);
                sqlx::query(&insert).bind(owner).bind(watcher).bind(allow).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every presence rule: owner, watcher, rule.
    pub async fn presence_rules(&self) -> Result<Vec<(String, String, Rule)>, StoreError> {
        let rows = crate::backend::dispatch!(&self.backend, pool => {
            sqlx::query("SELECT owner, watcher, allow FROM presence_rule")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    let r: &dyn Columns = r;
                    let rule = if r.int(2)? != 0 { Rule::Allow } else { Rule::Block };
                    Ok((r.text(0)?, r.text(1)?, rule))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        });
        Ok(rows?)
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Active => "active",
        Status::Pending => "pending",
        Status::Terminated(_) => "terminated",
    }
}

fn number(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Reads a row of [`SUB_COLUMNS`] (none for a package or state this version does not know).
fn subscription(r: &dyn Columns) -> Result<Option<Subscription>, sqlx::Error> {
    let Some(package) = Package::from_event(&r.text(2)?) else {
        return Ok(None);
    };
    let status = match r.text(15)?.as_str() {
        "active" => Status::Active,
        "pending" => Status::Pending,
        _ => return Ok(None),
    };
    let cseq = |i: usize| -> Result<u32, sqlx::Error> {
        Ok(u32::try_from(r.int(i)?).unwrap_or(u32::MAX / 2))
    };
    Ok(Some(Subscription {
        key: SubKey {
            call_id: r.text(0)?,
            from_tag: r.text(1)?,
            package,
            id: r.text(3)?,
        },
        our_tag: r.text(4)?,
        presentity: r.text(5)?,
        presentity_uri: r.text(6)?,
        watcher: r.text(7)?,
        watcher_uri: r.text(8)?,
        peer: Peer {
            contact: r.text(9)?,
            route: r.text(10)?,
            hop: r.text(11)?,
        },
        expires_ms: number(r.int(12)?),
        cseq: cseq(13)?,
        remote_cseq: cseq(14)?,
        status,
    }))
}

/// Reads a row of [`PUB_COLUMNS`].
fn publication(r: &dyn Columns) -> Result<Option<StoredPublication>, sqlx::Error> {
    let Some(package) = Package::from_event(&r.text(3)?) else {
        return Ok(None);
    };
    Ok(Some(StoredPublication {
        presentity: r.text(0)?,
        etag: r.text(1)?,
        presentity_uri: r.text(2)?,
        package,
        expires_ms: number(r.int(4)?),
        body: r.text(5)?,
    }))
}
