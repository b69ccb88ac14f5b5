//! The documents the server writes itself: a user's calls as dialog information (RFC 4235)
//! for busy-lamp fields, its watchers as watcher information (RFC 3858), and an empty
//! voicemail summary (RFC 3842) when no voicemail system published one.

use crate::xml::escape;

/// How far a call has gone (RFC 4235 §3.7.1's states); it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// The INVITE went out, nothing came back yet.
    Trying,
    /// It rings.
    Early,
    /// It was answered.
    Confirmed,
    /// It is over.
    Terminated,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Trying => "trying",
            Phase::Early => "early",
            Phase::Confirmed => "confirmed",
            Phase::Terminated => "terminated",
        }
    }
}

/// A call of a presentity's as its dialog event tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// Its Call-ID.
    pub call_id: String,
    /// The presentity's tag in it (the caller's From tag, or the callee's To tag once
    /// known).
    pub local_tag: Option<String>,
    /// The other side's tag, once known.
    pub remote_tag: Option<String>,
    /// The presentity placed the call (else it was called).
    pub initiator: bool,
    /// The other side's URI.
    pub remote: String,
    /// How far it has gone.
    pub phase: Phase,
}

/// The dialog information document of `entity` (full state) listing `calls`.
pub(crate) fn dialog_info(entity: &str, version: u32, calls: &[CallView]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dialog-info \
         xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" state=\"full\" \
         entity=\"{}\">\n",
        escape(entity)
    );
    for c in calls {
        out.push_str(&format!(
            "<dialog id=\"{id}\" call-id=\"{id}\"",
            id = escape(&c.call_id)
        ));
        if let Some(tag) = &c.local_tag {
            out.push_str(&format!(" local-tag=\"{}\"", escape(tag)));
        }
        if let Some(tag) = &c.remote_tag {
            out.push_str(&format!(" remote-tag=\"{}\"", escape(tag)));
        }
        let direction = if c.initiator {
            "initiator"
        } else {
            "recipient"
        };
        out.push_str(&format!(
            " direction=\"{direction}\"><state>{}</state><remote><identity>{}</identity>\
             <target uri=\"{}\"/></remote></dialog>\n",
            c.phase.name(),
            escape(&c.remote),
            escape(&c.remote)
        ));
    }
    out.push_str("</dialog-info>\n");
    out
}

/// One watcher in a watcher information document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatcherView {
    pub(crate) id: String,
    pub(crate) uri: String,
    /// `active` or `pending`.
    pub(crate) status: &'static str,
    /// What made it so: `subscribe`, `approved`.
    pub(crate) event: &'static str,
}

/// The watcher information document (full state) of the presence of `resource`.
pub(crate) fn watcherinfo(resource: &str, version: u32, watchers: &[WatcherView]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<watcherinfo \
         xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"{version}\" state=\"full\">\n\
         <watcher-list resource=\"{}\" package=\"presence\">\n",
        escape(resource)
    );
    for w in watchers {
        out.push_str(&format!(
            "<watcher id=\"{}\" event=\"{}\" status=\"{}\">{}</watcher>\n",
            escape(&w.id),
            w.event,
            w.status,
            escape(&w.uri)
        ));
    }
    out.push_str("</watcher-list>\n</watcherinfo>\n");
    out
}

/// The voicemail summary of a user no voicemail system published one for.
pub(crate) const NO_MESSAGES: &str = "Messages-Waiting: no\r\n";

/// Whether `body` is a voicemail summary (RFC 3842 §5.2: it begins with the
/// Messages-Waiting line).
pub(crate) fn is_message_summary(body: &[u8]) -> bool {
    let head = &body[..body.len().min(17)];
    std::str::from_utf8(body).is_ok() && head.eq_ignore_ascii_case(b"messages-waiting:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialog_info_lists_calls_with_their_state() {
        let call = CallView {
            call_id: "c<1>".into(),
            local_tag: Some("a".into()),
            remote_tag: None,
            initiator: false,
            remote: "sip:b@x.org".into(),
            phase: Phase::Early,
        };
        let doc = dialog_info("sip:a@x.org", 3, &[call]);
        assert!(doc.contains("version=\"3\" state=\"full\" entity=\"sip:a@x.org\""));
        assert!(doc.contains("call-id=\"c&lt;1&gt;\" local-tag=\"a\" direction=\"recipient\""));
        assert!(doc.contains("<state>early</state>"));
        assert!(!doc.contains("remote-tag"));
        assert!(Phase::Trying < Phase::Early && Phase::Confirmed < Phase::Terminated);
    }

    #[test]
    fn watcherinfo_lists_watchers() {
        let w = WatcherView {
            id: "w1".into(),
            uri: "sip:b@y.org".into(),
            status: "pending",
            event: "subscribe",
        };
        let doc = watcherinfo("sip:a@x.org", 0, &[w]);
        assert!(doc.contains("<watcher-list resource=\"sip:a@x.org\" package=\"presence\">"));
        assert!(doc.contains(
            "<watcher id=\"w1\" event=\"subscribe\" status=\"pending\">sip:b@y.org</watcher>"
        ));
    }

    #[test]
    fn message_summaries_begin_with_their_line() {
        assert!(is_message_summary(
            b"Messages-Waiting: yes\r\nVoice-Message: 2/8\r\n"
        ));
        assert!(is_message_summary(b"messages-waiting: no\r\n"));
        assert!(!is_message_summary(b"<xml/>"));
        assert!(!is_message_summary(b"Messages"));
    }
}
