//! The checks of RFC 3261 §16.3 a request passes before it is routed (`sanity_check`).

use sip_message::{ErrorKind, HeaderName, Host, Message, Uri};

use crate::core::{Core, STATEFUL};
use crate::forward::fnv;
use crate::reply::reason;
use crate::routing::RouteCtx;

/// The loop-detection hash of §16.6 step 8: what makes two passes of a request differ.
pub(crate) fn loop_hash(msg: &Message) -> u64 {
    let h = |n| msg.header(n).map_or(&b""[..], |h| h.value.as_bytes());
    fnv(&[
        msg.request_uri_str().unwrap_or_default().as_bytes(),
        h(HeaderName::CallId),
        h(HeaderName::CSeq),
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::Route),
    ])
}

impl Core {
    /// Syntax and sanity (400, 505), the Request-URI scheme (416), Proxy-Require (420) and
    /// loops (482). Answers the error itself; true when the request is sound.
    pub(crate) fn sanity(&self, c: &mut RouteCtx<'_>) -> bool {
        let msg = c.msg;
        if let Err(e) = msg.validate().and_then(|()| msg.sanity_check()) {
            let text = format!("Bad Request ({})", e.kind);
            let (code, why) = if e.kind == ErrorKind::Version {
                (505, reason(505))
            } else {
                (400, text.as_str())
            };
            self.respond(c, code, why, &[]);
            return false;
        }
        if !matches!(msg.request_uri(), Some(Uri::Sip(_))) {
            self.respond(c, 416, reason(416), &[]);
            return false;
        }
        let unsupported: Vec<&str> = msg
            .tokens(HeaderName::ProxyRequire)
            .filter_map(Result::ok)
            .collect();
        if !unsupported.is_empty() {
            let list = unsupported.join(", ");
            self.respond(c, 420, reason(420), &[("Unsupported", &list)]);
            return false;
        }
        if self.looped(msg) {
            self.respond(c, 482, reason(482), &[]);
            return false;
        }
        true
    }

    /// §16.3 step 4: a request carrying a Via of ours whose branch has the hash this request
    /// has now came back unchanged (a spiral changes the Request-URI, and so the hash).
    pub(crate) fn looped(&self, msg: &Message) -> bool {
        // Only a request that went through a stateful branch of ours can loop: most carry
        // none, and need no Via parsed.
        let ours_before = msg
            .headers_named(HeaderName::Via)
            .any(|h| memchr::memmem::find(h.value.as_bytes(), STATEFUL.as_bytes()).is_some());
        if !ours_before {
            return false;
        }
        let mut lh = None;
        let ours = |h: Host<'_>, p: Option<u16>| {
            self.config()
                .advertised
                .iter()
                .any(|(_, a)| Some(a.ip()) == h.ip() && a.port() == p.unwrap_or(5060))
        };
        msg.vias().filter_map(Result::ok).any(|v| {
            ours(v.host, v.port)
                && v.branch().is_some_and(|b| {
                    b.starts_with(STATEFUL)
                        && b.ends_with(
                            lh.get_or_insert_with(|| format!("-{:x}", loop_hash(msg)))
                                .as_str(),
                        )
                })
        })
    }
}
