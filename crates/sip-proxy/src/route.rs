//! Route pre-processing (RFC 3261 §16.4) and the checks of §16.3.

use std::net::SocketAddr;

use sip_message::{HeaderName, Message, Protocol};

use crate::config::ProxyConfig;
use crate::refresh::RefreshedTargets;
use crate::route_key;
use crate::target::is_us;

/// The outcome of Route pre-processing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteEdit {
    /// The top Routes that name us, to remove: the top one, and the next too when it is
    /// ours as well (the two entries of a double Record-Route, RFC 5658 §4).
    pub(crate) pop_routes: usize,
    /// Strict routing: the Request-URI named us, so it becomes the last Route value
    /// (`new_uri`) and that Route field (`remove`) goes.
    pub(crate) new_uri: Option<String>,
    pub(crate) remove: Option<usize>,
    /// The next hop after pre-processing is a Route (not the Request-URI).
    pub(crate) next_is_route: bool,
    /// Remove every Route: a Route preloaded on an initial request for one of our domains is
    /// not followed (we would relay to wherever a client asks); the location service decides.
    pub(crate) drop_routes: bool,
    /// The entry of ours taken off (or the strict router's Request-URI) carries this key,
    /// ours for this dialog: a Route set we put there ([`crate::route_key`]). Checked for
    /// in-dialog requests only.
    pub(crate) key: Option<u64>,
    /// That entry marks a dialog whose media goes through the relay.
    pub(crate) media: bool,
    /// The client's connection the last entry taken off names ([`crate::flow`]), for an
    /// in-dialog request with our key: the next hop, unless the request came over it.
    /// (Boxed: the edits are copied along with every request, most have none.)
    pub(crate) flow: Option<Box<(Protocol, SocketAddr)>>,
}

/// Applies §16.4 to a request that came from `arrived`; `to_tag`: an in-dialog request's To
/// tag, when the entry of ours it takes off must carry our key (for `key`), or lead to a
/// target `refreshed` holds.
pub(crate) fn preprocess(
    cfg: &ProxyConfig,
    refreshed: &RefreshedTargets,
    msg: &Message,
    to_tag: Option<&str>,
    arrived: SocketAddr,
) -> RouteEdit {
    let mut edit = RouteEdit::default();
    let routes: Vec<_> = msg.routes().filter_map(Result::ok).collect();
    // A strict router put our Record-Route URI (no user part) in the Request-URI.
    let ruri = msg.request_uri();
    let uri_is_us = ruri
        .as_ref()
        .is_some_and(|u| is_us(cfg, u) && u.as_sip().is_some_and(|s| s.user.is_none()));
    if uri_is_us && !routes.is_empty() {
        // The previous hop was a strict router: the last Route is the real Request-URI.
        let last = msg.headers_named(HeaderName::Route).last();
        if let (Some(h), Some(r)) = (last, routes.last()) {
            if h.values().count() == 1 {
                edit.new_uri = Some(r.uri.as_str().to_owned());
                edit.remove = Some(h.index);
            }
        }
        edit.media = ruri.as_ref().is_some_and(relays_media);
        // The remote target is the last Route here.
        let target = routes.last().and_then(|r| route_key::Target::of(&r.uri));
        edit.key = match (to_tag, &ruri, target) {
            (Some(t), Some(u), Some(target)) => {
                // Between us and the target: every Route but the last.
                let mut rest = route_uris(msg, 0);
                rest.pop();
                keyed(cfg, refreshed, msg, (u, edit.media), (t, &target, &rest))
            }
            _ => None,
        };
        edit.next_is_route = routes.len() > 1;
        return edit;
    }
    if routes.first().is_some_and(|r| is_us(cfg, &r.uri)) {
        // Two entries of one Record-Route carry one key; one of a spiral (the request came
        // through us twice) has another, and is taken off on the second pass.
        let double = routes.get(1).is_some_and(|r| {
            let first = route_key_of(&routes[0].uri);
            is_us(cfg, &r.uri) && route_key_of(&r.uri).is_none_or(|k| Some(k) == first)
        });
        edit.pop_routes = if double { 2 } else { 1 };
        edit.media = relays_media(&routes[0].uri);
        let target = ruri.as_ref().and_then(route_key::Target::of);
        edit.key = match (to_tag, target) {
            (Some(t), Some(target)) => {
                let rest = route_uris(msg, edit.pop_routes);
                let ours = (&routes[0].uri, edit.media);
                keyed(cfg, refreshed, msg, ours, (t, &target, &rest))
            }
            _ => None,
        };
        // Of a double entry, the last faces where the request goes; it is followed only
        // in a dialog of ours (its key held).
        if edit.key.is_some() {
            edit.flow = flow_of(cfg, &routes[edit.pop_routes - 1].uri, msg)
                .filter(|f| f.1 != arrived)
                .map(Box::new);
        }
        edit.next_is_route = routes.len() > edit.pop_routes;
    } else {
        edit.next_is_route = !routes.is_empty();
    }
    edit
}

/// True when a URI of ours marks a dialog whose media goes through the relay.
fn relays_media(uri: &sip_message::Uri<'_>) -> bool {
    uri.as_sip()
        .is_some_and(|s| s.params.get(crate::relay::MEDIA_PARAM).is_some())
}

/// The flow an entry of ours names, when its token holds for the dialog of `msg`.
fn flow_of(
    cfg: &ProxyConfig,
    uri: &sip_message::Uri<'_>,
    msg: &Message,
) -> Option<(Protocol, SocketAddr)> {
    // Only a server with connection listeners makes flow tokens.
    if !cfg.advertised.iter().any(|(p, _)| p.is_reliable()) {
        return None;
    }
    let sip = uri.as_sip()?;
    let token = sip.params.get(crate::flow::PARAM).flatten()?;
    // A SIPS entry of ours says no transport (or TCP): it is TLS.
    let protocol = match (sip.secure, sip.transport()) {
        (true, None) => Protocol::Tls,
        (true, Some(t)) if t.eq_ignore_ascii_case("tcp") => Protocol::Tls,
        (_, t) => Protocol::from_token(t?)?,
    };
    let protocol = Some(protocol).filter(|p| p.is_reliable())?;
    let call_id = msg.call_id().ok()?;
    let addr = crate::flow::verify(&cfg.route_secret, protocol, token, call_id)?;
    Some((protocol, addr))
}

/// The `rk` parameter of a URI of ours, if it has one.
fn route_key_of<'a>(uri: &sip_message::Uri<'a>) -> Option<Option<&'a str>> {
    uri.as_sip().and_then(|s| s.params.get(route_key::PARAM))
}

/// The URIs of the Route values of `msg` after the first `skip`, as the key covers them.
fn route_uris(msg: &Message, skip: usize) -> Vec<&str> {
    msg.headers_named(HeaderName::Route)
        .flat_map(|h| h.values())
        .skip(skip)
        .map(route_key::route_uri)
        .collect()
}

/// The key `uri` (one of ours, marked `media` or not) carries, when it is ours for the
/// dialog of `msg` and its requests with To tag `to_tag` to `target` through `rest` (or to
/// one refreshed since).
fn keyed(
    cfg: &ProxyConfig,
    refreshed: &RefreshedTargets,
    msg: &Message,
    (uri, media): (&sip_message::Uri<'_>, bool),
    (to_tag, target, rest): (&str, &route_key::Target, &[&str]),
) -> Option<u64> {
    let secret = &cfg.route_secret;
    let k = uri.as_sip()?.params.get(route_key::PARAM).flatten()?;
    route_key::verify(secret, refreshed, msg, (k, media), (to_tag, target, rest))
}
