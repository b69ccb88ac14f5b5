//! Messages that wait for the media relay: a request whose SDP the relay rewrites is parked
//! until it answers ([`Core::media_done`]) and then relayed; a response of a transaction
//! whose media goes through the relay waits in its context on its way upstream, in order
//! ([`crate::context::Context::media_answered`]).

use std::time::Instant;

use ::relay::{MediaError, MediaOp};
use bytes::Bytes;
use sip_message::Method;

use crate::core::Core;
use crate::routing::{Phase, RouteCtx};
use crate::suspend::{Parked, RelayState, Resume};
use crate::Command;

impl Core {
    /// Before a request marked by `rtp_relay()` is relayed: its SDP goes to the relay and
    /// the request waits (`Some(true)`; `Some(false)` when it cannot wait and was refused),
    /// or a BYE ends the call's media session and goes on (`None`).
    pub(crate) fn media_first(&self, c: &mut RouteCtx<'_>, stateful: bool) -> Option<bool> {
        if !c.edits.media || c.media_asked {
            return None;
        }
        let authenticated = c.auth_user.is_some();
        let request =
            crate::media::for_request(c.msg, c.src.addr.ip(), authenticated, next_hop(c))?;
        if request.op == MediaOp::Delete {
            c.out.push(Command::Media {
                request,
                then: None,
            });
            return None;
        }
        let is_ack = c.msg.method() == Some(Method::Ack);
        if c.txn.is_none() && !is_ack {
            // No context to wait in (at capacity): as for a name to look up.
            return Some(self.too_busy(c));
        }
        if c.txn.is_none() && self.at_capacity() {
            // (The 2xx the ACK acknowledges is retransmitted, and so is it.)
            return Some(false);
        }
        let state = Box::new(RelayState::of(c, stateful));
        if let Some(id) = c.txn {
            // Its failure from here on (no ports, a CANCEL, no route) ends the session.
            let browser = c.src.protocol.is_websocket();
            let mark = crate::media::MediaMark::of(c.msg, c.src.addr.ip(), authenticated, browser)
                .map(Box::new);
            self.with_ctx(id, |ctx| ctx.media = mark);
        }
        let then = self.park_context(c.now, c.txn, Parked::Media(state));
        c.out.push(Command::Media {
            request,
            then: Some(then),
        });
        c.stateful = true;
        Some(true)
    }

    /// The media relay answered what [`Command::Media`] asked for `then`: the SDP it
    /// rewrote, or why not. A request goes on with the new body (an offer the relay had no
    /// ports for is answered 503, unless `[relay]` lets calls proceed without it); a response
    /// goes on, with those held behind it. Without a new body a message goes on as it came.
    pub fn media_done(
        &self,
        now: Instant,
        then: Resume,
        result: Result<Vec<u8>, MediaError>,
    ) -> Vec<Command> {
        let id = then.context;
        let mut out = Vec::new();
        match &result {
            // A relay that does not answer is the operator's to know; what a stranger's
            // message brings about (SDP it cannot read, no session, a source over its
            // limit, which the relay logs once a second) would flood the log.
            Err(e @ MediaError::Unavailable) => {
                tracing::warn!(error = %e, "media relay: the SDP goes on as it came");
            }
            Err(e) => tracing::debug!(error = %e, "media relay: the SDP goes on as it came"),
            Ok(_) => {}
        }
        match self.with_ctx(id, |ctx| ctx.take_media()) {
            Some(Some(Ok(state))) => self.media_request_done(now, id, &state, result, &mut out),
            Some(Some(Err(delete))) => out.extend(delete.map(|request| Command::Media {
                request,
                then: None,
            })),
            Some(None) => {
                let cfg = self.config();
                self.with_ctx(id, |ctx| {
                    ctx.media_answered(now, cfg, result.ok(), &mut out);
                    self.take_noted(now, ctx);
                });
            }
            None => {}
        }
        out
    }

    fn media_request_done(
        &self,
        now: Instant,
        id: u64,
        state: &RelayState,
        result: Result<Vec<u8>, MediaError>,
        out: &mut Vec<Command>,
    ) {
        let refused = matches!(result, Err(MediaError::NoPorts | MediaError::Unavailable))
            && !self.config().media_optional;
        let mut c = state.context(self, now, Phase::Request, out, false);
        c.txn = Some(id);
        c.media_asked = true;
        if let Ok(sdp) = result {
            c.edits.body = Some(Bytes::from(sdp));
        }
        if refused && c.msg.method() != Some(Method::Ack) {
            let why = "Service Unavailable (no media relay ports)";
            self.respond(&mut c, 503, why, &[("Retry-After", "5")]);
        } else {
            self.relay(&mut c, state.stateful);
        }
        drop(c);
        self.release_if_unused(id);
    }
}

/// Where the request goes: a party on IPv6 (the binding `lookup` chose was registered over
/// IPv6, or the Request-URI names an IPv6 address), and what it speaks: a browser when that
/// binding came over WebSocket or the Request-URI says `transport=ws`/`wss`, a phone for
/// any other binding or new call; inside a dialog without either, what it spoke so far.
fn next_hop(c: &RouteCtx<'_>) -> crate::media::NextHop {
    use ::relay::Peer;
    if let Some(b) = c.set.binding.as_ref() {
        return crate::media::NextHop {
            ipv6: b
                .source_addr()
                .is_some_and(|(_, a)| a.ip().to_canonical().is_ipv6()),
            peer: match b.source_is_websocket() {
                true => Peer::WebRtc,
                false => Peer::Plain,
            },
        };
    }
    let uri = c.set.ruri.as_deref().or(c.msg.request_uri_str());
    let uri = uri.and_then(|u| sip_message::Uri::parse(u).ok());
    let ip = uri.as_ref().and_then(nat::uri_address);
    let transport = uri.as_ref().and_then(|u| u.as_sip()?.transport());
    let websocket =
        transport.is_some_and(|t| t.eq_ignore_ascii_case("ws") || t.eq_ignore_ascii_case("wss"));
    let in_dialog = c.msg.to().ok().and_then(|t| t.tag()).is_some();
    crate::media::NextHop {
        ipv6: ip.is_some_and(|a| a.ip().to_canonical().is_ipv6()),
        peer: match (websocket, in_dialog) {
            (true, _) => Peer::WebRtc,
            (false, false) => Peer::Plain,
            (false, true) => Peer::AsSender,
        },
    }
}
