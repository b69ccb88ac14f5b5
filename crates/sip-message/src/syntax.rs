//! Character classes of RFC 3261 §25 and a small cursor used by the header parsers.

use crate::error::SyntaxError;

const fn class(extra: &[u8], alnum: bool) -> [bool; 256] {
    let mut t = [false; 256];
    if alnum {
        let mut c = 0usize;
        while c < 256 {
            let b = c as u8;
            t[c] = b.is_ascii_alphanumeric();
            c += 1;
        }
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// `token` characters.
static TOKEN: [bool; 256] = class(b"-.!%*_+`'~", true);
/// `word` characters (Call-ID).
static WORD: [bool; 256] = class(b"-.!%*_+`'~()<>:\\\"/[]?{}", true);
/// `unreserved` plus `user-unreserved` (URI user part); `%` checked separately.
static USER: [bool; 256] = class(b"-_.!~*'()&=+$,;?/", true);
/// `unreserved` plus the password extras.
static PASSWORD: [bool; 256] = class(b"-_.!~*'()&=+$,", true);
/// URI `paramchar`.
static PARAM: [bool; 256] = class(b"-_.!~*'()[]/:&+$", true);
/// URI header `hname` / `hvalue` characters.
static HNV: [bool; 256] = class(b"-_.!~*'()[]/?:+$", true);
/// Characters of a domain label (`_` tolerated).
pub(crate) static LABEL: [bool; 256] = class(b"-_", true);
/// Header parameter values: `token` or `host` (IPv6 with or without brackets).
static GEN_VALUE: [bool; 256] = class(b"-.!%*_+`'~:[]", true);

/// True for a `token` character.
#[inline]
pub(crate) fn is_token_char(b: u8) -> bool {
    TOKEN[b as usize]
}

/// True when `s` is a non-empty `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

pub(crate) fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| WORD[b as usize])
}

/// Linear white space inside a header value: folding has already been checked, so a CR or LF
/// seen here is always part of a `CRLF 1*WSP` continuation.
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    while start < end && is_lws(b[start]) {
        start += 1;
    }
    while end > start && is_lws(b[end - 1]) {
        end -= 1;
    }
    // Only ASCII white space was skipped, so both ends are character boundaries.
    &s[start..end]
}

/// Which URI component a string is checked against.
#[derive(Clone, Copy)]
pub(crate) enum UriPart {
    User,
    Password,
    Param,
    Header,
}

/// Checks the characters of a URI component, including `%HH` escapes.
pub(crate) fn check_uri_part(s: &str, part: UriPart) -> Result<(), SyntaxError> {
    let table = match part {
        UriPart::User => &USER,
        UriPart::Password => &PASSWORD,
        UriPart::Param => &PARAM,
        UriPart::Header => &HNV,
    };
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return Err(SyntaxError("truncated % escape"));
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return Err(SyntaxError("bad % escape"));
            }
            i += 3;
        } else if table[b[i] as usize] {
            i += 1;
        } else {
            return Err(SyntaxError("invalid character in URI"));
        }
    }
    Ok(())
}

pub(crate) fn is_gen_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| GEN_VALUE[b as usize])
}

/// A cursor over a header value; positions are byte offsets into it.
pub(crate) struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub(crate) fn slice(&self, from: usize, to: usize) -> &'a str {
        &self.s[from..to]
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Skips linear white space; returns whether any was skipped.
    pub(crate) fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        let b = self.s.as_bytes();
        while self.pos < b.len() && is_lws(b[self.pos]) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, c: u8, err: &'static str) -> Result<(), SyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(SyntaxError(err))
        }
    }

    /// Takes the longest run of bytes matching `f`.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let b = self.s.as_bytes();
        while self.pos < b.len() && f(b[self.pos]) {
            self.pos += 1;
        }
        // Stopping only before ASCII bytes (every predicate here is ASCII-only) keeps
        // the slice on a character boundary.
        &self.s[start..self.pos]
    }

    /// Takes a non-empty token.
    pub(crate) fn token(&mut self, err: &'static str) -> Result<&'a str, SyntaxError> {
        let t = self.take_while(is_token_char);
        if t.is_empty() {
            Err(SyntaxError(err))
        } else {
            Ok(t)
        }
    }

    /// Takes a quoted string and returns its content between the quotes, escapes kept.
    pub(crate) fn quoted_string(&mut self) -> Result<&'a str, SyntaxError> {
        self.expect(b'"', "expected quoted string")?;
        let start = self.pos;
        let b = self.s.as_bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b'"' => {
                    let inner = &self.s[start..self.pos];
                    self.pos += 1;
                    return Ok(inner);
                }
                b'\\' => match b.get(self.pos + 1) {
                    Some(&c) if c <= 0x7f && c != b'\r' && c != b'\n' => self.pos += 2,
                    _ => return Err(SyntaxError("bad escape in quoted string")),
                },
                c if c < 0x20 && !is_lws(c) || c == 0x7f => {
                    return Err(SyntaxError("control character in quoted string"))
                }
                _ => self.pos += 1,
            }
        }
        Err(SyntaxError("unterminated quoted string"))
    }
}

/// Removes the backslash escapes of a quoted string's content.
pub fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Decodes `%HH` escapes; the result may hold any byte.
pub fn percent_decode(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if !s.contains('%') {
        return s.as_bytes().into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out.into()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Parses a run of ASCII digits into a `u64`; `None` on no digits, another byte or overflow.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Splits at the first occurrence of the ASCII byte `b`.
#[inline]
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    find_byte(s, b).map(|i| (&s[..i], &s[i + 1..]))
}

/// Position of the first occurrence of the ASCII byte `b`. The strings searched here are
/// short URI and parameter pieces, where a plain loop beats a vectorised search's set-up.
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// Position of the last occurrence of the ASCII byte `b`.
#[inline]
pub(crate) fn rfind_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().rposition(|c| c == b)
}
