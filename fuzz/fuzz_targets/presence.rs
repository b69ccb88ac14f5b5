//! Any published body: the presence server never panics on it, and what it notifies of a
//! publication it took is a presence document it would take again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use presence::{Config, Notifier, Package, Peer, PublishRequest, SubKey, SubscribeRequest};

fuzz_target!(|data: &[u8]| {
    let mut n = Notifier::new(Config::default(), 1);
    let mut out = Vec::new();
    let watch = |package| SubscribeRequest {
        key: SubKey {
            call_id: "c".into(),
            from_tag: "w".into(),
            package,
            id: String::new(),
        },
        to_tag: None,
        our_tag: "s".into(),
        presentity: "sip:a@x.org".into(),
        presentity_uri: "sip:a@x.org".into(),
        watcher: "sip:a@x.org".into(),
        watcher_uri: "sip:a@x.org".into(),
        peer: Peer::default(),
        cseq: 1,
        expires_s: Some(600),
        registered: true,
    };
    for package in [Package::Presence, Package::MessageSummary] {
        n.subscribe(0, watch(package), &mut out).expect("a subscription");
        let content_type = package.content_type();
        let req = PublishRequest {
            presentity: "sip:a@x.org",
            presentity_uri: "sip:a@x.org",
            package,
            if_match: None,
            expires_s: Some(600),
            body: Some((content_type, data)),
            registered: true,
        };
        out.clear();
        let Ok(_) = n.publish(0, req, &mut out) else { continue };
        // (The NOTIFY of the subscription's start is in flight: answer it.)
        for o in std::mem::take(&mut out) {
            n.answered(1, &o.key, Some(200), &mut out);
        }
        for o in &out {
            let Some((_, body)) = &o.body else { continue };
            if package == Package::Presence {
                let again = PublishRequest { body: Some((content_type, body.as_bytes())), ..req };
                let mut m = Notifier::new(Config::default(), 2);
                assert!(m.publish(0, again, &mut Vec::new()).is_ok(), "{body}");
            }
        }
    }
});
