//! What the store keeps, so that subscriptions and publications outlive a restart: each
//! change in order, and what a restart loads back.

use crate::notifier::{Notifier, CSEQ_STEP};
use crate::pidf;
use crate::presentity::Publication;
use crate::rules::Decision;
use crate::subscription::{Status, SubKey, Subscription};
use crate::Package;

/// A change the store must learn, in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A subscription, new or changed: stored, replacing what was.
    Subscription(Box<Subscription>),
    /// A subscription ended: removed.
    SubscriptionGone(SubKey),
    /// A publication, new or refreshed: stored.
    Publication(Box<StoredPublication>),
    /// A publication removed, expired or replaced under a new entity tag.
    PublicationGone {
        /// Whose.
        presentity: String,
        /// Its entity tag.
        etag: String,
    },
}

/// A publication as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPublication {
    /// Whose state: `user@domain`.
    pub presentity: String,
    /// Its URI.
    pub presentity_uri: String,
    /// Which package.
    pub package: Package,
    /// Its entity tag.
    pub etag: String,
    /// When it ends (Unix milliseconds).
    pub expires_ms: u64,
    /// The document.
    pub body: String,
}

impl Notifier {
    /// Takes back a subscription stored before a restart (with what the server knows of
    /// its presentity: whether a device of it is registered), as the rules (restored first) stand now: its next NOTIFY's CSeq is
    /// past any sent before, and the store learns it. False when it is over, blocked
    /// meanwhile (the store forgets it), or no longer fits.
    pub fn restore_subscription(&mut self, mut sub: Subscription, registered: bool) -> bool {
        if self.subs.contains_key(&sub.key)
            || self.subs.len() >= self.cfg.max_subscriptions
            || matches!(sub.status, Status::Terminated(_))
        {
            return false;
        }
        if matches!(sub.key.package, Package::Presence | Package::Dialog) {
            sub.status = match self.rules.decide(&sub.presentity, &sub.watcher) {
                Decision::Active => Status::Active,
                Decision::Pending => Status::Pending,
                Decision::Rejected => {
                    self.changes.push(Change::SubscriptionGone(sub.key));
                    return false;
                }
            };
        }
        sub.cseq = sub.cseq.saturating_add(CSEQ_STEP);
        let allowed = sub.status == Status::Active;
        let key = sub.key.clone();
        self.insert(sub, allowed, None, registered);
        self.save(&key);
        true
    }

    /// Takes back a publication stored before a restart. False when its document no
    /// longer reads, or it no longer fits.
    pub fn restore_publication(&mut self, p: StoredPublication, registered: bool) -> bool {
        if self.publications >= self.cfg.max_publications {
            return false;
        }
        let doc = match p.package {
            Package::Presence => match pidf::read(p.body.as_bytes()) {
                Ok(doc) => Some(doc),
                Err(_) => return false,
            },
            _ => None,
        };
        let publication = Publication {
            package: p.package,
            etag: p.etag,
            expires_ms: p.expires_ms,
            body: p.body,
            doc,
        };
        self.add_publication(&p.presentity, &p.presentity_uri, registered, publication);
        // It was stored already.
        self.changes.pop();
        true
    }
}
