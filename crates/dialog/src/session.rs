//! Session timers (RFC 4028): a dialog whose answer set a session interval, and that no
//! re-INVITE or UPDATE refreshed within it, is over. It is recorded as expired, ending when
//! its session did (a call whose parties vanished gets its real end), and forgotten: its
//! parties send their own BYE (a proxy must not, §8.3).

use crate::call::{CallKey, DialogState};
use crate::calls::Calls;

/// Time past a session's end before the server ends it: the parties' own BYE, or a late
/// refresh, may be on its way (RFC 4028 §10 has the refresher ask a third of the interval
/// early; 32 s is a transaction's time).
const GRACE_MS: u64 = 32_000;

impl Calls {
    /// The confirmed dialogs whose session is over by `now_ms`, and when it ended.
    pub(crate) fn sessions_over(&self, now_ms: u64) -> Vec<(CallKey, String, u64)> {
        let mut over = Vec::new();
        for (key, call) in &self.calls {
            for d in &call.dialogs {
                let Some(interval) = d.session_ms else {
                    continue;
                };
                let end = d.refreshed_ms.saturating_add(interval);
                if d.state == DialogState::Confirmed && now_ms >= end.saturating_add(GRACE_MS) {
                    over.push((key.clone(), d.to_tag.clone(), end));
                }
            }
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use crate::{Answer, CallKey, Calls, Ending, InDialog, Invite, Leg, Limits};

    fn key() -> CallKey {
        CallKey {
            call_id: "s1".into(),
            from_tag: "a".into(),
        }
    }

    fn answered(session_s: Option<u32>) -> Calls {
        let mut c = Calls::new(Limits::default());
        let leg = |contact: &str| Leg {
            contact: contact.into(),
            hop: "udp:192.0.2.1:5060".into(),
            ..Leg::default()
        };
        let invite = Invite {
            key: key(),
            caller: "sip:alice@example.com".into(),
            dialled: "sip:bob@example.com".into(),
            target: "sip:bob@example.com".into(),
            caller_leg: leg("sip:alice@192.0.2.1"),
            profiles: Vec::new(),
        };
        c.invite(0, invite);
        let answer = Answer {
            callee: leg("sip:bob@192.0.2.2"),
            session_s,
        };
        c.response(1_000, &key(), Some("b"), 200, Some(answer));
        c
    }

    fn refresh(c: &mut Calls, now_ms: u64, cseq: u32, session_s: Option<u32>) {
        let sent = InDialog {
            call_id: "s1",
            from_tag: "a",
            to_tag: "b",
            cseq,
            bye: false,
            refresh: true,
            session_s,
        };
        c.request(now_ms, sent);
    }

    /// Unrefreshed, a 90 s session is over 90 s after the answer: ended then (not when
    /// noticed), recorded as expired, without a BYE of the server's.
    #[test]
    fn an_unrefreshed_session_ends_when_it_expired() {
        let mut c = answered(Some(90));
        c.expire(91_000 + 31_000);
        assert!(c.take_records().is_empty(), "grace");
        assert!(c.expire(91_000 + 32_000).is_empty(), "no BYE");
        let r = &c.take_records()[0];
        assert_eq!(
            (r.ending, r.ended_ms, r.duration_ms()),
            (Ending::Expired, 91_000, 90_000)
        );
        assert!(c.is_empty());
    }

    /// Each new refresh starts the interval again, with what it asks for; a retransmitted
    /// or stale one changes nothing.
    #[test]
    fn a_refresh_keeps_the_session() {
        let mut c = answered(Some(90));
        refresh(&mut c, 60_000, 2, Some(90));
        refresh(&mut c, 100_000, 2, Some(90));
        c.expire(60_000 + 90_000 + 31_000);
        assert!(c.take_records().is_empty(), "refreshed at 60 s");
        refresh(&mut c, 140_000, 3, Some(1800));
        c.expire(140_000 + 90_000 + 32_000);
        assert!(c.take_records().is_empty(), "now 1800 s");
        c.expire(140_000 + 1_800_000 + 32_000);
        assert_eq!(c.take_records()[0].ended_ms, 1_940_000);
    }

    /// An interval under RFC 4028's 90 s, or a refresh without one, cannot end a call
    /// early: the timer is off.
    #[test]
    fn a_tiny_interval_or_none_turns_the_timer_off() {
        let mut c = answered(Some(90));
        refresh(&mut c, 10_000, 2, Some(1));
        c.expire(3_600_000);
        assert!(c.take_records().is_empty());
        let mut c = answered(Some(90));
        refresh(&mut c, 10_000, 2, None);
        c.expire(3_600_000);
        assert!(c.take_records().is_empty());
        assert_eq!(c.active().len(), 1);
    }

    /// Without Session-Expires, a call goes on however quiet.
    #[test]
    fn no_session_timer_no_end() {
        let mut c = answered(None);
        assert!(c.expire(3_600_000).is_empty());
        assert_eq!(c.active().len(), 1);
    }
}
