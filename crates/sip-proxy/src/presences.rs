//! The presence server as the proxy runs it: the notifiers, sharded by presentity, fed
//! with SUBSCRIBEs and PUBLISHes (`handle_subscribe()`, `handle_publish()`), with the
//! registrations and the followed calls; their NOTIFYs sent as requests of the core's own,
//! whose answers go back to them; what the store must learn each second, and what a
//! restart brings back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use presence::{CallView, Change, Notifier, Notify, Phase, Rule, StoredPublication, Subscription};
use sip_message::{Message, Uri};

use crate::originate::{Answer, OnAnswer};
use crate::routing::presence_aor;
use crate::{Command, Core, Destination};

const SHARDS: usize = 16;

/// The notifiers.
#[derive(Debug)]
pub(crate) struct Presences {
    shards: Vec<Mutex<Notifier>>,
    /// Spreads presentities over the shards, with a random key.
    hasher: ahash::RandomState,
    /// Anyone ever subscribed or published: until then registrations and calls are not
    /// looked at (a server nobody watches pays nothing).
    used: AtomicBool,
}

/// What the presence server left to do each second.
#[derive(Debug, Default)]
pub struct PresenceTick {
    /// What the store must learn, in order.
    pub changes: Vec<Change>,
    /// The NOTIFYs of subscriptions that ended and of changes the rate limit held back.
    pub commands: Vec<Command>,
}

impl Presences {
    /// Notifiers within `cfg` (its totals spread over the shards; a watcher's limit holds
    /// in each, as its subscriptions spread unevenly).
    pub(crate) fn new(cfg: presence::Config) -> Presences {
        let share = presence::Config {
            max_subscriptions: cfg.max_subscriptions.div_ceil(SHARDS),
            max_publications: cfg.max_publications.div_ceil(SHARDS),
            ..cfg
        };
        let hasher = ahash::RandomState::new();
        let seed = hasher.hash_one("etags");
        Presences {
            shards: (0..SHARDS)
                .map(|i| Mutex::new(Notifier::new(share, seed ^ i as u64)))
                .collect(),
            hasher,
            used: AtomicBool::new(false),
        }
    }

    /// The notifier of `presentity` (`sip:user@domain`).
    pub(crate) fn of(&self, presentity: &str) -> MutexGuard<'_, Notifier> {
        // (Read first: no write to a shared line on every NOTIFY answered.)
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
        self.lock(self.hasher.hash_one(presentity) as usize % SHARDS)
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Notifier> {
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether anyone ever subscribed or published.
    pub(crate) fn used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// Runs `f` on each notifier in turn.
    pub(crate) fn each(&self, mut f: impl FnMut(&mut Notifier)) {
        for i in 0..SHARDS {
            f(&mut self.lock(i));
        }
    }
}

impl Core {
    /// Sends `notifies`: each a NOTIFY of the server's own, whose answer goes back to its
    /// notifier (which may have the next one).
    pub(crate) fn send_notifies(&self, now: Instant, notifies: Vec<Notify>) -> Vec<Command> {
        let mut out = Vec::new();
        for n in notifies {
            let dest = Destination::from_text(&n.peer.hop);
            let key = (n.presentity.clone(), n.key.clone());
            let Some(request) = self.notify_request(&n, dest) else {
                tracing::warn!(call_id = %n.key.call_id, "a NOTIFY of ours could not be written");
                let mut next = Vec::new();
                self.presence
                    .of(&key.0)
                    .answered(self.unix_ms(now), &key.1, None, &mut next);
                out.extend(self.send_notifies(now, next));
                continue;
            };
            let on_answer: OnAnswer = Box::new(move |core: &Core, now, answer, out| {
                let status = match answer {
                    Answer::Response(r) => r.status(),
                    Answer::Timeout | Answer::Unreachable => None,
                };
                let mut next = Vec::new();
                core.presence
                    .of(&key.0)
                    .answered(core.unix_ms(now), &key.1, status, &mut next);
                out.extend(core.send_notifies(now, next));
            });
            out.extend(self.send_request(now, request, dest, on_answer));
        }
        out
    }

    /// The NOTIFY `n` describes, with our Contact for where it goes.
    fn notify_request(&self, n: &Notify, dest: Option<Destination>) -> Option<Message> {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        let cfg = self.config();
        let contact = match dest {
            Some(d) => cfg.advertised_for(d.protocol, d.addr),
            None => cfg.advertised.first().map(|(_, a)| *a),
        }?;
        let transport = dest.map_or("udp", |d| d.protocol.via_token());
        let mut text = format!("NOTIFY {} SIP/2.0\r\n", clean(&n.peer.contact));
        if !n.peer.route.is_empty() {
            text.push_str(&format!("Route: {}\r\n", clean(&n.peer.route)));
        }
        let (ctype, body) = n.body.as_ref().map_or(("", ""), |(t, b)| (t, b.as_str()));
        text.push_str(&format!(
            "Max-Forwards: 70\r\nFrom: <{}>;tag={}\r\nTo: <{}>;tag={}\r\nCall-ID: {}\r\n\
             CSeq: {} NOTIFY\r\nContact: <sip:{};transport={}>\r\nEvent: {}\r\n\
             Subscription-State: {}\r\n",
            clean(&n.from.0),
            clean(&n.from.1),
            clean(&n.to.0),
            clean(&n.to.1),
            clean(&n.key.call_id),
            n.cseq,
            crate::relay::sock_text(contact),
            transport.to_ascii_lowercase(),
            clean(&n.event),
            n.state,
        ));
        if !ctype.is_empty() {
            text.push_str(&format!("Content-Type: {ctype}\r\n"));
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        Message::parse(text.into_bytes()).ok()
    }

    /// The AORs whose bindings `changes` touched: their watchers learn whether any is left.
    pub fn presence_location(&self, now: Instant, changes: &[registrar::Change]) -> Vec<Command> {
        if !self.presence.used() || changes.is_empty() {
            return Vec::new();
        }
        let mut aors: Vec<&str> = changes.iter().map(registrar::Change::aor).collect();
        aors.sort_unstable();
        aors.dedup();
        let mut notifies = Vec::new();
        let now_ms = self.unix_ms(now);
        for aor in aors {
            let mut n = self.presence.of(aor);
            if n.watched(aor) {
                let registered = !self.location.lookup(aor, self.unix(now)).is_empty();
                n.set_registered(now_ms, aor, registered, &mut notifies);
            }
        }
        self.send_notifies(now, notifies)
    }

    /// The followed calls that moved on since the last time: the watchers of their
    /// parties' calls and presence learn it.
    pub(crate) fn call_progress(&self, now: Instant) -> Vec<Command> {
        let now_ms = self.unix_ms(now);
        let mut notifies = Vec::new();
        for p in self.dialogs.take_progress() {
            let phase = match p.phase {
                dialog::Phase::Trying => Phase::Trying,
                dialog::Phase::Early => Phase::Early,
                dialog::Phase::Confirmed => Phase::Confirmed,
                dialog::Phase::Terminated => Phase::Terminated,
            };
            let aor = |uri: &str| Uri::parse(uri).ok().and_then(|u| presence_aor(&u));
            if let Some(caller) = aor(&p.caller) {
                let view = CallView {
                    call_id: p.call_id.clone(),
                    local_tag: Some(p.caller_tag.clone()),
                    remote_tag: p.callee_tag.clone(),
                    initiator: true,
                    remote: p.dialled.clone(),
                    phase,
                };
                self.presence
                    .of(&caller)
                    .call(now_ms, &caller, view, &mut notifies);
            }
            // The callee: the user the Request-URI named (an alias: the user it stands for),
            // which a trunk's To may not.
            let callee = aor(&p.target)
                .map(|a| self.unalias(&a))
                .or_else(|| aor(&p.dialled));
            if let Some(callee) = callee {
                let view = CallView {
                    call_id: p.call_id,
                    local_tag: p.callee_tag,
                    remote_tag: Some(p.caller_tag),
                    initiator: false,
                    remote: p.caller,
                    phase,
                };
                self.presence
                    .of(&callee)
                    .call(now_ms, &callee, view, &mut notifies);
            }
        }
        self.send_notifies(now, notifies)
    }

    /// The user an alias `aor` stands for (`aor` itself when none).
    fn unalias(&self, aor: &str) -> String {
        let aliases = self.aliases();
        let target = aor.split_once(':').and_then(|(_, addr)| aliases.get(addr));
        match target {
            Some(t) => format!("sip:{t}"),
            None => aor.to_owned(),
        }
    }

    /// Whether a device of `aor` is registered.
    pub(crate) fn registered(&self, now: Instant, aor: &str) -> bool {
        !self.location.lookup(aor, self.unix(now)).is_empty()
    }

    /// What time did to the subscriptions and publications by `now`: the NOTIFYs to send
    /// and the changes to store.
    pub fn tick_presence(&self, now: Instant) -> PresenceTick {
        let now_ms = self.unix_ms(now);
        let mut notifies = Vec::new();
        let mut changes = Vec::new();
        self.presence.each(|n| {
            n.tick(now_ms, &mut notifies);
            changes.append(&mut n.take_changes());
        });
        PresenceTick {
            changes,
            commands: self.send_notifies(now, notifies),
        }
    }

    /// Takes back what the store kept from before a restart: rules, then subscriptions and
    /// publications. How many subscriptions and publications were taken.
    pub fn restore_presence(
        &self,
        now: Instant,
        rules: Vec<(String, String, Rule)>,
        subscriptions: Vec<Subscription>,
        publications: Vec<StoredPublication>,
    ) -> (usize, usize) {
        let now_ms = self.unix_ms(now);
        for (owner, watcher, rule) in rules {
            self.presence.of(&owner).set_rule(
                now_ms,
                &owner,
                &watcher,
                Some(rule),
                &mut Vec::new(),
            );
        }
        if !subscriptions.is_empty() {
            self.dialogs.note_progress();
        }
        let subs = subscriptions
            .into_iter()
            .filter(|s| {
                let registered = self.registered(now, &s.presentity);
                self.presence
                    .of(&s.presentity)
                    .restore_subscription(s.clone(), registered)
            })
            .count();
        let pubs = publications
            .into_iter()
            .filter(|p| {
                let registered = self.registered(now, &p.presentity);
                self.presence
                    .of(&p.presentity)
                    .restore_publication(p.clone(), registered)
            })
            .count();
        (subs, pubs)
    }

    /// Sets (or with `None` forgets) `owner`'s rule for `watcher` (both `sip:user@domain`):
    /// the NOTIFYs that follow.
    pub fn set_presence_rule(
        &self,
        now: Instant,
        owner: &str,
        watcher: &str,
        rule: Option<Rule>,
    ) -> Vec<Command> {
        let mut notifies = Vec::new();
        self.presence
            .of(owner)
            .set_rule(self.unix_ms(now), owner, watcher, rule, &mut notifies);
        self.send_notifies(now, notifies)
    }

    /// How many subscriptions and publications are held.
    pub fn presence_counts(&self) -> (usize, usize) {
        let (mut subs, mut pubs) = (0, 0);
        self.presence.each(|n| {
            let (s, p) = n.counts();
            subs += s;
            pubs += p;
        });
        (subs, pubs)
    }
}
