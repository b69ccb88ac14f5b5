//! Header field names: the well-known ones as an enum, with RFC 3261 §7.3.3 compact forms.

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal, $lower:literal $(, $compact:literal)? ;)*) => {
        /// A header field name. Well-known headers get their own variant; any other is `Other`
        /// and keeps its spelling in the message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = $canonical]
                $variant,
            )*
            /// An extension header; its name is the text in the message.
            Other,
        }

        impl HeaderName {
            /// Looks a name up case-insensitively, compact forms included.
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                if let Some(common) = Self::common(name) {
                    return common;
                }
                let mut buf = [0u8; 24];
                if name.len() > buf.len() {
                    return HeaderName::Other;
                }
                let lower = &mut buf[..name.len()];
                for (d, s) in lower.iter_mut().zip(name) {
                    *d = s.to_ascii_lowercase();
                }
                match &*lower {
                    $(
                        $lower $(| $compact)? => HeaderName::$variant,
                    )*
                    _ => HeaderName::Other,
                }
            }

            /// The canonical spelling (`Other` gives an empty string).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other => "",
                }
            }
        }
    };
}

header_names! {
    Accept => "Accept", b"accept";
    AcceptContact => "Accept-Contact", b"accept-contact", b"a";
    AcceptEncoding => "Accept-Encoding", b"accept-encoding";
    AcceptLanguage => "Accept-Language", b"accept-language";
    AlertInfo => "Alert-Info", b"alert-info";
    Allow => "Allow", b"allow";
    AllowEvents => "Allow-Events", b"allow-events", b"u";
    AuthenticationInfo => "Authentication-Info", b"authentication-info";
    Authorization => "Authorization", b"authorization";
    CallId => "Call-ID", b"call-id", b"i";
    CallInfo => "Call-Info", b"call-info";
    Contact => "Contact", b"contact", b"m";
    ContentDisposition => "Content-Disposition", b"content-disposition";
    ContentEncoding => "Content-Encoding", b"content-encoding", b"e";
    ContentLanguage => "Content-Language", b"content-language";
    ContentLength => "Content-Length", b"content-length", b"l";
    ContentType => "Content-Type", b"content-type", b"c";
    CSeq => "CSeq", b"cseq";
    Date => "Date", b"date";
    ErrorInfo => "Error-Info", b"error-info";
    Event => "Event", b"event", b"o";
    Expires => "Expires", b"expires";
    From => "From", b"from", b"f";
    Identity => "Identity", b"identity", b"y";
    InReplyTo => "In-Reply-To", b"in-reply-to";
    MaxForwards => "Max-Forwards", b"max-forwards";
    MimeVersion => "MIME-Version", b"mime-version";
    MinExpires => "Min-Expires", b"min-expires";
    Organization => "Organization", b"organization";
    Path => "Path", b"path";
    Priority => "Priority", b"priority";
    ProxyAuthenticate => "Proxy-Authenticate", b"proxy-authenticate";
    ProxyAuthorization => "Proxy-Authorization", b"proxy-authorization";
    ProxyRequire => "Proxy-Require", b"proxy-require";
    RecordRoute => "Record-Route", b"record-route";
    ReferTo => "Refer-To", b"refer-to", b"r";
    ReferredBy => "Referred-By", b"referred-by", b"b";
    RejectContact => "Reject-Contact", b"reject-contact", b"j";
    ReplyTo => "Reply-To", b"reply-to";
    RequestDisposition => "Request-Disposition", b"request-disposition", b"d";
    Require => "Require", b"require";
    RetryAfter => "Retry-After", b"retry-after";
    Route => "Route", b"route";
    Server => "Server", b"server";
    SessionExpires => "Session-Expires", b"session-expires", b"x";
    Subject => "Subject", b"subject", b"s";
    SubscriptionState => "Subscription-State", b"subscription-state";
    Supported => "Supported", b"supported", b"k";
    Timestamp => "Timestamp", b"timestamp";
    To => "To", b"to", b"t";
    Unsupported => "Unsupported", b"unsupported";
    UserAgent => "User-Agent", b"user-agent";
    Via => "Via", b"via", b"v";
    Warning => "Warning", b"warning";
    WwwAuthenticate => "WWW-Authenticate", b"www-authenticate";
}

impl HeaderName {
    /// The usual spellings of the headers every message carries, matched without a copy.
    #[inline]
    fn common(name: &[u8]) -> Option<HeaderName> {
        use HeaderName::*;
        Some(match name {
            b"Via" => Via,
            b"From" => From,
            b"To" => To,
            b"Call-ID" => CallId,
            b"CSeq" => CSeq,
            b"Contact" => Contact,
            b"Max-Forwards" => MaxForwards,
            b"Content-Length" => ContentLength,
            b"Content-Type" => ContentType,
            b"Route" => Route,
            b"Record-Route" => RecordRoute,
            b"Expires" => Expires,
            b"Allow" => Allow,
            b"Supported" => Supported,
            b"User-Agent" => UserAgent,
            b"Server" => Server,
            _ => return None,
        })
    }
}

impl std::fmt::Display for HeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeaderName::Other => "extension",
            n => n.as_str(),
        })
    }
}

impl HeaderName {
    /// Headers whose value is a comma-separated list (RFC 3261 §7.3.1) that we split.
    pub fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Via | Contact
                | Route
                | RecordRoute
                | Path
                | Allow
                | Supported
                | Unsupported
                | Require
                | ProxyRequire
                | AllowEvents
                | Accept
                | AcceptEncoding
                | AcceptLanguage
                | ContentEncoding
                | ContentLanguage
                | InReplyTo
                | AlertInfo
                | CallInfo
                | ErrorInfo
        )
    }

    /// Headers that may appear at most once (RFC 3261 Table 2 and §20).
    pub fn is_single(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            CallId
                | CSeq
                | From
                | To
                | MaxForwards
                | ContentLength
                | ContentType
                | Expires
                | MinExpires
                | Date
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"ViA"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
        assert_eq!(
            HeaderName::from_bytes(b"www-AUTHENTICATE"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(HeaderName::from_bytes(&[b'x'; 40]), HeaderName::Other);
        assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
    }
}
