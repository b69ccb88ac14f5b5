//! Load-time errors: file, line, column, the message and the source line with a caret.

use std::fmt;

use crate::sources::Sources;

/// A byte range of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// From the start of `self` to the end of `other`.
    pub(crate) fn to(self, other: Span) -> Span {
        Span::new(self.start, other.end.max(self.start))
    }
}

/// An error before it is placed in a file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    pub(crate) span: Span,
    pub(crate) message: String,
}

impl Error {
    pub(crate) fn new(span: Span, message: impl Into<String>) -> Error {
        Error {
            span,
            message: message.into(),
        }
    }
}

/// One error in a script, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file: the name given to [`crate::Script::compile`], or an included file's path.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The source line.
    text: String,
    /// What goes before the caret: spaces, and tabs where the line has them.
    indent: String,
    /// How many carets.
    width: usize,
}

impl Diagnostic {
    /// Places `error` in the file of `sources` its span starts in.
    pub(crate) fn new(sources: &Sources, error: Error) -> Diagnostic {
        let (file, start) = sources.locate(error.span.start);
        let source = file.text.as_str();
        let start = floor_char(source, start);
        let end = error.span.end.saturating_sub(error.span.start) + start;
        let end = floor_char(source, end);
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let text = source[line_start..line_end].trim_end_matches('\r');
        let before = &source[line_start..start];
        let indent = before
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let width = source[start..end.min(line_end)].chars().count().max(1);
        Diagnostic {
            file: file.name.clone(),
            line: source[..start].matches('\n').count() + 1,
            column: before.chars().count() + 1,
            message: error.message,
            text: text.to_owned(),
            indent,
            width,
        }
    }
}

/// The largest char boundary of `s` not after `i`.
fn floor_char(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        writeln!(f, "    | {}", self.text)?;
        write!(f, "    | {}{}", self.indent, "^".repeat(self.width))
    }
}

impl std::error::Error for Diagnostic {}

/// Every error found in a script, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
