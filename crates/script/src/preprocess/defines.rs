//! The names defined so far, and the substitution of their values for identifiers.

use std::collections::HashMap;

use super::directive::How;
use crate::ast::Part;
use crate::diag::{Error, Span};
use crate::lexer::{Lexer, Tok, Token};

/// How many defines may be expanded inside one another.
const MAX_DEPTH: usize = 16;

/// How many tokens one identifier may expand to.
const MAX_TOKENS: usize = 10_000;

/// A define's value: its text, which starts at offset `at` of the sources.
#[derive(Debug)]
struct Value {
    text: String,
    at: usize,
}

/// The names defined, with their values.
#[derive(Debug, Default)]
pub(crate) struct Defines(HashMap<String, Value>);

impl Defines {
    /// True when `name` is defined.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Defines `name` as `text` (at offset `at`); the directive is at `span`.
    pub(crate) fn define(
        &mut self,
        how: How,
        name: String,
        text: String,
        at: usize,
        span: Span,
    ) -> Result<(), Error> {
        match (how, self.0.contains_key(&name)) {
            (How::Define, true) => {
                let msg = format!("`{name}` is already defined (#!redefine replaces a define)");
                Err(Error::new(span, msg))
            }
            (How::Try, true) => Ok(()),
            _ => {
                self.0.insert(name, Value { text, at });
                Ok(())
            }
        }
    }

    /// Forgets `name`.
    pub(crate) fn undef(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Pushes `t` onto `out` or, for an identifier that is defined, the tokens of its value
    /// (with the defines in it expanded in turn), all placed where `t` is. Lexical errors
    /// in a value are placed in the value.
    pub(crate) fn substitute(&self, t: Token, out: &mut Vec<Token>) -> Result<(), Error> {
        let mut expansion = Expansion {
            defines: self,
            at: t.span,
            open: Vec::new(),
            left: MAX_TOKENS,
        };
        match expansion.lookup(&t) {
            Some(define) => expansion.expand(define, out),
            None => {
                out.push(t);
                Ok(())
            }
        }
    }
}

/// One identifier being expanded.
struct Expansion<'d> {
    defines: &'d Defines,
    /// Where the identifier is.
    at: Span,
    /// The names being expanded, outermost first: not expanded again inside themselves.
    open: Vec<&'d str>,
    /// How many more tokens it may yield.
    left: usize,
}

impl<'d> Expansion<'d> {
    /// The define `t` names, unless it is being expanded.
    fn lookup(&self, t: &Token) -> Option<(&'d str, &'d Value)> {
        let Tok::Ident(name) = &t.tok else {
            return None;
        };
        let (name, value) = self.defines.0.get_key_value(name.as_str())?;
        (!self.open.contains(&name.as_str())).then_some((name.as_str(), value))
    }

    /// Pushes onto `out` the tokens of the value of `name`.
    fn expand(
        &mut self,
        (name, value): (&'d str, &'d Value),
        out: &mut Vec<Token>,
    ) -> Result<(), Error> {
        if self.open.len() == MAX_DEPTH {
            let msg = format!("defines nest more than {MAX_DEPTH} deep");
            return Err(Error::new(self.at, msg));
        }
        self.open.push(name);
        let mut lexer = Lexer::new(&value.text, value.at);
        loop {
            let t = lexer.next_token()?;
            if let Tok::Directive(_) = t.tok {
                return Err(Error::new(t.span, "a define's value cannot be a directive"));
            }
            if t.tok == Tok::Eof {
                break;
            }
            match self.lookup(&t) {
                Some(define) => self.expand(define, out)?,
                None if self.left == 0 => {
                    return Err(Error::new(self.at, "a define expands to too many tokens"));
                }
                None => {
                    self.left -= 1;
                    out.push(placed(t, self.at));
                }
            }
        }
        self.open.pop();
        Ok(())
    }
}

/// `t` with its span, and those of its variables, at `at`.
fn placed(mut t: Token, at: Span) -> Token {
    t.span = at;
    match &mut t.tok {
        Tok::Var(v) => v.span = at,
        Tok::Str(parts) => {
            for part in parts {
                if let Part::Var(v) = part {
                    v.span = at;
                }
            }
        }
        _ => {}
    }
    t
}
