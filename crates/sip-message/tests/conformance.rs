//! RFC 4475 and RFC 5118 torture messages, classified as `tests/data/conformance/EXPECTED.md`
//! (copied from the RFCs) says.

use std::path::PathBuf;

use sip_message::{ErrorKind, HeaderName, Message};

/// Reads a file of the project's conformance test data.
fn data(path: &str) -> Vec<u8> {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "../../tests/data/conformance",
        path,
    ]
    .iter()
    .collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `(file, class)` rows of `classes.txt`.
fn classes() -> Vec<(String, String)> {
    String::from_utf8(data("classes.txt"))
        .expect("UTF-8")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (f, c) = l.split_once(' ').expect("file and class");
            (f.to_owned(), c.to_owned())
        })
        .collect()
}

/// Parses, validates and touches every typed accessor, as a server would.
fn classify(bytes: Vec<u8>) -> Result<Result<(), ErrorKind>, ErrorKind> {
    let m = Message::parse(bytes).map_err(|e| e.kind)?;
    m.validate().map_err(|e| e.kind)?;
    // Every accessor must work on a validated message.
    let _ = (
        m.method(),
        m.request_uri(),
        m.status(),
        m.reason(),
        m.body(),
    );
    // What the message kept from parsing is what parsing the text again gives.
    let again = m
        .request_uri_str()
        .map(|u| sip_message::Uri::parse(u).expect("checked"));
    assert_eq!(m.request_uri(), again);
    let top = m.vias().next().expect("a Via").map_err(|e| e.kind);
    assert_eq!(m.top_via().map_err(|e| e.kind), top);
    for v in m.vias() {
        v.map_err(|e| e.kind)?;
    }
    for c in m.contacts() {
        c.map_err(|e| e.kind)?;
    }
    Ok(m.sanity_check().map_err(|e| e.kind))
}

#[test]
fn torture_messages_are_classified_as_expected() {
    let table = classes();
    for dir in ["rfc4475", "rfc5118"] {
        let on_disk = std::fs::read_dir(
            [
                env!("CARGO_MANIFEST_DIR"),
                "../../tests/data/conformance",
                dir,
            ]
            .iter()
            .collect::<PathBuf>(),
        )
        .expect("test data")
        .count();
        let listed = table.iter().filter(|(f, _)| f.starts_with(dir)).count();
        assert_eq!(on_disk, listed, "every file in {dir} is classified");
    }
    for (file, class) in &table {
        let got = classify(data(file));
        let ok = match class.as_str() {
            "valid" => got == Ok(Ok(())),
            "invalid" => got.is_err(),
            "either" => true,
            "sanity400" => matches!(got, Ok(Err(_))),
            other => panic!("unknown class {other}"),
        };
        assert!(ok, "{file}: expected {class}, got {got:?}");
    }
}

#[test]
fn details_of_valid_messages() {
    let m = Message::parse(data("rfc4475/wsinv.dat")).unwrap();
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.cseq().unwrap().seq, 9);
    assert_eq!(m.vias().count(), 3);
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(
        m.header_str("NewFangledHeader").unwrap().value_unfolded(),
        "newfangled value continued newfangled value"
    );
    assert_eq!(m.body().len(), 150);

    let m = Message::parse(data("rfc4475/dblreq.dat")).unwrap();
    assert_eq!(m.body().len(), 0);
    assert!(m.trailing_len() > 0);

    let m = Message::parse(data("rfc4475/esc02.dat")).unwrap();
    assert_eq!(m.method().unwrap().as_str(), "RE%47IST%45R");
    assert_eq!(m.contacts().count(), 2);
    assert!(m.header_str("C%6Fntact").is_some());

    let m = Message::parse(data("rfc4475/longreq.dat")).unwrap();
    assert_eq!(m.vias().count(), 34);

    let m = Message::parse(data("rfc4475/inv2543.dat")).unwrap();
    assert_eq!(m.content_length(), None);
    assert!(m.body().starts_with(b"v=0"));

    let m = Message::parse(data("rfc5118/port-ambiguous")).unwrap();
    let uri = m.request_uri().unwrap();
    assert_eq!(uri.as_sip().unwrap().port, None);
    let m = Message::parse(data("rfc5118/port-unambiguous")).unwrap();
    assert_eq!(m.request_uri().unwrap().as_sip().unwrap().port, Some(5070));
}

#[test]
fn reasons_for_invalid_messages() {
    let kind = |f: &str| classify(data(f)).unwrap_err();
    assert_eq!(kind("rfc4475/badvers.dat"), ErrorKind::Version);
    assert_eq!(kind("rfc4475/mismatch01.dat"), ErrorKind::CSeqMismatch);
    assert_eq!(kind("rfc4475/clerr.dat"), ErrorKind::BodyTruncated);
    assert!(matches!(
        kind("rfc4475/baddate.dat"),
        ErrorKind::Header {
            name: HeaderName::Date,
            ..
        }
    ));
    assert!(matches!(
        kind("rfc4475/quotbal.dat"),
        ErrorKind::Header {
            name: HeaderName::To,
            ..
        }
    ));
    assert!(matches!(
        kind("rfc4475/ncl.dat"),
        ErrorKind::Header {
            name: HeaderName::ContentLength,
            ..
        }
    ));
    assert_eq!(
        classify(data("rfc4475/insuf.dat")).unwrap(),
        Err(ErrorKind::MissingHeader(HeaderName::To))
    );
    assert_eq!(
        classify(data("rfc4475/mcl01.dat")).unwrap(),
        Err(ErrorKind::DuplicateHeader(HeaderName::ContentLength))
    );
}

#[test]
fn limits_are_enforced_with_clear_errors() {
    use sip_message::Limits;
    let head = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n";
    let long = format!("{head}X-Long: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(
        Message::parse(long.into_bytes()).unwrap_err().kind,
        ErrorKind::LineTooLong
    );
    let many = format!("{head}{}\r\n", "X-H: 1\r\n".repeat(300));
    assert_eq!(
        Message::parse(many.into_bytes()).unwrap_err().kind,
        ErrorKind::TooManyHeaders
    );
    let small = Limits {
        max_message_size: 100,
        ..Limits::default()
    };
    let big = format!("{head}Content-Length: 200\r\n\r\n{}", "x".repeat(200));
    let e = Message::parse_with(big.into_bytes().into(), &small).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert_eq!(e.kind.to_string(), "message too large");
}
