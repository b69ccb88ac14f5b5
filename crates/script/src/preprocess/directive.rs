//! Reading one `#!` line (docs/routing.md, "Preprocessor directives").

use crate::diag::{Error, Span};

/// What a `#!` line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Directive {
    /// `#!KAMAILIO`, `#!OPENSER`, `#!SER`, `#!MAXCOMPAT`, `#!ALL`: nothing.
    Marker,
    /// `#!define`, `#!trydef` or `#!redefine` NAME, with the rest of the line as its value
    /// (maybe empty), which starts at offset `at`.
    Define {
        how: How,
        name: String,
        value: String,
        at: usize,
    },
    /// `#!undef NAME`.
    Undef(String),
    /// `#!ifdef NAME` (`defined`), or `#!ifndef NAME`.
    If {
        name: String,
        defined: bool,
    },
    Else,
    Endif,
    /// `#!include_file "PATH"`, or `#!import_file "PATH"` (`optional`: a missing file is
    /// skipped).
    Include {
        path: String,
        optional: bool,
    },
}

/// How a define treats a name already defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// `#!define`: an error.
    Define,
    /// `#!trydef`: keeps the old value.
    Try,
    /// `#!redefine`: replaces it.
    Redefine,
}

/// The directives read even in an `#!ifdef` branch not taken.
const CONDITIONALS: [&str; 4] = ["ifdef", "ifndef", "else", "endif"];

/// True when the directive `text` (the line after `#!`) opens, turns or closes a branch.
pub(crate) fn is_conditional(text: &str) -> bool {
    CONDITIONALS.contains(&keyword(text))
}

/// Reads the directive `text`, the line after the `#!` that starts at offset `start`.
pub(crate) fn parse(text: &str, start: usize) -> Result<Directive, Error> {
    let mut line = Line {
        text,
        pos: 0,
        start: start + 2,
    };
    let word = keyword(text);
    line.pos = word.len();
    let kw = Span::new(start, line.start + word.len());
    let directive = match word {
        "KAMAILIO" | "OPENSER" | "SER" | "MAXCOMPAT" | "ALL" => Directive::Marker,
        "define" | "trydef" | "redefine" => {
            let how = match word {
                "define" => How::Define,
                "trydef" => How::Try,
                _ => How::Redefine,
            };
            return line.define(how, word, kw);
        }
        "undef" => Directive::Undef(line.name(word, kw)?),
        "ifdef" | "ifndef" => Directive::If {
            name: line.name(word, kw)?,
            defined: word == "ifdef",
        },
        "else" => Directive::Else,
        "endif" => Directive::Endif,
        "include_file" | "import_file" => Directive::Include {
            path: line.path(word, kw)?,
            optional: word == "import_file",
        },
        "" => return Err(Error::new(kw, "expected a directive after `#!`")),
        _ => {
            let msg = format!("unsupported preprocessor directive `#!{word}`");
            return Err(Error::new(kw, msg));
        }
    };
    line.end()?;
    Ok(directive)
}

/// The directive's name: the letters, digits and `_` after `#!`.
fn keyword(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(text.len());
    &text[..end]
}

/// The rest of a directive line, read from `pos`; `text[0]` is at offset `start`.
struct Line<'a> {
    text: &'a str,
    pos: usize,
    start: usize,
}

impl Line<'_> {
    fn span(&self, from: usize, to: usize) -> Span {
        Span::new(self.start + from, self.start + to)
    }

    fn skip_blanks(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// A name after blanks.
    fn name(&mut self, word: &str, kw: Span) -> Result<String, Error> {
        self.skip_blanks();
        let rest = &self.text[self.pos..];
        let len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(Error::new(kw, format!("`#!{word}` needs a name")));
        }
        self.pos += len;
        Ok(rest[..len].to_owned())
    }

    /// NAME and its value, the rest of the line.
    fn define(mut self, how: How, word: &str, kw: Span) -> Result<Directive, Error> {
        let name = self.name(word, kw)?;
        if self.text[self.pos..].starts_with('(') {
            let span = self.span(self.pos, self.pos + 1);
            return Err(Error::new(
                span,
                "defines with parameters are not supported",
            ));
        }
        self.skip_blanks();
        let value = &self.text[self.pos..];
        if value.ends_with('\\') {
            let end = self.text.len();
            let msg = "a define's value ends with its line (no `\\` continuation)";
            return Err(Error::new(self.span(end - 1, end), msg));
        }
        Ok(Directive::Define {
            how,
            name,
            value: value.to_owned(),
            at: self.start + self.pos,
        })
    }

    /// A quoted file name after blanks.
    fn path(&mut self, word: &str, kw: Span) -> Result<String, Error> {
        self.skip_blanks();
        let rest = &self.text[self.pos..];
        let quoted = rest.chars().next().filter(|q| *q == '"' || *q == '\'');
        let Some((path, _)) = quoted.and_then(|q| rest[1..].split_once(q)) else {
            let msg = format!("expected a quoted file name after `#!{word}`");
            return Err(Error::new(kw, msg));
        };
        self.pos += path.len() + 2;
        Ok(path.to_owned())
    }

    /// Nothing but blanks or a comment may follow.
    fn end(mut self) -> Result<(), Error> {
        self.skip_blanks();
        let rest = &self.text[self.pos..];
        if rest.is_empty() || rest.starts_with('#') || rest.starts_with("//") {
            return Ok(());
        }
        let span = self.span(self.pos, self.text.len());
        Err(Error::new(
            span,
            format!("unexpected `{rest}` after the directive"),
        ))
    }
}
