//! What parsing found, kept with the message as byte ranges of its buffer: the Request-URI
//! (parsed with the start line) and the top Via (parsed when first asked for). A proxy reads
//! both several times per message; each read rebuilds the borrowed value from the ranges
//! instead of parsing the text again.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Message, Span};
use crate::header::Via;
use crate::host::Host;
use crate::params::Params;
use crate::uri::{OtherUri, SipUri, TelUri, Uri};

/// The span of `part` in `base` (the message buffer): an empty part is kept as the empty
/// span at 0, as parsers give `""` for what is absent.
fn span(base: &[u8], part: &str) -> Span {
    if part.is_empty() {
        return Span::default();
    }
    let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    debug_assert!(start + part.len() <= base.len());
    Span::new(start, start + part.len())
}

/// A [`Host`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostAt {
    Domain(Span),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl HostAt {
    fn keep(base: &[u8], host: Host<'_>) -> HostAt {
        match host {
            Host::Domain(d) => HostAt::Domain(span(base, d)),
            Host::Ipv4(a) => HostAt::Ipv4(a),
            Host::Ipv6(a) => HostAt::Ipv6(a),
        }
    }

    fn get(self, m: &Message) -> Host<'_> {
        match self {
            HostAt::Domain(d) => Host::Domain(m.text(d)),
            HostAt::Ipv4(a) => Host::Ipv4(a),
            HostAt::Ipv6(a) => Host::Ipv6(a),
        }
    }
}

/// A parsed [`Uri`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriAt {
    Sip {
        raw: Span,
        secure: bool,
        user: Option<Span>,
        password: Option<Span>,
        host: HostAt,
        host_raw: Span,
        port: Option<u16>,
        params: Span,
        headers: Option<Span>,
    },
    Tel {
        raw: Span,
        number: Span,
        params: Span,
    },
    Other {
        raw: Span,
        scheme: Span,
    },
}

impl UriAt {
    /// Keeps `uri`, parsed from a slice of `base` (the message buffer).
    pub(crate) fn keep(base: &[u8], uri: &Uri<'_>) -> UriAt {
        let at = |s: &str| span(base, s);
        match uri {
            Uri::Sip(u) => UriAt::Sip {
                raw: at(u.raw),
                secure: u.secure,
                user: u.user.map(at),
                password: u.password.map(at),
                host: HostAt::keep(base, u.host),
                host_raw: at(u.host_raw),
                port: u.port,
                params: at(u.params.as_str()),
                headers: u.headers.map(at),
            },
            Uri::Tel(u) => UriAt::Tel {
                raw: at(u.raw),
                number: at(u.number),
                params: at(u.params.as_str()),
            },
            Uri::Other(u) => UriAt::Other {
                raw: at(u.raw),
                scheme: at(u.scheme),
            },
        }
    }

    /// The URI again, borrowing from `m`.
    pub(crate) fn get(self, m: &Message) -> Uri<'_> {
        let text = |s| m.text(s);
        match self {
            UriAt::Sip {
                raw,
                secure,
                user,
                password,
                host,
                host_raw,
                port,
                params,
                headers,
            } => Uri::Sip(SipUri {
                raw: text(raw),
                secure,
                user: user.map(text),
                password: password.map(text),
                host: host.get(m),
                host_raw: text(host_raw),
                port,
                params: Params::checked(text(params)),
                headers: headers.map(text),
            }),
            UriAt::Tel {
                raw,
                number,
                params,
            } => Uri::Tel(TelUri {
                raw: text(raw),
                number: text(number),
                params: Params::checked(text(params)),
            }),
            UriAt::Other { raw, scheme } => Uri::Other(OtherUri {
                raw: text(raw),
                scheme: text(scheme),
            }),
        }
    }
}

/// A parsed [`Via`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViaAt {
    protocol: Span,
    version: Span,
    transport: Span,
    host: HostAt,
    host_raw: Span,
    port: Option<u16>,
    params: Span,
}

impl ViaAt {
    /// Keeps `via`, parsed from a slice of `base`.
    pub(crate) fn keep(base: &[u8], via: &Via<'_>) -> ViaAt {
        let at = |s: &str| span(base, s);
        ViaAt {
            protocol: at(via.protocol),
            version: at(via.version),
            transport: at(via.transport),
            host: HostAt::keep(base, via.host),
            host_raw: at(via.host_raw),
            port: via.port,
            params: at(via.params.as_str()),
        }
    }

    /// The Via again, borrowing from `m`.
    pub(crate) fn get(self, m: &Message) -> Via<'_> {
        Via {
            protocol: m.text(self.protocol),
            version: m.text(self.version),
            transport: m.text(self.transport),
            host: self.host.get(m),
            host_raw: m.text(self.host_raw),
            port: self.port,
            params: Params::checked(m.text(self.params)),
        }
    }
}
