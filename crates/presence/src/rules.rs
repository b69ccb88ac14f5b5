//! Who may watch whom: the subscribers' own rules (allow or block a watcher), and without
//! one, the default: a watcher of the presentity's own domain sees its state, one from
//! elsewhere waits (`pending`) until the presentity allows it (RFC 3857: the presentity
//! learns of it from its watcher information).

use std::collections::HashMap;

/// A presentity's word on one watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// It sees the presentity's state.
    Allow,
    /// It gets no state: its subscriptions are rejected.
    Block,
}

/// How a subscription stands with the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It gets the state.
    Active,
    /// It waits for the presentity's word, and gets no state meanwhile.
    Pending,
    /// Blocked.
    Rejected,
}

/// The rules of the presentities of one shard: owner `user@domain` to watcher
/// `user@domain` to rule.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    by_owner: HashMap<String, HashMap<String, Rule>, ahash::RandomState>,
}

impl Rules {
    /// Sets (or with `None` forgets) `owner`'s rule for `watcher`.
    pub(crate) fn set(&mut self, owner: &str, watcher: &str, rule: Option<Rule>) {
        match rule {
            Some(rule) => {
                self.by_owner
                    .entry(owner.to_owned())
                    .or_default()
                    .insert(watcher.to_owned(), rule);
            }
            None => {
                if let Some(rules) = self.by_owner.get_mut(owner) {
                    rules.remove(watcher);
                    if rules.is_empty() {
                        self.by_owner.remove(owner);
                    }
                }
            }
        }
    }

    /// Whether `watcher` sees `owner`'s state: its rule, else the default (the owner
    /// itself and its domain's users do; others wait).
    pub(crate) fn decide(&self, owner: &str, watcher: &str) -> Decision {
        match self.by_owner.get(owner).and_then(|r| r.get(watcher)) {
            Some(Rule::Allow) => Decision::Active,
            Some(Rule::Block) => Decision::Rejected,
            None if owner == watcher || domain(owner) == domain(watcher) => Decision::Active,
            None => Decision::Pending,
        }
    }
}

/// The address-of-record (`sip:user@domain`) rules, subscriptions and publications are
/// kept under: `sips:` names the same user as `sip:`, and must not pass a rule made for it.
pub fn key_of(aor: String) -> String {
    match aor.strip_prefix("sips:") {
        Some(rest) => format!("sip:{rest}"),
        None => aor,
    }
}

/// The domain of `user@domain` (all of it when there is no `@`).
fn domain(aor: &str) -> &str {
    aor.rsplit_once('@').map_or(aor, |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lets_the_domain_see_and_holds_strangers() {
        let mut r = Rules::default();
        assert_eq!(r.decide("a@x.org", "b@x.org"), Decision::Active);
        assert_eq!(r.decide("a@x.org", "a@x.org"), Decision::Active);
        assert_eq!(r.decide("a@x.org", "c@y.org"), Decision::Pending);
        r.set("a@x.org", "c@y.org", Some(Rule::Allow));
        r.set("a@x.org", "b@x.org", Some(Rule::Block));
        assert_eq!(r.decide("a@x.org", "c@y.org"), Decision::Active);
        assert_eq!(r.decide("a@x.org", "b@x.org"), Decision::Rejected);
        r.set("a@x.org", "b@x.org", None);
        assert_eq!(r.decide("a@x.org", "b@x.org"), Decision::Active);
        r.set("a@x.org", "c@y.org", None);
        assert!(r.by_owner.is_empty());
    }
}
