//! The notifier of one shard of presentities: SUBSCRIBEs in, NOTIFYs out, in order.
//!
//! Each subscription has at most one NOTIFY in flight: a change meanwhile is sent once it
//! is answered, with the state as it is then. So NOTIFYs reach a watcher in order and the
//! last one carries the latest state (a terminated call is never followed by an older
//! "early"). A presentity's presence is notified at most once per interval (RFC 3856
//! §6.10); the changes in between make one NOTIFY with the latest state.

use std::collections::HashMap;

use crate::bodies::{self, CallView, WatcherView};
use crate::presentity::Presentity;
use crate::rules::{Decision, Rule, Rules};
use crate::saved::Change;
use crate::subscription::{Notify, Refused, Status, SubKey, SubscribeRequest, Subscription};
use crate::Package;

/// Limits and intervals of a notifier (one shard's share of the server's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most subscriptions held.
    pub max_subscriptions: usize,
    /// Most watchers of one presentity.
    pub max_per_presentity: usize,
    /// Most subscriptions of one watcher.
    pub max_per_watcher: usize,
    /// Most subscriptions waiting for their presentity's word (watchers of other domains,
    /// who need not authenticate), in all.
    pub max_pending: usize,
    /// Most of them for one presentity.
    pub max_pending_per_presentity: usize,
    /// Most publications held.
    pub max_publications: usize,
    /// Most publications of one presentity per package (its devices): a new one drops
    /// the oldest.
    pub max_devices: usize,
    /// Largest published document, in bytes.
    pub max_body: usize,
    /// Shortest Expires taken (but 0), in seconds (423 below).
    pub min_expires_s: u32,
    /// Longest Expires granted, and the default.
    pub max_expires_s: u32,
    /// Shortest time between two NOTIFYs of a presentity's presence (0: every change).
    pub presence_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_subscriptions: 100_000,
            max_per_presentity: 256,
            max_per_watcher: 256,
            max_pending: 4096,
            max_pending_per_presentity: 16,
            max_publications: 100_000,
            max_devices: 8,
            max_body: 8192,
            min_expires_s: 60,
            max_expires_s: 3600,
            presence_interval_ms: 5000,
        }
    }
}

/// A subscription and how its NOTIFYs go.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) sub: Subscription,
    /// The rules let its watcher see the state.
    allowed: bool,
    in_flight: bool,
    /// Changed while a NOTIFY was in flight.
    stale: bool,
    /// The NOTIFY in flight says it is over.
    ending: bool,
    /// The store holds it, with this CSeq.
    stored: Option<u32>,
}

/// The presentities of one shard, their watchers and publications.
#[derive(Debug)]
pub struct Notifier {
    pub(crate) cfg: Config,
    pub(crate) presentities: HashMap<String, Presentity, ahash::RandomState>,
    pub(crate) subs: HashMap<SubKey, Entry, ahash::RandomState>,
    pub(crate) rules: Rules,
    per_watcher: HashMap<String, usize, ahash::RandomState>,
    /// Subscriptions pending.
    pending: usize,
    pub(crate) publications: usize,
    pub(crate) changes: Vec<Change>,
    /// Makes entity tags unique to this notifier and process.
    pub(crate) etag_seed: u64,
    pub(crate) etags: u64,
}

/// NOTIFY CSeqs a subscription may use before the store learns its CSeq again; a restart
/// skips as many, so that the next NOTIFY's is higher than any sent.
pub(crate) const CSEQ_STEP: u32 = 512;

impl Notifier {
    /// An empty notifier; `etag_seed` (random) keeps its entity tags apart from other
    /// notifiers' and processes'.
    pub fn new(cfg: Config, etag_seed: u64) -> Notifier {
        Notifier {
            cfg,
            presentities: HashMap::default(),
            subs: HashMap::default(),
            rules: Rules::default(),
            per_watcher: HashMap::default(),
            pending: 0,
            publications: 0,
            changes: Vec::new(),
            etag_seed,
            etags: 0,
        }
    }

    /// The Expires granted for `asked` (none: the longest): at most the longest; 0 stays
    /// (an end); below the shortest, 423 with Min-Expires.
    pub(crate) fn granted(&self, asked: Option<u32>) -> Result<u32, Refused> {
        let expires = asked
            .unwrap_or(self.cfg.max_expires_s)
            .min(self.cfg.max_expires_s);
        if expires != 0 && expires < self.cfg.min_expires_s {
            return Err(Refused {
                min_expires: Some(self.cfg.min_expires_s),
                ..Refused::new(423, "Interval Too Brief")
            });
        }
        Ok(expires)
    }

    /// A SUBSCRIBE at `now_ms` (Unix milliseconds): the Expires granted, and the NOTIFY
    /// that follows it in `out`; or why it is refused (400–500: answer with that).
    pub fn subscribe(
        &mut self,
        now_ms: u64,
        req: SubscribeRequest,
        out: &mut Vec<Notify>,
    ) -> Result<u32, Refused> {
        let package = req.key.package;
        let expires = self.granted(req.expires_s)?;
        let owner_only = matches!(package, Package::Winfo | Package::MessageSummary);
        if owner_only && req.watcher != req.presentity {
            return Err(Refused::new(403, "Forbidden"));
        }
        if let Some(tag) = &req.to_tag {
            return self.refresh(now_ms, req.clone(), tag, expires, out);
        }
        if self.subs.contains_key(&req.key) {
            // The same dialog subscribed anew (no To tag): the new one replaces it.
            self.forget(&req.key);
        }
        let watched = self.presentities.get(&req.presentity);
        let (watchers, watching) = (
            watched.map_or(0, |p| p.subs.len()),
            self.per_watcher.get(&req.watcher).copied().unwrap_or(0),
        );
        if self.subs.len() >= self.cfg.max_subscriptions
            || watchers >= self.cfg.max_per_presentity
            || watching >= self.cfg.max_per_watcher
        {
            return Err(Refused::new(503, "Service Unavailable"));
        }
        if too_long(&req) {
            return Err(Refused::new(400, "Bad Request (too long)"));
        }
        let decision = match owner_only {
            true => Decision::Active,
            false => self.rules.decide(&req.presentity, &req.watcher),
        };
        // Strangers waiting for a word are few: they cannot take the watchers' places.
        if decision == Decision::Pending {
            let of_presentity = self.presentities.get(&req.presentity).map_or(0, |p| {
                p.subs
                    .iter()
                    .filter(|k| {
                        self.subs
                            .get(k)
                            .is_some_and(|e| e.sub.status == Status::Pending)
                    })
                    .count()
            });
            if self.pending >= self.cfg.max_pending
                || of_presentity >= self.cfg.max_pending_per_presentity
            {
                return Err(Refused::new(503, "Service Unavailable"));
            }
        }
        let status = match (decision, expires) {
            (Decision::Rejected, _) => Status::Terminated("rejected"),
            (_, 0) => Status::Terminated("timeout"),
            (Decision::Active, _) => Status::Active,
            (Decision::Pending, _) => Status::Pending,
        };
        let sub = Subscription {
            key: req.key.clone(),
            our_tag: req.our_tag,
            presentity: req.presentity.clone(),
            presentity_uri: req.presentity_uri.clone(),
            watcher: req.watcher.clone(),
            watcher_uri: req.watcher_uri,
            peer: req.peer,
            expires_ms: now_ms + u64::from(expires) * 1000,
            cseq: 0,
            remote_cseq: req.cseq,
            status,
        };
        self.insert(sub, decision == Decision::Active, None, req.registered);
        self.save(&req.key);
        self.send(now_ms, &req.key, out);
        if package == Package::Presence {
            self.winfo_changed(now_ms, &req.presentity, out);
        }
        Ok(expires)
    }

    /// A SUBSCRIBE inside the dialog of a subscription: it lasts `expires` from now (0:
    /// it ends), its watcher may be reached anew, and a NOTIFY follows (RFC 6665 §4.2.1.2).
    fn refresh(
        &mut self,
        now_ms: u64,
        req: SubscribeRequest,
        tag: &str,
        expires: u32,
        out: &mut Vec<Notify>,
    ) -> Result<u32, Refused> {
        let Some(e) = self.subs.get_mut(&req.key) else {
            return Err(Refused::new(481, "Subscription Does Not Exist"));
        };
        if e.sub.our_tag != tag || matches!(e.sub.status, Status::Terminated(_)) {
            return Err(Refused::new(481, "Subscription Does Not Exist"));
        }
        if req.cseq <= e.sub.remote_cseq {
            return Err(Refused::new(500, "Server Internal Error"));
        }
        e.sub.remote_cseq = req.cseq;
        // A refresh may move the watcher's target, never its route set (RFC 3261 §12.2).
        e.sub.peer.contact = req.peer.contact;
        e.sub.peer.hop = req.peer.hop;
        e.sub.expires_ms = now_ms + u64::from(expires) * 1000;
        if expires == 0 {
            self.set_status(&req.key, Status::Terminated("timeout"));
        }
        self.save(&req.key);
        self.send(now_ms, &req.key, out);
        Ok(expires)
    }

    /// Adds a subscription (and its presentity, registered or not, when new).
    pub(crate) fn insert(
        &mut self,
        sub: Subscription,
        allowed: bool,
        stored: Option<u32>,
        registered: bool,
    ) {
        let p = self
            .presentities
            .entry(sub.presentity.clone())
            .or_insert_with(|| Presentity::new(&sub.presentity_uri, registered));
        p.subs.push(sub.key.clone());
        *self.per_watcher.entry(sub.watcher.clone()).or_default() += 1;
        self.pending += usize::from(sub.status == Status::Pending);
        let key = sub.key.clone();
        let entry = Entry {
            sub,
            allowed,
            in_flight: false,
            stale: false,
            ending: false,
            stored,
        };
        self.subs.insert(key, entry);
    }

    /// The answer to the NOTIFY of `key` (`None`: none came, or its watcher cannot be
    /// reached). A subscription whose watcher refuses or does not answer is over (RFC 6665
    /// §4.2.2), as is one whose last NOTIFY went; else a change meanwhile goes now.
    pub fn answered(
        &mut self,
        now_ms: u64,
        key: &SubKey,
        status: Option<u16>,
        out: &mut Vec<Notify>,
    ) {
        let Some(e) = self.subs.get_mut(key) else {
            return;
        };
        e.in_flight = false;
        let failed = match status {
            None => true,
            Some(s) => (400..500).contains(&s) && s != 491 || s >= 600,
        };
        // Over once the NOTIFY that said so is answered (an end that came while another
        // was in flight goes out first).
        if failed || (e.ending && !e.stale) {
            let presentity = e.sub.presentity.clone();
            self.forget(key);
            if key.package == Package::Presence {
                self.winfo_changed(now_ms, &presentity, out);
            }
        } else if e.stale {
            self.send(now_ms, key, out);
        }
    }

    /// Sends the state to the subscription `key` now, or once its NOTIFY in flight is
    /// answered.
    pub(crate) fn send(&mut self, now_ms: u64, key: &SubKey, out: &mut Vec<Notify>) {
        let Some(e) = self.subs.get_mut(key) else {
            return;
        };
        if e.in_flight {
            e.stale = true;
            return;
        }
        e.in_flight = true;
        e.stale = false;
        e.sub.cseq = e.sub.cseq.saturating_add(1);
        let (cseq, stored) = (e.sub.cseq, e.stored);
        let carries = match e.sub.status {
            Status::Active => true,
            Status::Pending => false,
            Status::Terminated(why) => e.allowed && why != "rejected",
        };
        let remaining = e.sub.expires_ms.saturating_sub(now_ms).div_ceil(1000);
        let state = match e.sub.status {
            Status::Active => format!("active;expires={remaining}"),
            Status::Pending => format!("pending;expires={remaining}"),
            Status::Terminated(why) => format!("terminated;reason={why}"),
        };
        e.ending = matches!(e.sub.status, Status::Terminated(_));
        let sub = &self.subs[key].sub;
        // (A document's version is its NOTIFY's CSeq: it rises, also across restarts.)
        let body = match carries {
            true => body(&mut self.presentities, &self.subs, sub, cseq),
            false => None,
        };
        let event = match sub.key.id.is_empty() {
            true => sub.key.package.name().to_owned(),
            false => format!("{};id={}", sub.key.package.name(), sub.key.id),
        };
        out.push(Notify {
            key: key.clone(),
            presentity: sub.presentity.clone(),
            from: (sub.presentity_uri.clone(), sub.our_tag.clone()),
            to: (sub.watcher_uri.clone(), sub.key.from_tag.clone()),
            peer: sub.peer.clone(),
            cseq,
            event,
            state,
            body,
        });
        // The store learns the CSeq now and then, not with every NOTIFY.
        if stored.is_some_and(|s| cseq >= s + CSEQ_STEP / 2) {
            self.save(key);
        }
    }

    /// Sets how the subscription `key` stands (counting those pending).
    fn set_status(&mut self, key: &SubKey, status: Status) {
        if let Some(e) = self.subs.get_mut(key) {
            let was = e.sub.status == Status::Pending;
            e.sub.status = status;
            self.pending = self.pending + usize::from(status == Status::Pending) - usize::from(was);
        }
    }

    /// Forgets the subscription `key`, without a NOTIFY.
    pub(crate) fn forget(&mut self, key: &SubKey) {
        let Some(e) = self.subs.remove(key) else {
            return;
        };
        self.pending -= usize::from(e.sub.status == Status::Pending);
        if let Some(n) = self.per_watcher.get_mut(&e.sub.watcher) {
            *n -= 1;
            if *n == 0 {
                self.per_watcher.remove(&e.sub.watcher);
            }
        }
        if let Some(p) = self.presentities.get_mut(&e.sub.presentity) {
            p.subs.retain(|k| k != key);
            if p.is_unused() {
                self.presentities.remove(&e.sub.presentity);
            }
        }
        if e.stored.is_some() {
            self.changes.push(Change::SubscriptionGone(key.clone()));
        }
    }

    /// Tells the store of the subscription `key` as it is now (an ended one is removed).
    pub(crate) fn save(&mut self, key: &SubKey) {
        let Some(e) = self.subs.get_mut(key) else {
            return;
        };
        match e.sub.status {
            Status::Terminated(_) => {
                if e.stored.take().is_some() {
                    self.changes.push(Change::SubscriptionGone(key.clone()));
                }
            }
            _ => {
                e.stored = Some(e.sub.cseq);
                self.changes
                    .push(Change::Subscription(Box::new(e.sub.clone())));
            }
        }
    }

    /// Something of `presentity` that `package` tells changed: its watchers learn it now,
    /// or (presence, within its interval) when the interval is over.
    pub(crate) fn changed(
        &mut self,
        now_ms: u64,
        presentity: &str,
        package: Package,
        out: &mut Vec<Notify>,
    ) {
        let interval = match package {
            Package::Presence => self.cfg.presence_interval_ms,
            _ => 0,
        };
        let Some(p) = self.presentities.get_mut(presentity) else {
            return;
        };
        if package == Package::Presence {
            p.forget_doc();
        }
        let i = package.index();
        if p.last_sent[i] > 0 && now_ms < p.last_sent[i] + interval {
            p.due[i] = true;
            return;
        }
        self.notify_all(now_ms, presentity, package, out);
    }

    /// Sends `presentity`'s `package` state to all its watchers of it now.
    pub(crate) fn notify_all(
        &mut self,
        now_ms: u64,
        presentity: &str,
        package: Package,
        out: &mut Vec<Notify>,
    ) {
        let Some(p) = self.presentities.get_mut(presentity) else {
            return;
        };
        let i = package.index();
        p.last_sent[i] = now_ms;
        p.due[i] = false;
        let keys: Vec<SubKey> = p
            .subs
            .iter()
            .filter(|k| k.package == package)
            .cloned()
            .collect();
        for key in keys {
            if self
                .subs
                .get(&key)
                .is_some_and(|e| e.sub.status == Status::Active)
            {
                self.send(now_ms, &key, out);
            }
        }
    }

    /// The watchers of `presentity`'s presence changed: its watcher information goes to
    /// its own subscriptions of it.
    fn winfo_changed(&mut self, now_ms: u64, presentity: &str, out: &mut Vec<Notify>) {
        self.changed(now_ms, presentity, Package::Winfo, out);
    }

    /// Whether a device of `aor` is registered: its watchers learn when that changes.
    pub fn set_registered(
        &mut self,
        now_ms: u64,
        aor: &str,
        registered: bool,
        out: &mut Vec<Notify>,
    ) {
        let Some(p) = self.presentities.get_mut(aor) else {
            return;
        };
        if p.registered != registered {
            p.registered = registered;
            self.changed(now_ms, aor, Package::Presence, out);
        }
    }

    /// A call of `aor` moved on: the watchers of its calls learn it, and those of its
    /// presence when it starts or stops talking. Only a watched presentity's calls are
    /// kept.
    pub fn call(&mut self, now_ms: u64, aor: &str, view: CallView, out: &mut Vec<Notify>) {
        let Some(p) = self.presentities.get_mut(aor) else {
            return;
        };
        let talking = p.talking();
        if !p.call(now_ms, view) {
            return;
        }
        let now_talking = p.talking();
        self.changed(now_ms, aor, Package::Dialog, out);
        if talking != now_talking {
            self.changed(now_ms, aor, Package::Presence, out);
        }
    }

    /// Whether someone watches `aor` (or it publishes).
    pub fn watched(&self, aor: &str) -> bool {
        self.presentities.contains_key(aor)
    }

    /// Sets (or with `None` forgets) `owner`'s rule for `watcher`: its subscriptions to
    /// `owner` are let in, held or ended accordingly.
    pub fn set_rule(
        &mut self,
        now_ms: u64,
        owner: &str,
        watcher: &str,
        rule: Option<Rule>,
        out: &mut Vec<Notify>,
    ) {
        self.rules.set(owner, watcher, rule);
        let decision = self.rules.decide(owner, watcher);
        let keys: Vec<SubKey> = self
            .presentities
            .get(owner)
            .map(|p| p.subs.clone())
            .unwrap_or_default();
        for key in keys {
            let Some(e) = self.subs.get_mut(&key) else {
                continue;
            };
            if e.sub.watcher != watcher
                || matches!(key.package, Package::Winfo | Package::MessageSummary)
            {
                continue;
            }
            let status = match decision {
                Decision::Active => Status::Active,
                Decision::Pending => Status::Pending,
                Decision::Rejected => Status::Terminated("rejected"),
            };
            if matches!(e.sub.status, Status::Terminated(_)) || e.sub.status == status {
                continue;
            }
            e.allowed = decision == Decision::Active;
            self.set_status(&key, status);
            self.save(&key);
            self.send(now_ms, &key, out);
        }
        self.winfo_changed(now_ms, owner, out);
    }

    /// What time did by `now_ms`: subscriptions past their end get their last NOTIFY,
    /// publications past theirs go, changes held back by the rate limit go out, ended
    /// calls are dropped.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Notify>) {
        let over: Vec<SubKey> = self
            .subs
            .iter()
            .filter(|(_, e)| {
                e.sub.expires_ms <= now_ms && !matches!(e.sub.status, Status::Terminated(_))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in over {
            self.set_status(&key, Status::Terminated("timeout"));
            self.save(&key);
            self.send(now_ms, &key, out);
        }
        self.expire_publications(now_ms, out);
        let mut due = Vec::new();
        for (aor, p) in &mut self.presentities {
            p.drop_ended(now_ms);
            for package in Package::ALL {
                if p.due[package.index()] {
                    due.push((aor.clone(), package));
                }
            }
        }
        for (aor, package) in due {
            self.changed(now_ms, &aor, package, out);
        }
    }

    /// What the store must learn, in order, since the last time.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// How many subscriptions and publications are held.
    pub fn counts(&self) -> (usize, usize) {
        (self.subs.len(), self.publications)
    }

    /// The subscriptions held, in no order.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.subs.values().map(|e| e.sub.clone()).collect()
    }
}

/// The document a NOTIFY of `sub` carries, as its presentity stands now.
fn body(
    presentities: &mut HashMap<String, Presentity, ahash::RandomState>,
    subs: &HashMap<SubKey, Entry, ahash::RandomState>,
    sub: &Subscription,
    version: u32,
) -> Option<(&'static str, String)> {
    let package = sub.key.package;
    let p = presentities.get_mut(&sub.presentity)?;
    let text = match package {
        Package::Presence => p.presence_doc().to_owned(),
        Package::Dialog => bodies::dialog_info(&p.uri, version, &p.call_views()),
        Package::Winfo => bodies::watcherinfo(&p.uri, version, &watchers(subs, p)),
        Package::MessageSummary => p
            .newest(Package::MessageSummary)
            .map_or_else(|| bodies::NO_MESSAGES.to_owned(), |m| m.body.clone()),
    };
    Some((package.content_type(), text))
}

/// Most watchers one watcher information document lists (those waiting first): it must
/// fit a datagram.
const MAX_LISTED: usize = 32;

/// The watchers of a presentity's presence, for its watcher information: an opaque id of
/// each subscription (not its dialog's identifiers), those waiting for the user first.
fn watchers(subs: &HashMap<SubKey, Entry, ahash::RandomState>, p: &Presentity) -> Vec<WatcherView> {
    use std::hash::{Hash, Hasher};
    let mut listed: Vec<WatcherView> = p
        .subs
        .iter()
        .filter(|k| k.package == Package::Presence)
        .filter_map(|k| subs.get(k))
        .filter_map(|e| {
            let (status, event) = match e.sub.status {
                Status::Active => ("active", "approved"),
                Status::Pending => ("pending", "subscribe"),
                Status::Terminated(_) => return None,
            };
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.sub.key.hash(&mut h);
            Some(WatcherView {
                id: format!("w{:016x}", h.finish()),
                uri: e.sub.watcher_uri.clone(),
                status,
                event,
            })
        })
        .collect();
    listed.sort_by_key(|w| w.status != "pending");
    listed.truncate(MAX_LISTED);
    listed
}

/// Longest values of a subscription's identifiers kept (its Contact and route set are
/// bounded where they are read).
const MAX_ID: usize = 256;

/// A SUBSCRIBE whose identifiers are longer than the server keeps.
fn too_long(req: &SubscribeRequest) -> bool {
    [
        &req.key.call_id,
        &req.key.from_tag,
        &req.our_tag,
        &req.presentity_uri,
        &req.watcher_uri,
        &req.presentity,
        &req.watcher,
    ]
    .iter()
    .any(|v| v.len() > MAX_ID)
}
