//! Digest authentication driven by a script, in memory.

use std::sync::Arc;
use std::time::Instant;

use auth::{expected_response, Algorithm, Credentials, Secrets, Subscribers};
use sip_message::header::AuthHeader;
use sip_message::{HeaderName, Message};

use crate::tests::{msg, sent, udp, with_script, CALLER};
use crate::Core;

const SCRIPT: &str = r#"
request_route {
    if (is_method("REGISTER")) {
        switch (www_authorize("")) {
            case 1:
                consume_credentials();
                save("location");
                exit;
            case -1:
            case -3:
                auth_challenge("");
                exit;
            default:
                sl_send_reply(403, "Forbidden");
                exit;
        }
    }
    if (has_subscribers($fu) && !proxy_authorize("")) {
        auth_challenge("");
        exit;
    }
    sl_send_reply(200, "Hello " + $au);
}
"#;

fn core() -> Core {
    let core = with_script(SCRIPT);
    let mut subs = Subscribers::new();
    for (user, domain, password) in [
        ("alice", "example.com", "wonderland"),
        ("alice", "example.net", "looking-glass"),
    ] {
        subs.insert(user, domain, Secrets::from_password(user, domain, password));
    }
    core.set_subscribers(Arc::new(subs));
    // As `ferrosip user add` does: a subscriber's domain is hosted.
    let hosted = ["example.net".to_owned()].into_iter().collect();
    core.config().hosted.replace(hosted);
    core
}

fn register(user: &str, domain: &str, branch: &str, authorization: Option<&str>) -> Message {
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\n"));
    msg(&format!(
        "REGISTER sip:{domain} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{branch}\n\
From: <sip:{user}@{domain}>;tag=r\nTo: <sip:{user}@{domain}>\nCall-ID: reg-{user}-{domain}\nCSeq: 1 REGISTER\n\
Contact: <sip:{user}@192.0.2.10:5060>\n{auth}Content-Length: 0\n\n"
    ))
}

/// The one response the core sent.
fn answer(core: &Core, m: Message) -> Message {
    let mut out = sent(crate::tests::handle(core, Instant::now(), m, udp(CALLER)));
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0).1
}

/// What a client answers to the challenge of algorithm `alg` in `resp`.
fn credentials(
    resp: &Message,
    alg: Algorithm,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let name = match resp.status() {
        Some(401) => HeaderName::WwwAuthenticate,
        _ => HeaderName::ProxyAuthenticate,
    };
    let ch = resp
        .auth_headers(name)
        .filter_map(Result::ok)
        .find(|h| h.get("algorithm").as_deref() == Some(alg.token()))
        .expect("a challenge for the algorithm");
    let (realm, nonce) = (ch.get("realm").unwrap(), ch.get("nonce").unwrap());
    let text = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"0\", algorithm={}, qop=auth, nc={nc:08x}, cnonce=\"abc\"",
        alg.token()
    );
    let c = Credentials::from_header(&AuthHeader::parse(&text).unwrap()).unwrap();
    let ha1 = auth::ha1(alg, user, &realm, password);
    text.replace(
        "response=\"0\"",
        &format!("response=\"{}\"", expected_response(&ha1, method, &c)),
    )
}

#[test]
fn register_is_challenged_then_accepted_with_either_algorithm() {
    let core = core();
    let challenge = answer(&core, register("alice", "example.com", "a1", None));
    assert_eq!(challenge.status(), Some(401));
    let offered: Vec<String> = challenge
        .auth_headers(HeaderName::WwwAuthenticate)
        .map(|h| h.unwrap().get("algorithm").unwrap().into_owned())
        .collect();
    assert_eq!(offered, ["SHA-256", "MD5"]);
    for (i, alg) in Algorithm::ALL.into_iter().enumerate() {
        let a = credentials(
            &challenge,
            alg,
            "alice",
            "wonderland",
            "REGISTER",
            "sip:example.com",
            1 + i as u32,
        );
        let ok = sent(crate::tests::handle(
            &core,
            Instant::now(),
            register("alice", "example.com", &format!("b{i}"), Some(&a)),
            udp(CALLER),
        ));
        assert_eq!(ok[0].1.status(), Some(200), "{alg:?}");
    }
}

#[test]
fn wrong_password_unknown_user_and_replay_are_refused_alike() {
    let core = core();
    let challenge = answer(&core, register("alice", "example.com", "c1", None));
    let wrong = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        "guess",
        "REGISTER",
        "sip:example.com",
        1,
    );
    let unknown = credentials(
        &challenge,
        Algorithm::Sha256,
        "mallory",
        "guess",
        "REGISTER",
        "sip:example.com",
        2,
    );
    let (w, u) = (
        answer(&core, register("alice", "example.com", "c2", Some(&wrong))),
        answer(
            &core,
            register("mallory", "example.com", "c3", Some(&unknown)),
        ),
    );
    assert_eq!((w.status(), u.status()), (Some(403), Some(403)));
    assert_eq!(w.reason(), u.reason());
    let good = credentials(
        &challenge,
        Algorithm::Md5,
        "alice",
        "wonderland",
        "REGISTER",
        "sip:example.com",
        3,
    );
    let first = sent(crate::tests::handle(
        &core,
        Instant::now(),
        register("alice", "example.com", "c4", Some(&good)),
        udp(CALLER),
    ));
    assert_eq!(first[0].1.status(), Some(200));
    let replay = answer(&core, register("alice", "example.com", "c5", Some(&good)));
    assert_eq!(replay.status(), Some(403), "the same nonce count again");
    assert_eq!(core.auth_failures(), 3, "wrong, unknown and replayed");
}

#[test]
fn credentials_for_another_request_uri_are_refused() {
    let core = core();
    let challenge = answer(&core, register("alice", "example.com", "u1", None));
    let elsewhere = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        "wonderland",
        "REGISTER",
        "sip:example.net",
        1,
    );
    assert_eq!(
        answer(
            &core,
            register("alice", "example.com", "u2", Some(&elsewhere))
        )
        .status(),
        Some(403)
    );
}

#[test]
fn the_same_user_name_in_two_domains_has_two_passwords() {
    let core = core();
    let challenge = answer(&core, register("alice", "example.net", "d1", None));
    let com_password = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        "wonderland",
        "REGISTER",
        "sip:example.net",
        1,
    );
    assert_eq!(
        answer(
            &core,
            register("alice", "example.net", "d2", Some(&com_password))
        )
        .status(),
        Some(403)
    );
    let net_password = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        "looking-glass",
        "REGISTER",
        "sip:example.net",
        2,
    );
    let ok = sent(crate::tests::handle(
        &core,
        Instant::now(),
        register("alice", "example.net", "d3", Some(&net_password)),
        udp(CALLER),
    ));
    assert_eq!(ok[0].1.status(), Some(200));
}

#[test]
fn other_requests_get_407_and_pass_with_proxy_authorization() {
    let core = core();
    let options = |branch: &str, auth: &str| {
        msg(&format!(
            "OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{branch}\n\
From: <sip:alice@example.com>;tag=o\nTo: <sip:bob@example.com>\nCall-ID: opt-{branch}\nCSeq: 1 OPTIONS\n\
{auth}Content-Length: 0\n\n"
        ))
    };
    let challenge = answer(&core, options("e1", ""));
    assert_eq!(challenge.status(), Some(407));
    assert_eq!(
        challenge
            .auth_headers(HeaderName::ProxyAuthenticate)
            .count(),
        2
    );
    let a = credentials(
        &challenge,
        Algorithm::Sha256,
        "alice",
        "wonderland",
        "OPTIONS",
        "sip:bob@example.com",
        1,
    );
    let ok = answer(&core, options("e2", &format!("Proxy-Authorization: {a}\n")));
    assert_eq!((ok.status(), ok.reason()), (Some(200), Some("Hello alice")));
    // A caller from a domain without subscribers is not asked.
    let open = msg("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKe3\n\
From: <sip:carol@example.org>;tag=o\nTo: <sip:bob@example.com>\nCall-ID: opt-e3\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    assert_eq!(answer(&core, open).status(), Some(200));
}

#[test]
fn the_default_script_lets_trusted_peers_in_and_challenges_the_others() {
    let cfg = crate::ProxyConfig {
        trusted: vec!["192.0.2.0/28".parse().unwrap()],
        ..crate::tests::config()
    };
    let core = Core::new(cfg, Arc::new(registrar::Location::new()));
    let mut subs = Subscribers::new();
    subs.insert(
        "alice",
        "example.com",
        Secrets::from_password("alice", "example.com", "w"),
    );
    core.set_subscribers(Arc::new(subs));
    let options = |branch: &str| {
        msg(&format!(
            "OPTIONS sip:{branch}@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{branch}\n\
From: <sip:alice@example.com>;tag=o\nTo: <sip:example.com>\nCall-ID: t-{branch}\nCSeq: 1 OPTIONS\n\
Content-Length: 0\n\n"
        ))
    };
    let from = |src: &str, branch: &str| {
        sent(crate::tests::handle(
            &core,
            Instant::now(),
            options(branch),
            udp(src),
        ))[0]
            .1
            .status()
    };
    assert_eq!(
        from("192.0.2.10:5060", "t1"),
        Some(404),
        "a trusted gateway: looked up, not challenged"
    );
    assert_eq!(from("192.0.2.99:5060", "t2"), Some(407), "anyone else");
    // A browser from the trusted network is a user all the same.
    let ws = crate::Destination::flow(
        sip_message::Protocol::Ws,
        "192.0.2.10:51000".parse().unwrap(),
    );
    let out = sent(crate::tests::handle(
        &core,
        Instant::now(),
        options("t3"),
        ws,
    ));
    assert_eq!(out[0].1.status(), Some(407), "over WebSocket");
    let keepalive = msg("OPTIONS sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKka\n\
From: <sip:alice@example.com>;tag=o\nTo: <sip:example.com>\nCall-ID: ka\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let out = sent(crate::tests::handle(
        &core,
        Instant::now(),
        keepalive,
        udp("192.0.2.99:5060"),
    ));
    assert_eq!(
        out[0].1.status(),
        Some(200),
        "a keep-alive for the server itself"
    );
}

#[test]
fn domains_are_open_until_the_first_subscriber() {
    let core = crate::tests::with_script("request_route { exit; }");
    core.config()
        .hosted
        .replace(["example.org".to_owned()].into());
    assert_eq!(
        core.open_domains(),
        ["192.0.2.1", "example.com", "example.org"]
    );
    let mut subs = Subscribers::new();
    subs.insert(
        "alice",
        "Example.com",
        Secrets::from_password("alice", "example.com", "x"),
    );
    core.set_subscribers(Arc::new(subs));
    assert!(core.open_domains().is_empty());
}

/// Once the server has subscribers, a domain of its own without any takes no registration:
/// a binding anyone could make there would lead calls for it anywhere.
#[test]
fn the_default_script_refuses_registrations_in_domains_without_subscribers() {
    let core = Core::new(crate::tests::config(), Arc::new(registrar::Location::new()));
    assert_eq!(
        answer(&core, register("eve", "192.0.2.1", "o1", None)).status(),
        Some(200)
    );
    let mut subs = Subscribers::new();
    let secrets = Secrets::from_password("alice", "example.com", "wonderland");
    subs.insert("alice", "example.com", secrets);
    core.set_subscribers(Arc::new(subs));
    let refused = answer(&core, register("eve", "192.0.2.1", "o2", None));
    assert_eq!(refused.status(), Some(403));
    assert_eq!(
        answer(&core, register("alice", "example.com", "o3", None)).status(),
        Some(401)
    );
}

#[test]
fn the_default_script_answers_400_to_credentials_for_another_uri_and_counts_no_failure() {
    let core = Core::new(crate::tests::config(), Arc::new(registrar::Location::new()));
    let mut subs = Subscribers::new();
    let secrets = Secrets::from_password("alice", "example.com", "wonderland");
    subs.insert("alice", "example.com", secrets);
    core.set_subscribers(Arc::new(subs));
    let challenge = answer(&core, register("alice", "example.com", "d1", None));
    assert_eq!(challenge.status(), Some(401));
    let creds = |uri: &str, nc: u32| {
        let alg = Algorithm::Md5;
        credentials(&challenge, alg, "alice", "wonderland", "REGISTER", uri, nc)
    };
    let elsewhere = creds("sip:example.net", 1);
    let refused = answer(
        &core,
        register("alice", "example.com", "d2", Some(&elsewhere)),
    );
    assert_eq!(
        refused.status(),
        Some(400),
        "RFC 2617 §3.2.2.5, not another challenge"
    );
    assert_eq!(
        core.auth_failures(),
        0,
        "a client's mistake, not a wrong password"
    );
    let right = creds("sip:example.com", 2);
    let out = crate::tests::written(
        &core,
        Instant::now(),
        core.handle_message(
            Instant::now(),
            register("alice", "example.com", "d3", Some(&right)),
            udp(CALLER),
        ),
        true,
    );
    assert_eq!(sent(out)[0].1.status(), Some(200));
}

#[test]
fn a_challenged_register_keeps_no_transaction_and_its_retransmission_is_challenged_again() {
    let core = core();
    let first = answer(&core, register("alice", "example.com", "x1", None));
    assert_eq!(first.status(), Some(401));
    // No context stays for timer J: memory does not grow with the rate of challenges.
    assert_eq!(core.active_transactions(), 0);
    let again = answer(&core, register("alice", "example.com", "x1", None));
    assert_eq!(again.status(), Some(401));
    assert_eq!(core.active_transactions(), 0);
    // A 401 to another request (an INVITE) keeps its transaction, for the ACK.
    let invite = msg(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKi1\n\
From: <sip:alice@example.com>;tag=a\nTo: <sip:bob@example.com>\nCall-ID: inv-1\nCSeq: 1 INVITE\n\
Contact: <sip:alice@192.0.2.10:5060>\nContent-Length: 0\n\n",
    );
    assert_eq!(answer(&core, invite).status(), Some(407));
    assert_eq!(core.active_transactions(), 1);
}

#[test]
fn a_register_relayed_to_another_registrar_keeps_its_transaction() {
    let core = crate::tests::with_script("request_route { t_relay(); }");
    let req = msg(
        "REGISTER sip:192.0.2.99 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKr1\n\
From: <sip:alice@192.0.2.99>;tag=r\nTo: <sip:alice@192.0.2.99>\nCall-ID: reg-relayed\nCSeq: 1 REGISTER\n\
Contact: <sip:alice@192.0.2.10:5060>\nContent-Length: 0\n\n",
    );
    let out = sent(crate::tests::handle(
        &core,
        Instant::now(),
        req,
        udp(CALLER),
    ));
    assert_eq!(out.len(), 1, "relayed: {out:?}");
    assert!(out[0].1.is_request());
    assert_eq!(
        core.active_transactions(),
        1,
        "its branch waits for the answer"
    );
}
