//! Presence documents (PIDF, RFC 3863): a published one is checked, the publications of a
//! presentity's devices are composed into one document (their tuples, persons and notes
//! side by side), and for a phone that publishes nothing the server writes one from what
//! it knows: registered (open) or not (closed), and on the phone while in a call.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::xml::escape;

const PIDF: &str = "urn:ietf:params:xml:ns:pidf";
const DATA_MODEL: &str = "urn:ietf:params:xml:ns:pidf:data-model";
const RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The namespaces the server's own elements use, as its root declares them.
const OWN_DECLS: [(&str, &str); 2] = [("xmlns:dm", DATA_MODEL), ("xmlns:rpid", RPID)];

/// A published presence document, read: its root's namespace declarations and the byte
/// ranges of the root's elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    text: String,
    decls: Vec<(String, String)>,
    children: Vec<std::ops::Range<usize>>,
}

/// Reads a published document: a well-formed PIDF `presence` root (no DOCTYPE); the
/// reason when it is not.
pub(crate) fn read(body: &[u8]) -> Result<Document, &'static str> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8")?;
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    let mut decls = Vec::new();
    let mut children = Vec::new();
    let mut start = 0usize;
    let mut root_seen = false;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|_| "not well-formed XML")?;
        match event {
            Event::DocType(_) => return Err("a DOCTYPE"),
            Event::Start(_) | Event::Empty(_) if depth == 0 && root_seen => {
                return Err("more than one root");
            }
            Event::Start(e) => {
                if depth == 0 {
                    decls = root(&e)?;
                    root_seen = true;
                } else if depth == 1 {
                    start = before;
                }
                depth += 1;
            }
            Event::Empty(e) if depth == 0 => {
                decls = root(&e)?;
                root_seen = true;
            }
            Event::Empty(_) if depth == 1 => {
                children.push(before..reader.buffer_position() as usize);
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 1 {
                    children.push(start..reader.buffer_position() as usize);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || depth != 0 {
        return Err("not well-formed XML");
    }
    Ok(Document {
        text: text.to_owned(),
        decls,
        children,
    })
}

/// The namespace declarations of a PIDF root element; an error for any other root.
fn root(e: &quick_xml::events::BytesStart<'_>) -> Result<Vec<(String, String)>, &'static str> {
    let mut decls = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|_| "a bad attribute")?;
        let key = std::str::from_utf8(a.key.as_ref()).map_err(|_| "not UTF-8")?;
        if key == "xmlns" || key.starts_with("xmlns:") {
            let value = a.unescape_value().map_err(|_| "a bad attribute")?;
            decls.push((key.to_owned(), value.into_owned()));
        }
    }
    let default_ns = decls
        .iter()
        .find(|(k, _)| k == "xmlns")
        .map(|(_, v)| v.as_str());
    if e.name().as_ref() != b"presence" || default_ns != Some(PIDF) {
        return Err("no PIDF presence root");
    }
    Ok(decls)
}

/// What the server knows of a presentity beside its publications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// A device of it is registered.
    pub(crate) registered: bool,
    /// It is in an answered call.
    pub(crate) in_call: bool,
}

/// The presence document of `entity` (its URI): the publications, newest last, composed,
/// with the server's own person on the phone while in a call; the server's own tuple when there is none. A user with no
/// device registered is closed, whatever was published: a phone that vanished leaves no
/// stale "open".
pub(crate) fn compose(entity: &str, published: &[&Document], facts: Facts) -> String {
    let published = match facts.registered {
        true => fitting(published),
        false => &[][..],
    };
    let mut decls: Vec<(String, String)> = OWN_DECLS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for doc in published {
        for (k, v) in &doc.decls {
            if k != "xmlns" && !decls.iter().any(|(dk, _)| dk == k) {
                decls.push((k.clone(), v.clone()));
            }
        }
    }
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"");
    out.push_str(PIDF);
    out.push('"');
    for (k, v) in &decls {
        out.push_str(&format!(" {k}=\"{}\"", escape(v)));
    }
    out.push_str(&format!(" entity=\"{}\">\n", escape(entity)));
    for doc in published {
        for range in &doc.children {
            out.push_str(&doc.text[range.clone()]);
            out.push('\n');
        }
    }
    if published.is_empty() {
        let basic = if facts.registered { "open" } else { "closed" };
        out.push_str(&format!(
            "<tuple id=\"ferrosip\"><status><basic>{basic}</basic></status></tuple>\n"
        ));
    }
    if facts.in_call && facts.registered {
        out.push_str(
            "<dm:person id=\"ferrosip\"><rpid:activities><rpid:on-the-phone/>\
             </rpid:activities></dm:person>\n",
        );
    }
    out.push_str("</presence>\n");
    out
}

/// The publications whose declarations agree with each other's and the server's; when
/// some do not, the newest alone.
fn fitting<'a, 'b>(published: &'b [&'a Document]) -> &'b [&'a Document] {
    let mut seen: Vec<(&str, &str)> = OWN_DECLS.to_vec();
    for doc in published {
        for (k, v) in &doc.decls {
            match seen.iter().find(|(sk, _)| sk == k) {
                Some((_, sv)) if sv != v => return &published[published.len() - 1..],
                Some(_) => {}
                None => seen.push((k, v)),
            }
        }
    }
    published
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@x.org">
  <tuple id="t1"><status><basic>open</basic></status></tuple>
  <note>Ready</note>
</presence>"#;

    #[test]
    fn reads_a_published_document() {
        let doc = read(OPEN.as_bytes()).unwrap();
        assert_eq!(doc.children.len(), 2);
        assert!(doc.text[doc.children[0].clone()].starts_with("<tuple id=\"t1\">"));
        assert!(doc.text[doc.children[0].clone()].ends_with("</tuple>"));
        assert_eq!(&doc.text[doc.children[1].clone()], "<note>Ready</note>");
    }

    #[test]
    fn refuses_what_is_no_pidf() {
        for bad in [
            "<presence/>",
            "<presence xmlns=\"urn:x\"/>",
            "<p:presence xmlns:p=\"urn:ietf:params:xml:ns:pidf\"/>",
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"><tuple></presence>",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><presence xmlns=\"urn:ietf:params:xml:ns:pidf\"/>",
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"/><presence xmlns=\"urn:ietf:params:xml:ns:pidf\"/>",
            "",
            "\u{feff}garbage",
        ] {
            assert!(read(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(read(b"\xff\xfe").is_err());
        assert!(read(b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"/>").is_ok());
    }

    #[test]
    fn composes_devices_and_the_call() {
        let a = read(OPEN.as_bytes()).unwrap();
        let b = read(
            br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@x.org"><tuple id="t2"><status><basic>closed</basic></status></tuple></presence>"#,
        )
        .unwrap();
        let facts = Facts {
            registered: true,
            in_call: true,
        };
        let doc = compose("sip:a@x.org", &[&a, &b], facts);
        assert!(doc.contains("<tuple id=\"t1\">") && doc.contains("<tuple id=\"t2\">"));
        assert!(doc.contains("<rpid:on-the-phone/>"));
        assert!(read(doc.as_bytes()).is_ok(), "{doc}");
        let offline = compose("sip:a@x.org", &[&a], Facts::default());
        assert!(offline.contains("<basic>closed</basic>") && !offline.contains("t1"));
        let own = compose(
            "sip:a@x.org",
            &[],
            Facts {
                registered: true,
                in_call: false,
            },
        );
        assert!(own.contains("<basic>open</basic>") && !own.contains("on-the-phone"));
    }

    #[test]
    fn clashing_prefixes_leave_the_newest_alone() {
        let a = read(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:e="urn:one"><tuple id="a"/></presence>"#).unwrap();
        let b = read(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:e="urn:two"><tuple id="b"/></presence>"#).unwrap();
        let doc = compose(
            "sip:a@x.org",
            &[&a, &b],
            Facts {
                registered: true,
                in_call: false,
            },
        );
        assert!(!doc.contains("id=\"a\"") && doc.contains("id=\"b\""));
        assert!(doc.contains("xmlns:e=\"urn:two\""));
    }

    #[test]
    fn escapes_the_entity() {
        let doc = compose("sip:\"<a>\"@x.org", &[], Facts::default());
        assert!(doc.contains("entity=\"sip:&quot;&lt;a&gt;&quot;@x.org\""));
    }
}
