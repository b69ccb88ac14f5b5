//! Statements.

use super::{Parser, Result, KEYWORDS};
use crate::ast::{plain, Stmt, SwitchItem};
use crate::diag::Error;
use crate::lexer::Tok;
use crate::value::Value;

impl Parser {
    /// Statements up to the closing `}` (the opening one is already taken).
    pub(super) fn body(&mut self) -> Result<Vec<Stmt>> {
        let mut out = Vec::new();
        while !self.eat_sym("}") {
            if self.peek().tok == Tok::Eof {
                return Err(self.unexpected("`}`"));
            }
            out.push(self.stmt()?);
        }
        Ok(out)
    }

    pub(super) fn stmt(&mut self) -> Result<Stmt> {
        self.enter()?;
        let s = self.stmt_inner()?;
        self.depth -= 1;
        Ok(s)
    }

    fn stmt_inner(&mut self) -> Result<Stmt> {
        let t = self.peek().clone();
        let word = match &t.tok {
            Tok::Ident(word) => word.clone(),
            Tok::Sym("{") => {
                self.bump();
                return self.body().map(Stmt::Block);
            }
            Tok::Sym(";") => {
                self.bump();
                return Ok(Stmt::Block(Vec::new()));
            }
            Tok::Var(v) => {
                self.bump();
                self.expect_sym("=")?;
                let e = self.expr()?;
                return self.end(Stmt::Assign(v.clone(), e));
            }
            _ => return Err(self.unexpected("a statement")),
        };
        match word.as_str() {
            "if" => self.if_stmt(),
            "switch" => self.switch(),
            "break" | "exit" | "drop" => {
                self.bump();
                self.end(match word.as_str() {
                    "break" => Stmt::Break(t.span),
                    "exit" => Stmt::Exit,
                    _ => Stmt::Drop,
                })
            }
            "return" => {
                self.bump();
                let value = if self.is_sym(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.end(Stmt::Return(value))
            }
            w if KEYWORDS.contains(&w) => Err(self.unexpected("a statement")),
            _ if self.peek_next_is("(") => {
                let call = self.primary()?;
                self.end(Stmt::Expr(call))
            }
            _ => {
                self.bump();
                Err(self.unexpected("`(`"))
            }
        }
    }

    /// The `;` that ends a simple statement.
    fn end(&mut self, s: Stmt) -> Result<Stmt> {
        self.expect_sym(";")?;
        Ok(s)
    }

    fn if_stmt(&mut self) -> Result<Stmt> {
        self.bump();
        self.expect_sym("(")?;
        let cond = self.expr()?;
        self.expect_sym(")")?;
        let then = Box::new(self.stmt()?);
        let els = if self.is_word("else") {
            self.bump();
            Some(Box::new(self.stmt()?))
        } else {
            None
        };
        Ok(Stmt::If(cond, then, els))
    }

    fn switch(&mut self) -> Result<Stmt> {
        self.bump();
        self.expect_sym("(")?;
        let subject = self.expr()?;
        self.expect_sym(")")?;
        self.expect_sym("{")?;
        let mut items = Vec::new();
        let mut has_default = false;
        while !self.eat_sym("}") {
            if self.is_word("case") {
                self.bump();
                items.push(SwitchItem::Case(self.case_label()?));
                self.expect_sym(":")?;
            } else if self.is_word("default") {
                if has_default {
                    return Err(Error::new(
                        self.peek().span,
                        "a switch has one `default` at most",
                    ));
                }
                has_default = true;
                self.bump();
                self.expect_sym(":")?;
                items.push(SwitchItem::Default);
            } else if self.peek().tok == Tok::Eof {
                return Err(self.unexpected("`}`"));
            } else {
                items.push(SwitchItem::Stmt(self.stmt()?));
            }
        }
        Ok(Stmt::Switch(subject, items))
    }

    fn case_label(&mut self) -> Result<Value<'static>> {
        let minus = self.eat_sym("-");
        let value = match &self.peek().tok {
            Tok::Int(i) => Value::Int(if minus { -i } else { *i }),
            Tok::Str(parts) if !minus => match plain(parts) {
                Some(s) => Value::from(s.to_owned()),
                None => return Err(Error::new(self.peek().span, "a case label is a literal")),
            },
            _ => return Err(self.unexpected("a string or integer literal")),
        };
        self.bump();
        Ok(value)
    }
}
