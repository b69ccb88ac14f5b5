//! Property tests: generated messages round-trip through parse and write; random bytes and
//! mutations of valid messages never panic.

use bytes::Bytes;
use proptest::prelude::*;
use sip_message::{HeaderName, Message};

/// A generated request, and the text it is written as.
#[derive(Debug, Clone)]
struct Generated {
    text: String,
    method: String,
    user: String,
    host: String,
    branch: String,
    tag: String,
    call_id: String,
    cseq: u32,
    body: String,
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,12}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z][a-z0-9]{0,6}){0,3}",
        (0u8..=255, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

/// Spellings of a header name: canonical, upper, lower, compact when it has one.
fn spelled(name: &'static str, compact: Option<&'static str>) -> impl Strategy<Value = String> {
    let mut forms = vec![name.to_string(), name.to_uppercase(), name.to_lowercase()];
    forms.extend(compact.map(str::to_string));
    proptest::sample::select(forms)
}

/// White space around the colon and, sometimes, a folded line before the value.
fn sep() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![": ", ":", " : ", ":\r\n ", ":\t", ":  \r\n\t "])
        .prop_map(str::to_string)
}

prop_compose! {
    fn request()(
        method in proptest::sample::select(vec!["INVITE", "REGISTER", "OPTIONS", "BYE", "MESSAGE", "FOO-BAR"]),
        user in "[a-z0-9+][a-z0-9.;=%2-]{0,10}".prop_filter("valid escapes", |u| !u.contains('%')),
        host in host(),
        port in proptest::option::of(1u16..),
        branch in "[a-zA-Z0-9]{1,16}",
        tag in token(),
        call_id in "[a-zA-Z0-9.!%*_+`'~()<>:/?{}-]{1,20}(@[a-z0-9.]{1,10})?",
        cseq in any::<u32>(),
        body in "[ -~]{0,40}",
        names in (
            spelled("Via", Some("v")),
            spelled("From", Some("f")),
            spelled("To", Some("t")),
            spelled("Call-ID", Some("i")),
            spelled("CSeq", None),
            spelled("Contact", Some("m")),
            spelled("Content-Length", Some("l")),
            spelled("Max-Forwards", None),
        ),
        seps in proptest::collection::vec(sep(), 8),
        extra in proptest::collection::vec((token(), "[ -~]{0,20}"), 0..5),
    ) -> Generated {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let uri = format!("sip:{user}@{host}{port}");
        let mut text = format!("{method} {uri} SIP/2.0\r\n");
        let lines = [
            (names.0, format!("SIP/2.0/UDP {host}{port};branch=z9hG4bK{branch};rport")),
            (names.1, format!("\"Caller \\\"x\\\"\" <sip:caller@{host}>;tag={tag}")),
            (names.2, format!("<{uri}>")),
            (names.3, call_id.clone()),
            (names.4, format!("{cseq} {method}")),
            (names.5, format!("<{uri}>;q=0.5;expires=60, <sip:{host}>")),
            (names.6, body.len().to_string()),
            (names.7, "70".to_string()),
        ];
        for ((name, value), sep) in lines.iter().zip(&seps) {
            text.push_str(&format!("{name}{sep}{value}\r\n"));
        }
        for (name, value) in &extra {
            text.push_str(&format!("X-{name}: {}\r\n", value.trim()));
        }
        text.push_str("\r\n");
        text.push_str(&body);
        Generated { text, method: method.into(), user, host, branch, tag, call_id, cseq, body }
    }
}

/// What must survive a round trip: start line, header names and unfolded values, body.
fn shape(m: &Message) -> (String, Vec<(HeaderName, String, String)>, Bytes) {
    let headers = m
        .headers()
        .map(|h| {
            (
                h.name,
                h.raw_name.to_ascii_lowercase(),
                h.value_unfolded().into_owned(),
            )
        })
        .collect();
    (m.start_line().to_string(), headers, m.body())
}

/// Reads everything a server might read; must never panic.
fn exercise(m: &Message) {
    let _ = (m.validate(), m.sanity_check());
    let _ = (
        m.method(),
        m.request_uri(),
        m.status(),
        m.reason(),
        m.start_line(),
    );
    let _ = (
        m.from(),
        m.to(),
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
        m.expires(),
        m.content_type(),
    );
    let _ =
        m.vias().count() + m.contacts().count() + m.routes().count() + m.record_routes().count();
    for h in m.headers() {
        let _ = (h.value_unfolded(), h.values().count());
    }
    let _ = m.edit().finish();
}

fn torture_corpus() -> Vec<Vec<u8>> {
    let dir: std::path::PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "../../tests/data/conformance/rfc4475",
    ]
    .iter()
    .collect();
    std::fs::read_dir(dir)
        .expect("test data")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_parse_and_round_trip(g in request()) {
        let m = Message::parse(g.text.clone().into_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {}", g.text)))?;
        m.validate().map_err(|e| TestCaseError::fail(format!("{e}: {}", g.text)))?;
        m.sanity_check().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(m.method().map(|x| x.as_str().to_string()), Some(g.method.clone()));
        let uri = m.request_uri().expect("uri");
        let sip = uri.as_sip().expect("sip uri");
        prop_assert_eq!(sip.user, Some(g.user.as_str()));
        prop_assert_eq!(sip.host_raw, g.host.as_str());
        let via = m.top_via().expect("via");
        prop_assert_eq!(via.branch().map(str::to_string), Some(format!("z9hG4bK{}", g.branch)));
        prop_assert_eq!(via.rport(), Some(None));
        prop_assert_eq!(m.from().expect("from").tag(), Some(g.tag.as_str()));
        let display = m.from().expect("from").display_name().map(|d| d.into_owned());
        prop_assert_eq!(display.as_deref(), Some("Caller \"x\""));
        prop_assert_eq!(m.call_id().expect("call-id"), g.call_id.as_str());
        prop_assert_eq!(m.cseq().expect("cseq").seq, g.cseq);
        prop_assert_eq!(m.contacts().count(), 2);
        prop_assert_eq!(m.body(), Bytes::from(g.body.clone()));

        // parse(write(m)) == m, unedited and and after an edit that is then undone.
        let written = m.edit().finish();
        prop_assert_eq!(written.as_ref(), g.text.as_bytes());
        let again = Message::parse(written).expect("reparse");
        prop_assert_eq!(shape(&again), shape(&m));

        let mut e = m.edit();
        e.push_front(HeaderName::Via, "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
            .set_top_via_param("received", Some("192.0.2.9"));
        let edited = Message::parse(e.finish()).expect("edited parses");
        edited.validate().expect("edited validates");
        prop_assert_eq!(edited.vias().count(), 2);
        let mut e = edited.edit();
        e.remove_first_value(HeaderName::Via);
        let popped = Message::parse(e.finish()).expect("popped parses");
        prop_assert_eq!(popped.top_via().expect("via").received(), "192.0.2.9".parse().ok().map(sip_message::Host::Ipv4));
        prop_assert_eq!(popped.body(), m.body());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = Message::parse(bytes) {
            exercise(&m);
        }
    }

    #[test]
    fn mutated_torture_messages_never_panic(
        pick in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let corpus = torture_corpus();
        let mut bytes = corpus[pick.index(corpus.len())].clone();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok(m) = Message::parse(bytes) {
            exercise(&m);
        }
    }
}

proptest! {
    /// Hosts of digits and dots are IPv4 addresses exactly when the standard library reads
    /// them as one, and the same one.
    #[test]
    fn dotted_quads_read_as_the_standard_library_reads_them(s in "[0-9.]{1,18}") {
        let ours = match sip_message::Host::parse(&s) {
            Ok(sip_message::Host::Ipv4(a)) => Some(a),
            _ => None,
        };
        let std = if s.starts_with(|c: char| c.is_ascii_digit()) { s.parse().ok() } else { None };
        prop_assert_eq!(ours, std);
    }
}

/// A Request-URI of any scheme we read, and a sent-by for a Via.
fn uri_and_sent_by() -> impl Strategy<Value = (String, String)> {
    let host = prop_oneof![
        host(),
        Just("[2001:db8::10]".to_string()),
        Just("[::ffff:192.0.2.1]".to_string()),
    ];
    let port = proptest::option::of(1u16..);
    let uri = (
        prop_oneof![Just("sip"), Just("SIPS")],
        proptest::option::of("[a-zA-Z0-9][a-zA-Z0-9.!*_+~-]{0,12}"),
        proptest::option::of("[a-z0-9]{1,6}"),
        host.clone(),
        port.clone(),
        "(;[a-z]{1,5}(=[a-z0-9]{1,5})?){0,3}",
        proptest::option::of("[a-z]{1,4}=[a-z0-9]{1,4}"),
    )
        .prop_map(|(scheme, user, password, host, port, params, headers)| {
            let userinfo = match (user, password) {
                (Some(u), Some(p)) => format!("{u}:{p}@"),
                (Some(u), None) => format!("{u}@"),
                _ => String::new(),
            };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let headers = headers.map(|h| format!("?{h}")).unwrap_or_default();
            format!("{scheme}:{userinfo}{host}{port}{params}{headers}")
        });
    let uri = prop_oneof![
        4 => uri,
        1 => "\\+[0-9]{1,10}(;phone-context=[a-z]{1,5})?".prop_map(|n| format!("tel:{n}")),
        1 => "[a-z]{1,6}@[a-z]{1,6}".prop_map(|r| format!("mailto:{r}")),
    ];
    let sent_by = (host, port).prop_map(|(h, p)| match p {
        Some(p) => format!("{h}:{p}"),
        None => h,
    });
    (uri, sent_by)
}

proptest! {
    /// The Request-URI and top Via a message keeps from parsing are what parsing their text
    /// again gives.
    #[test]
    fn kept_values_are_the_parsed_ones((uri, sent_by) in uri_and_sent_by(), params in "(;[a-z]{1,5}(=[a-z0-9]{1,5})?){0,3}") {
        let text = format!(
            "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {sent_by}{params} ;branch=z9hG4bK1, SIP/2.0/TCP h\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        let m = Message::parse(text.clone().into_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let again = sip_message::Uri::parse(m.request_uri_str().expect("request")).expect("checked");
        prop_assert_eq!(m.request_uri(), Some(again));
        let first = m.header(HeaderName::Via).expect("via").value.split(',').next().expect("value");
        let via = sip_message::header::Via::parse(first.trim()).map_err(|e| TestCaseError::fail(format!("{e:?}: {text}")))?;
        prop_assert_eq!(m.top_via().expect("via"), via);
        m.validate().map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(m.top_via().expect("via"), via);
    }
}

proptest! {
    /// The formatter-free writers write addresses as `Display` does.
    #[test]
    fn addresses_written_as_display_writes_them(v4 in any::<u32>(), v6 in any::<u128>(), port in any::<u16>(), scope in any::<u32>()) {
        let link = std::net::SocketAddrV6::new(std::net::Ipv6Addr::from(v6), port, 0, scope);
        for addr in [
            std::net::SocketAddr::from((std::net::Ipv4Addr::from(v4), port)),
            std::net::SocketAddr::from((std::net::Ipv6Addr::from(v6), port)),
            std::net::SocketAddr::V6(link),
            std::net::SocketAddr::from((std::net::Ipv4Addr::from(v4).to_ipv6_mapped(), port)),
        ] {
            let mut out = String::from("x");
            sip_message::push_socket_addr(&mut out, addr);
            prop_assert_eq!(out, format!("x{addr}"));
        }
    }
}
