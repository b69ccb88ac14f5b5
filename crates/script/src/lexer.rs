//! Turns the source into tokens (docs/routing.md, "Lexical structure").

use crate::ast::{Part, VarRef};
use crate::diag::{Error, Span};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword.
    Ident(String),
    Int(i64),
    /// A string literal; single-quoted ones are one `Part::Text`.
    Str(Vec<Part>),
    Var(VarRef),
    /// Punctuation and operators.
    Sym(&'static str),
    /// A preprocessor line: `#!` first on its line; the rest of the line, trimmed.
    Directive(String),
    Eof,
}

/// A token and its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) span: Span,
}

const SYMBOLS: [&str; 23] = [
    "==", "!=", "<=", ">=", "=~", "!~", "&&", "||", "{", "}", "[", "]", "(", ")", ";", ":", ",",
    "=", "<", ">", "+", "-", "!",
];

/// Reads tokens one at a time from a text placed at offset `base` of the sources: spans
/// are offsets of the sources, not of the text.
pub(crate) struct Lexer<'s> {
    src: &'s str,
    base: usize,
    /// Where the next token is looked for, as an offset of the sources.
    pos: usize,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'s> Lexer<'s> {
    /// A lexer at the start of `src`, which begins at offset `base` of the sources.
    pub(crate) fn new(src: &'s str, base: usize) -> Lexer<'s> {
        Lexer {
            src,
            base,
            pos: base,
        }
    }

    /// The next token: `Tok::Eof` at the end, and from then on.
    pub(crate) fn next_token(&mut self) -> Result<Token, Error> {
        self.skip_blanks()?;
        let start = self.pos;
        let tok = self.token()?;
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    /// Skips the lines of an `#!ifdef` branch not taken, unread: returns the next directive
    /// (a line starting with `#!`), or `Tok::Eof`.
    pub(crate) fn skip_to_directive(&mut self) -> Token {
        loop {
            let rest = self.rest();
            let line = rest.find('\n').map_or(rest, |i| &rest[..i]);
            let code = line.trim_start();
            if code.starts_with("#!") {
                self.pos += line.len() - code.len();
                let start = self.pos;
                let tok = self.directive();
                return Token {
                    tok,
                    span: Span::new(start, self.pos),
                };
            }
            if line.len() == rest.len() {
                self.pos += rest.len();
                return Token {
                    tok: Tok::Eof,
                    span: self.span(0),
                };
            }
            self.pos += line.len() + 1;
        }
    }

    /// `#!…` to the end of the line.
    fn directive(&mut self) -> Tok {
        let line = self.take_while(|c| c != '\n');
        Tok::Directive(line[2..].trim_end().to_owned())
    }

    /// True when only blanks precede `pos` on its line.
    fn at_line_start(&self) -> bool {
        let before = &self.src[..self.pos - self.base];
        let line = before.rfind('\n').map_or(before, |i| &before[i + 1..]);
        line.trim().is_empty()
    }

    fn rest(&self) -> &'s str {
        &self.src[self.pos - self.base..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_blanks(&mut self) -> Result<(), Error> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("#!") && self.at_line_start() {
                return Ok(());
            }
            if trimmed.starts_with('#') || trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let Some(end) = body.find("*/") else {
                    return Err(Error::new(self.span(2), "unterminated comment"));
                };
                self.pos += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    /// The next `len` bytes from here.
    fn span(&self, len: usize) -> Span {
        Span::new(self.pos, self.pos + len)
    }

    fn token(&mut self) -> Result<Tok, Error> {
        let Some(c) = self.peek() else {
            return Ok(Tok::Eof);
        };
        if self.rest().starts_with("#!") {
            return Ok(self.directive());
        }
        if c.is_ascii_alphabetic() || c == '_' {
            return Ok(Tok::Ident(self.take_while(is_ident).to_owned()));
        }
        if c.is_ascii_digit() {
            let start = self.pos;
            let digits = self.take_while(|c| c.is_ascii_digit());
            return digits
                .parse()
                .map(Tok::Int)
                .map_err(|_| Error::new(Span::new(start, self.pos), "integer too large"));
        }
        match c {
            '"' => return self.double_quoted().map(Tok::Str),
            '\'' => return self.single_quoted().map(Tok::Str),
            '$' => {
                return match self.var(false)? {
                    Some(v) => Ok(Tok::Var(v)),
                    None => Err(Error::new(
                        self.span(1),
                        "expected a variable name after `$`",
                    )),
                }
            }
            _ => {}
        }
        match SYMBOLS.iter().find(|s| self.rest().starts_with(**s)) {
            Some(s) => {
                self.pos += s.len();
                Ok(Tok::Sym(s))
            }
            None => Err(Error::new(
                self.span(c.len_utf8()),
                format!("unexpected character `{c}`"),
            )),
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'s str {
        let rest = self.rest();
        let len = rest.find(|c| !f(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// `$name` or `$name(param)` at `pos`; `None` (nothing consumed) when `$` is not followed
    /// by a letter.
    fn var(&mut self, in_string: bool) -> Result<Option<VarRef>, Error> {
        let start = self.pos;
        if !self.rest()[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Ok(None);
        }
        self.pos += 1;
        let name = self.take_while(is_ident).to_owned();
        let mut param = None;
        if self.rest().starts_with('(') {
            let body = &self.rest()[1..];
            let stop = |c: char| c == ')' || c == '\n' || (in_string && c == '"');
            match body.find(stop) {
                Some(i) if body[i..].starts_with(')') => {
                    param = Some(body[..i].trim().to_owned());
                    self.pos += i + 2;
                }
                _ => {
                    let span = Span::new(start, self.pos + 1);
                    return Err(Error::new(span, format!("missing `)` after `${name}(`")));
                }
            }
        }
        Ok(Some(VarRef {
            name,
            param,
            span: Span::new(start, self.pos),
        }))
    }

    fn double_quoted(&mut self) -> Result<Vec<Part>, Error> {
        let open = self.span(1);
        self.pos += 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(Error::new(open, "unterminated string"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    break;
                }
                '\\' => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('$') => '$',
                        _ => {
                            text.push('\\');
                            continue;
                        }
                    };
                    text.push(escaped);
                    self.pos += 1;
                }
                '$' => match self.var(true)? {
                    Some(v) => {
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Var(v));
                    }
                    None => {
                        text.push('$');
                        self.pos += 1;
                    }
                },
                c => {
                    text.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(parts)
    }

    fn single_quoted(&mut self) -> Result<Vec<Part>, Error> {
        let open = self.span(1);
        self.pos += 1;
        let mut text = String::new();
        loop {
            let rest = self.rest();
            if rest.starts_with("\\'") {
                text.push('\'');
                self.pos += 2;
                continue;
            }
            match rest.chars().next() {
                None => return Err(Error::new(open, "unterminated string")),
                Some('\'') => {
                    self.pos += 1;
                    return Ok(vec![Part::Text(text)]);
                }
                Some(c) => {
                    text.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }
}
