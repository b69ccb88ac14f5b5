//! The key of our Record-Route entries: a token (`;rk=`) made from the dialog's Call-ID and
//! the caller's From tag under a secret the servers sharing a database share, so that an
//! in-dialog request follows a Route set we put there, not one a stranger wrote.

use std::hash::Hasher;

use sip_message::{HeaderName, Message};
use siphasher::sip::SipHasher24;

/// The Record-Route parameter that carries the token.
pub(crate) const PARAM: &str = "rk";

/// The key of the tokens: kept in the database (every server sharing it has the same, and
/// a restart keeps the dialogs going); never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RouteSecret(pub [u8; 16]);

impl std::fmt::Debug for RouteSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteSecret(..)")
    }
}

/// The token of the dialog `call_id` begun with From tag `tag`.
fn token_of(secret: &RouteSecret, call_id: &str, tag: &str) -> u64 {
    let mut h = SipHasher24::new_with_key(&secret.0);
    h.write(call_id.as_bytes());
    h.write_u8(0xff);
    h.write(tag.as_bytes());
    h.finish()
}

/// The token as written in `;rk=`: 16 lower-case hex digits.
pub(crate) fn token(secret: &RouteSecret, call_id: &str, tag: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let t = token_of(secret, call_id, tag);
    (0..16)
        .rev()
        .map(|i| char::from(HEX[((t >> (i * 4)) & 0xf) as usize]))
        .collect()
}

/// The `tag` parameter of a From value found by a scan, not a parse (this runs for every
/// in-dialog request): among the parameters after the `>` that closes the URI, or after
/// the URI of an addr-spec. Only for checking a key: a scan and the parser may be made to
/// disagree, and a wrong tag here fails the check (whoever could make it pass with another
/// tag holds a key for that tag anyway). Whether a request is in-dialog is never decided by
/// it.
fn scanned_tag(value: &str) -> Option<&str> {
    let params = value.rfind('>').map_or(value, |i| &value[i + 1..]);
    params.split(';').skip(1).find_map(|p| {
        let (name, v) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("tag").then(|| v.trim())
    })
}

/// The token for the dialog an initial request begins (its From tag, parsed); `None`
/// without one.
pub(crate) fn for_request(secret: &RouteSecret, msg: &Message) -> Option<String> {
    let call_id = msg.call_id().ok()?;
    let from = msg.from().ok()?;
    Some(token(secret, call_id, from.tag()?))
}

/// True when `value` is the token of the dialog of in-dialog request `msg`, whose To tag
/// (parsed) is `to_tag`: made from that tag (a request of the callee's) or from its From
/// tag (one of the caller's).
pub(crate) fn verifies(secret: &RouteSecret, msg: &Message, value: &str, to_tag: &str) -> bool {
    let (Ok(call_id), Ok(given)) = (msg.call_id(), u64::from_str_radix(value, 16)) else {
        return false;
    };
    token_of(secret, call_id, to_tag) == given
        || msg
            .header(HeaderName::From)
            .and_then(|h| scanned_tag(h.value))
            .is_some_and(|tag| token_of(secret, call_id, tag) == given)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: RouteSecret = RouteSecret(*b"0123456789abcdef");

    fn msg(from_tag: &str, to_tag: &str) -> Message {
        Message::parse(format!(
            "BYE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag={from_tag}\r\n\
To: <sip:b@h>;tag={to_tag}\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        ))
        .expect("message")
    }

    #[test]
    fn either_side_of_the_dialog_verifies_and_nothing_else_does() {
        let initial = msg("caller", "x");
        let t = for_request(&KEY, &initial).expect("token");
        assert!(
            verifies(&KEY, &msg("caller", "callee"), &t, "callee"),
            "the caller's request"
        );
        assert!(
            verifies(&KEY, &msg("callee", "caller"), &t, "caller"),
            "the callee's request"
        );
        assert!(
            !verifies(&KEY, &msg("other", "callee"), &t, "callee"),
            "another dialog"
        );
        assert!(
            !verifies(
                &RouteSecret([7; 16]),
                &msg("caller", "callee"),
                &t,
                "callee"
            ),
            "another key"
        );
        assert!(!verifies(
            &KEY,
            &msg("caller", "callee"),
            "0000000000000000",
            "callee"
        ));
    }

    #[test]
    fn a_key_that_is_not_hex_does_not_verify() {
        assert!(!verifies(
            &KEY,
            &msg("caller", "callee"),
            "not hex",
            "callee"
        ));
    }

    #[test]
    fn from_tags_are_found_after_the_uri() {
        assert_eq!(scanned_tag("<sip:a@h;tag=no>;tag=yes"), Some("yes"));
        assert_eq!(
            scanned_tag("\"A ;tag=no\" <sip:a@h> ; TAG = yes ;x=1"),
            Some("yes")
        );
        assert_eq!(scanned_tag("sip:a@h;tag=yes"), Some("yes"));
        assert_eq!(scanned_tag("<sip:a@h>"), None);
    }
}
