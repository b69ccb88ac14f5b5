//! Recursive descent from tokens to the syntax tree; the first syntax error stops it.

mod expr;
mod stmt;

use crate::ast::{plain, Block};
use crate::diag::{Error, Span};
use crate::lexer::{Tok, Token};
use crate::registry::RouteKind;

/// How deeply statements and expressions may nest (keeps the checker's recursion bounded).
const MAX_DEPTH: usize = 100;

/// Words that cannot name a function or start an expression.
const KEYWORDS: [&str; 9] = [
    "if", "else", "switch", "case", "default", "break", "return", "exit", "drop",
];

/// Parses a whole script's tokens (ending with `Tok::Eof`) into its route blocks.
pub(crate) fn parse(toks: Vec<Token>) -> Result<Vec<Block>> {
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let mut blocks = Vec::new();
    while p.peek().tok != Tok::Eof {
        blocks.push(p.block()?);
    }
    Ok(blocks)
}

struct Parser {
    /// Never empty: the last is `Tok::Eof`.
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

type Result<T> = std::result::Result<T, Error>;

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }

    fn peek_next(&self) -> &Token {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        self.pos = (self.pos + 1).min(self.toks.len() - 1);
        t
    }

    fn is_sym(&self, s: &'static str) -> bool {
        self.peek().tok == Tok::Sym(s)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(word) if word == w)
    }

    fn eat_sym(&mut self, s: &'static str) -> bool {
        let found = self.is_sym(s);
        if found {
            self.bump();
        }
        found
    }

    fn expect_sym(&mut self, s: &'static str) -> Result<Span> {
        if self.is_sym(s) {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(&format!("`{s}`")))
        }
    }

    /// "expected WHAT, found …" at the next token.
    fn unexpected(&self, what: &str) -> Error {
        let t = self.peek();
        let found = match &t.tok {
            Tok::Eof => "end of file".to_owned(),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Ident(word) => format!("`{word}`"),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Var(v) => format!("`{v}`"),
            Tok::Sym(s) => format!("`{s}`"),
            Tok::Directive(d) => format!("`#!{d}`"),
        };
        Error::new(t.span, format!("expected {what}, found {found}"))
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::new(self.peek().span, "nested too deeply"));
        }
        Ok(())
    }

    fn block(&mut self) -> Result<Block> {
        let Tok::Ident(word) = self.peek().tok.clone() else {
            return Err(self.unexpected("a route block"));
        };
        let head = self.bump();
        let named = self.is_sym("[");
        let kind = match word.as_str() {
            "request_route" => RouteKind::Request,
            "route" if named => RouteKind::Sub,
            "route" => RouteKind::Request,
            "reply_route" | "onreply_route" => RouteKind::Reply,
            "failure_route" => RouteKind::Failure,
            "branch_route" => RouteKind::Branch,
            _ => {
                let msg = "expected a route block (request_route, reply_route, failure_route, \
                           branch_route or route)";
                return Err(Error::new(head.span, format!("{msg}, found `{word}`")));
            }
        };
        let (name, span) = if self.eat_sym("[") {
            let (name, span) = self.route_name()?;
            self.expect_sym("]")?;
            if kind == RouteKind::Request {
                return Err(Error::new(span, format!("{word} cannot have a name")));
            }
            (Some(name), span)
        } else {
            if matches!(kind, RouteKind::Failure | RouteKind::Branch) {
                let msg = format!("{word} needs a name: {word}[NAME]");
                return Err(Error::new(head.span, msg));
            }
            (None, head.span)
        };
        self.expect_sym("{")?;
        let body = self.body()?;
        Ok(Block {
            kind,
            name,
            span,
            body,
        })
    }

    /// A route name: identifier, number or string without variables.
    fn route_name(&mut self) -> Result<(String, Span)> {
        let t = self.peek().clone();
        let name = match &t.tok {
            Tok::Ident(word) => word.clone(),
            Tok::Int(i) => i.to_string(),
            Tok::Str(parts) => match plain(parts) {
                Some(s) => s.to_owned(),
                None => return Err(Error::new(t.span, "a route name cannot contain variables")),
            },
            _ => return Err(self.unexpected("a route name")),
        };
        self.bump();
        Ok((name, t.span))
    }

    /// True when the token after the next one is the symbol `s`.
    fn peek_next_is(&self, s: &'static str) -> bool {
        self.peek_next().tok == Tok::Sym(s)
    }
}
