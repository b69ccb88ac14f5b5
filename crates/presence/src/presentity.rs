//! What the server holds of one presentity while someone watches it or it publishes: its
//! watchers' subscriptions, its publications, what the server knows of it (registered, in
//! a call), its calls as the dialog event tells them, and when each package last notified
//! (the rate limit).

use crate::bodies::{CallView, Phase};
use crate::pidf::{self, Facts};
use crate::{Package, SubKey};

/// Most calls of one presentity its dialog event lists.
pub(crate) const MAX_CALLS: usize = 16;
/// How long an ended call stays listed (as terminated), in milliseconds.
pub(crate) const ENDED_KEPT_MS: u64 = 10_000;

/// A published document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publication {
    pub(crate) package: Package,
    pub(crate) etag: String,
    pub(crate) expires_ms: u64,
    pub(crate) body: String,
    /// A presence document, read.
    pub(crate) doc: Option<pidf::Document>,
}

/// One presentity.
#[derive(Debug, Default)]
pub(crate) struct Presentity {
    /// Its URI, as the first subscription or publication named it.
    pub(crate) uri: String,
    pub(crate) subs: Vec<SubKey>,
    /// Newest last.
    pub(crate) pubs: Vec<Publication>,
    /// A device of it is registered.
    pub(crate) registered: bool,
    /// Its calls, and when each ended.
    pub(crate) calls: Vec<(CallView, Option<u64>)>,
    /// Its presence document, while nothing changed.
    doc: Option<String>,
    /// When each package last notified its watchers (Unix milliseconds).
    pub(crate) last_sent: [u64; 4],
    /// Each package has a change its watchers have not been told yet (rate limit).
    pub(crate) due: [bool; 4],
}

impl Presentity {
    pub(crate) fn new(uri: &str, registered: bool) -> Presentity {
        Presentity {
            uri: uri.to_owned(),
            registered,
            ..Presentity::default()
        }
    }

    /// Nothing left to keep.
    pub(crate) fn is_unused(&self) -> bool {
        self.subs.is_empty() && self.pubs.is_empty()
    }

    /// Its presence document changed.
    pub(crate) fn forget_doc(&mut self) {
        self.doc = None;
    }

    /// Its presence document, as composed now.
    pub(crate) fn presence_doc(&mut self) -> &str {
        let facts = Facts {
            registered: self.registered,
            in_call: self.talking(),
        };
        let (uri, pubs) = (&self.uri, &self.pubs);
        self.doc.get_or_insert_with(|| {
            let docs: Vec<&pidf::Document> = pubs.iter().filter_map(|p| p.doc.as_ref()).collect();
            pidf::compose(uri, &docs, facts)
        })
    }

    /// The newest publication of `package`.
    pub(crate) fn newest(&self, package: Package) -> Option<&Publication> {
        self.pubs.iter().rev().find(|p| p.package == package)
    }

    /// A call moved on: true when its view changed. A phase never goes back (a late
    /// "early" after "terminated" changes nothing), and a call first seen over is not
    /// listed.
    pub(crate) fn call(&mut self, now_ms: u64, view: CallView) -> bool {
        let ended = (view.phase == Phase::Terminated).then_some(now_ms);
        if let Some((known, at)) = self
            .calls
            .iter_mut()
            .find(|(c, _)| c.call_id == view.call_id)
        {
            if view.phase <= known.phase {
                return false;
            }
            *known = view;
            *at = ended;
            return true;
        }
        if ended.is_some() {
            return false;
        }
        if self.calls.len() >= MAX_CALLS {
            match self.calls.iter().position(|(_, at)| at.is_some()) {
                Some(i) => {
                    self.calls.remove(i);
                }
                None => return false,
            }
        }
        self.calls.push((view, None));
        true
    }

    /// Whether it is in an answered call.
    pub(crate) fn talking(&self) -> bool {
        self.calls.iter().any(|(c, _)| c.phase == Phase::Confirmed)
    }

    /// Drops the calls that ended long enough ago.
    pub(crate) fn drop_ended(&mut self, now_ms: u64) {
        self.calls
            .retain(|(_, at)| at.is_none_or(|t| now_ms.saturating_sub(t) < ENDED_KEPT_MS));
    }

    /// Its calls as listed.
    pub(crate) fn call_views(&self) -> Vec<CallView> {
        self.calls.iter().map(|(c, _)| c.clone()).collect()
    }
}
