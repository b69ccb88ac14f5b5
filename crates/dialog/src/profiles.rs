//! Call limits (as Kamailio's dialog profiles): a call may count under profiles (its
//! caller, its domain: whatever text the script chooses), and the script asks how many calls
//! of a profile are in progress before it lets another through.

use crate::calls::Calls;

impl Calls {
    /// Calls in progress (ringing or talking) counted under `profile`.
    pub fn profile_size(&self, profile: &str) -> u32 {
        self.profiles.get(profile).copied().unwrap_or(0)
    }

    /// Counts a call in (`add`) or out of its profiles.
    pub(crate) fn count(&mut self, profiles: &[String], add: bool) {
        for p in profiles {
            match add {
                true => *self.profiles.entry(p.clone()).or_default() += 1,
                false => {
                    if let Some(n) = self.profiles.get_mut(p) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.profiles.remove(p);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{CallKey, Calls, Invite, Leg, Limits};

    fn invite(call: &str, profiles: &[&str]) -> Invite {
        Invite {
            key: CallKey {
                call_id: call.into(),
                from_tag: "a".into(),
            },
            caller: "sip:alice@example.com".into(),
            dialled: "sip:bob@example.com".into(),
            target: "sip:bob@example.com".into(),
            caller_leg: Leg::default(),
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// A call counts from its INVITE until it is over, in each of its profiles.
    #[test]
    fn calls_count_in_their_profiles_while_in_progress() {
        let mut c = Calls::new(Limits::default());
        c.invite(0, invite("c1", &["alice@example.com", "example.com"]));
        c.invite(0, invite("c2", &["example.com"]));
        assert!(!c.invite(0, invite("c2", &["example.com"])), "once");
        assert_eq!(c.profile_size("example.com"), 2);
        assert_eq!(c.profile_size("alice@example.com"), 1);
        assert_eq!(c.profile_size("bob@example.com"), 0);
        let key = |call: &str| CallKey {
            call_id: call.into(),
            from_tag: "a".into(),
        };
        c.response(10, &key("c1"), Some("b"), 486, None);
        assert_eq!(c.profile_size("example.com"), 1);
        assert_eq!(c.profile_size("alice@example.com"), 0);
        c.expire(Limits::default().max_setup_ms + 1);
        assert_eq!(
            c.profile_size("example.com"),
            0,
            "a lost call counts no more"
        );
        assert!(c.profiles.is_empty());
    }
}
