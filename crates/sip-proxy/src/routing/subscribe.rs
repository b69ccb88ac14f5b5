//! The presence server in the routing language: `handle_subscribe()` and
//! `handle_publish()` answer a SUBSCRIBE or PUBLISH for one of our users themselves.

use presence::{Package, Peer, PublishRequest, Refused, SubKey, SubscribeRequest};
use script::{Function, Registry, RouteMask, Value};
use sip_message::{HeaderName, Message, Method, Uri};

use super::{ProxyEnv, RouteCtx};
use crate::dialog_read::{contact_of, leg};

/// The packages we serve, for Allow-Events.
const ALLOW_EVENTS: &str = "presence, presence.winfo, dialog, message-summary";

/// `handle_subscribe()`: answers a SUBSCRIBE to a user of our domains (its To), new or
/// refreshing, and sends the NOTIFYs that follow. 1 when it was taken, -1 when refused
/// (answered with why), -2 for another request or an event the server does not serve
/// (unanswered: the user's device may).
fn handle_subscribe(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if c.msg.method() != Some(Method::Subscribe) || event(c.msg).is_err() {
        return -2;
    }
    let req = match read_subscribe(c) {
        Ok(req) => req,
        Err(refused) => return refuse(c, refused),
    };
    let (now, core) = (c.now, c.core);
    let presentity = req.presentity.clone();
    let mut notifies = Vec::new();
    let taken = core
        .presence
        .of(&presentity)
        .subscribe(core.unix_ms(now), req, &mut notifies);
    match taken {
        Ok(expires) => {
            // From now on the calls' progress is noted: users' calls are watched.
            core.dialogs.note_progress();
            let contact = our_contact(c);
            let expires = expires.to_string();
            core.respond(
                c,
                200,
                "OK",
                &[("Expires", &expires), ("Contact", &contact)],
            );
            let commands = core.send_notifies(now, notifies);
            c.out.extend(commands);
            1
        }
        Err(refused) => refuse(c, refused),
    }
}

/// A SUBSCRIBE as the notifier reads it, or why it cannot be taken.
fn read_subscribe(c: &RouteCtx<'_>) -> Result<SubscribeRequest, Refused> {
    let msg = c.msg;
    let (package, id) = event(msg)?;
    let (presentity, presentity_uri) = ours(c, msg.to().ok().map(|t| t.uri))?;
    let from = msg.from().map_err(|_| bad("bad From"))?;
    let from_tag = from.tag().ok_or(bad("no From tag"))?.to_owned();
    let watcher = presence_aor(&from.uri).ok_or(bad("bad From"))?;
    let call_id = msg.call_id().map_err(|_| bad("bad Call-ID"))?.to_owned();
    let cseq = msg.cseq().map_err(|_| bad("bad CSeq"))?.seq;
    let expires = msg.expires().map_err(|_| bad("bad Expires"))?;
    let routes: Vec<&str> = msg
        .headers_named(HeaderName::RecordRoute)
        .flat_map(|h| h.values())
        .collect();
    let hop = match c.src.protocol.is_reliable() {
        true => crate::core::upstream_of(msg, c.src),
        false => c.src,
    };
    let reach = leg(contact_of(msg), &routes, hop, 0);
    if reach.contact.is_empty() {
        return Err(bad("no usable Contact"));
    }
    Ok(SubscribeRequest {
        key: SubKey {
            call_id,
            from_tag,
            package,
            id,
        },
        to_tag: c.to_tag().map(str::to_owned),
        our_tag: crate::reply::to_tag(msg),
        registered: c.core.registered(c.now, &presentity),
        presentity,
        presentity_uri,
        watcher,
        watcher_uri: from.uri.as_str().to_owned(),
        peer: Peer {
            contact: reach.contact,
            route: reach.route,
            hop: reach.hop,
        },
        cseq,
        expires_s: expires,
    })
}

/// `handle_publish()`: answers a PUBLISH of a user of our domains (its Request-URI), by
/// that user or a trusted peer (a voicemail system), and sends the NOTIFYs that follow.
/// 1 when taken, -1 when refused (answered with why), -2 for another request.
fn handle_publish(c: &mut RouteCtx<'_>, _: &[Value<'_>]) -> i64 {
    if c.msg.method() != Some(Method::Publish) {
        return -2;
    }
    let msg = c.msg;
    // A PUBLISH is no request inside a dialog (RFC 3903 §4): one with a To tag would pass
    // a script's authentication of initial requests.
    if c.to_tag().is_some() {
        return refuse(c, bad("Bad Request (a PUBLISH has no To tag)"));
    }
    let read = event(msg).and_then(|(package, _)| {
        let (presentity, uri) = ours(c, msg.request_uri())?;
        let publisher = msg
            .from()
            .ok()
            .and_then(|f| presence_aor(&f.uri))
            .ok_or(bad("bad From"))?;
        let trusted = !c.src.protocol.is_websocket() && c.core.config().is_trusted(c.src.addr.ip());
        if publisher != presentity && !trusted {
            return Err(Refused {
                code: 403,
                reason: "Forbidden (not your presence)",
                min_expires: None,
            });
        }
        Ok((package, presentity, uri))
    });
    let (package, presentity, uri) = match read {
        Ok(r) => r,
        Err(refused) => return refuse(c, refused),
    };
    let Ok(expires) = msg.expires() else {
        return refuse(c, bad("bad Expires"));
    };
    let body = msg.body();
    let content_type = msg.content_type().ok().flatten();
    let ctype = content_type.map(|t| format!("{}/{}", t.kind, t.subtype));
    let if_match = msg
        .header_str("SIP-If-Match")
        .map(|h| h.value.trim().to_owned());
    let (now, core) = (c.now, c.core);
    let registered = core.registered(now, &presentity);
    let req = PublishRequest {
        presentity: &presentity,
        presentity_uri: &uri,
        package,
        if_match: if_match.as_deref(),
        expires_s: expires,
        body: (!body.is_empty()).then(|| (ctype.as_deref().unwrap_or(""), &body[..])),
        registered,
    };
    let mut notifies = Vec::new();
    let taken = core
        .presence
        .of(&presentity)
        .publish(core.unix_ms(now), req, &mut notifies);
    match taken {
        Ok(p) => {
            let expires = p.expires_s.to_string();
            core.respond(
                c,
                200,
                "OK",
                &[("SIP-ETag", &p.etag), ("Expires", &expires)],
            );
            let commands = core.send_notifies(now, notifies);
            c.out.extend(commands);
            1
        }
        Err(refused) => refuse(c, refused),
    }
}

/// The package and `id` of a request's Event header.
fn event(msg: &Message) -> Result<(Package, String), Refused> {
    let bad_event = Refused {
        code: 489,
        reason: "Bad Event",
        min_expires: None,
    };
    let value = msg.header(HeaderName::Event).ok_or(bad_event)?.value;
    let mut parts = value.split(';');
    let package = Package::from_event(parts.next().unwrap_or_default()).ok_or(bad_event)?;
    let id = parts
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("id"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    if id.len() > 64 || id.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(bad("bad Event id"));
    }
    Ok((package, id))
}

/// The address-of-record and URI of one of our users named by `uri`.
fn ours(c: &RouteCtx<'_>, uri: Option<Uri<'_>>) -> Result<(String, String), Refused> {
    let uri = uri.ok_or(bad("bad URI"))?;
    let aor = presence_aor(&uri).ok_or(Refused {
        code: 404,
        reason: "Not Found",
        min_expires: None,
    })?;
    if !c.core.is_user(&aor) {
        return Err(Refused {
            code: 404,
            reason: "Not Found",
            min_expires: None,
        });
    }
    Ok((aor.clone(), aor))
}

/// The address-of-record a presence rule, a subscription or a publication is kept under:
/// `sip:user@domain` whatever the scheme (`sips:` names the same user, and must not pass a
/// rule made for `sip:`).
pub(crate) fn presence_aor(uri: &Uri<'_>) -> Option<String> {
    registrar::aor_of(uri).map(presence::key_of)
}

fn bad(reason: &'static str) -> Refused {
    Refused {
        code: 400,
        reason,
        min_expires: None,
    }
}

/// Answers with why the request was refused; -1.
fn refuse(c: &mut RouteCtx<'_>, r: Refused) -> i64 {
    let min = r.min_expires.map(|m| m.to_string());
    let mut extra: Vec<(&str, &str)> = Vec::new();
    if let Some(min) = &min {
        extra.push(("Min-Expires", min));
    }
    if r.code == 489 {
        extra.push(("Allow-Events", ALLOW_EVENTS));
    }
    c.core.respond(c, r.code, r.reason, &extra);
    -1
}

/// Our Contact for the dialog of a subscription: the interface the request came in on.
fn our_contact(c: &RouteCtx<'_>) -> String {
    let protocol = c.src.protocol;
    let local = c
        .core
        .config()
        .inbound_interface(protocol, c.src.addr, c.local)
        .unwrap_or(c.local);
    format!(
        "<sip:{};transport={}>",
        crate::relay::sock_text(local),
        protocol.via_token().to_ascii_lowercase()
    )
}

pub(super) fn register(r: &mut Registry<ProxyEnv>) {
    r.function(Function {
        name: "handle_subscribe",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: handle_subscribe,
    });
    r.function(Function {
        name: "handle_publish",
        args: &[],
        required: 0,
        routes: RouteMask::REQUEST,
        call: handle_publish,
    });
}

#[cfg(test)]
mod tests {
    use sip_message::Uri;

    #[test]
    fn sips_names_the_same_user_as_sip() {
        let aor = |u: &str| super::presence_aor(&Uri::parse(u).unwrap());
        assert_eq!(
            aor("sips:Eve@Example.COM:5061;transport=tls"),
            Some("sip:Eve@example.com".into())
        );
        assert_eq!(
            aor("sip:eve@example.com"),
            Some("sip:eve@example.com".into())
        );
        assert_eq!(aor("sip:example.com"), None);
    }
}
