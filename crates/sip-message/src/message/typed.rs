//! Typed access to the headers a proxy and registrar decide on.

use super::{Header, Message};
use crate::error::{ErrorKind, ParseError, SyntaxError};
use crate::header::{
    parse_call_id, parse_max_forwards, parse_seconds, parse_tokens, AuthHeader, CSeq, Contact,
    HeaderName, ListIter, MediaType, NameAddr, Via,
};

impl Message {
    fn required(&self, name: HeaderName) -> Result<Header<'_>, ParseError> {
        self.header(name).ok_or(ParseError::new(
            ErrorKind::MissingHeader(name),
            self.start_line_end(),
        ))
    }

    fn single<'a, T>(
        &'a self,
        name: HeaderName,
        parse: impl Fn(&'a str) -> Result<T, SyntaxError>,
    ) -> Result<T, ParseError> {
        let h = self.required(name)?;
        parse(h.value).map_err(|e| self.header_error(name, h.value, e))
    }

    fn optional<'a, T>(
        &'a self,
        name: HeaderName,
        parse: impl Fn(&'a str) -> Result<T, SyntaxError>,
    ) -> Result<Option<T>, ParseError> {
        self.header(name)
            .map(|h| parse(h.value).map_err(|e| self.header_error(name, h.value, e)))
            .transpose()
    }

    /// Every comma-separated value of every field with this name, parsed by `parse`.
    pub(crate) fn list<'a, T: 'a>(
        &'a self,
        name: HeaderName,
        parse: impl Fn(&'a str) -> Result<T, SyntaxError> + Copy + 'a,
    ) -> impl Iterator<Item = Result<T, ParseError>> + 'a {
        self.headers_named(name)
            .flat_map(|h| ListIter::new(h.value))
            .map(move |v| parse(v).map_err(|e| self.header_error(name, v, e)))
    }

    /// The topmost Via value (parsed once, when first asked for).
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        let kept = self.top_via.get_or_init(|| {
            let h = self.required(HeaderName::Via)?;
            let first = ListIter::new(h.value).next().unwrap_or_default();
            let via =
                Via::parse(first).map_err(|e| self.header_error(HeaderName::Via, first, e))?;
            Ok(super::kept::ViaAt::keep(&self.buf, &via))
        });
        kept.map(|v| v.get(self))
    }

    /// All Via values, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> + '_ {
        self.list(HeaderName::Via, Via::parse)
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        self.single(HeaderName::From, NameAddr::parse)
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.single(HeaderName::To, NameAddr::parse)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.single(HeaderName::CallId, parse_call_id)
    }

    /// The CSeq header.
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        self.single(HeaderName::CSeq, CSeq::parse)
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.optional(HeaderName::MaxForwards, parse_max_forwards)
    }

    /// The Expires header, if present (saturating at 2^32-1).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.optional(HeaderName::Expires, parse_seconds)
    }

    /// The Min-Expires header, if present.
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        self.optional(HeaderName::MinExpires, parse_seconds)
    }

    /// The Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
        self.optional(HeaderName::ContentType, MediaType::parse)
    }

    /// All Contact values in order.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'_>, ParseError>> + '_ {
        self.list(HeaderName::Contact, Contact::parse)
    }

    /// All Route values, top first.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::Route, NameAddr::parse_bracketed)
    }

    /// All Record-Route values, top first.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::RecordRoute, NameAddr::parse_bracketed)
    }

    /// All Path values (RFC 3327), top first.
    pub fn paths(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::Path, NameAddr::parse_bracketed)
    }

    /// The option tags or methods of a token-list header (Require, Proxy-Require, Supported,
    /// Unsupported, Allow).
    pub fn tokens(&self, name: HeaderName) -> impl Iterator<Item = Result<&str, ParseError>> + '_ {
        self.headers_named(name).flat_map(move |h| {
            parse_tokens(h.value).map(move |t| t.map_err(|e| self.header_error(name, h.value, e)))
        })
    }

    /// Credentials or challenges of an authentication header (Authorization,
    /// Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate), one per field.
    pub fn auth_headers(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> + '_ {
        self.headers_named(name).map(move |h| {
            AuthHeader::parse(h.value).map_err(|e| self.header_error(name, h.value, e))
        })
    }

    /// The Content-Length header's value, if present and consistent.
    pub fn content_length(&self) -> Option<usize> {
        match self.content_length_state() {
            super::ContentLength::Value(n) => Some(n),
            _ => None,
        }
    }
}
