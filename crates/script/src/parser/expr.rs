//! Expressions, by precedence climbing.

use super::{Parser, Result, KEYWORDS};
use crate::ast::{BinOp, Call, Expr, ExprKind, UnOp};
use crate::lexer::Tok;

/// The binary operators by level, loosest first.
const LEVELS: [&[(&str, BinOp)]; 4] = [
    &[("||", BinOp::Or)],
    &[("&&", BinOp::And)],
    &[
        ("==", BinOp::Eq),
        ("!=", BinOp::Ne),
        ("<", BinOp::Lt),
        (">", BinOp::Gt),
        ("<=", BinOp::Le),
        (">=", BinOp::Ge),
        ("=~", BinOp::Match),
        ("!~", BinOp::NotMatch),
    ],
    &[("+", BinOp::Add), ("-", BinOp::Sub)],
];

impl Parser {
    pub(super) fn expr(&mut self) -> Result<Expr> {
        self.binary(0)
    }

    fn binary(&mut self, level: usize) -> Result<Expr> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut lhs = self.binary(level + 1)?;
        let mut chain = 0;
        while let Some(&(_, op)) = ops.iter().find(|(s, _)| self.is_sym(s)) {
            self.bump();
            self.enter()?;
            chain += 1;
            let rhs = self.binary(level + 1)?;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        self.depth -= chain;
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr> {
        let op = if self.is_sym("!") {
            UnOp::Not
        } else if self.is_sym("-") {
            UnOp::Neg
        } else {
            return self.primary();
        };
        let start = self.bump().span;
        self.enter()?;
        let e = self.unary()?;
        self.depth -= 1;
        let span = start.to(e.span);
        Ok(Expr {
            kind: ExprKind::Unary(op, Box::new(e)),
            span,
        })
    }

    pub(super) fn primary(&mut self) -> Result<Expr> {
        let t = self.peek().clone();
        let kind = match &t.tok {
            Tok::Int(i) => ExprKind::Int(*i),
            Tok::Str(parts) => ExprKind::Str(parts.clone()),
            Tok::Var(v) => ExprKind::Var(v.clone()),
            Tok::Sym("(") => {
                self.bump();
                self.enter()?;
                let e = self.expr()?;
                self.depth -= 1;
                self.expect_sym(")")?;
                return Ok(e);
            }
            Tok::Ident(word) => match word.as_str() {
                "null" => ExprKind::Null,
                "uri" => ExprKind::Uri,
                "myself" => ExprKind::Myself,
                w if KEYWORDS.contains(&w) => return Err(self.unexpected("an expression")),
                w if self.peek_next_is("(") => return self.call(w.to_owned()),
                w => ExprKind::Ident(w.to_owned()),
            },
            _ => return Err(self.unexpected("an expression")),
        };
        self.bump();
        Ok(Expr { kind, span: t.span })
    }

    /// `name(args)`, or `route(NAME)`, at the token `name`.
    fn call(&mut self, name: String) -> Result<Expr> {
        let head = self.bump();
        self.expect_sym("(")?;
        if name == "route" {
            let (target, span) = self.route_name()?;
            self.expect_sym(")")?;
            return Ok(Expr {
                kind: ExprKind::Route(target),
                span,
            });
        }
        let mut args = Vec::new();
        if !self.is_sym(")") {
            args.push(self.expr()?);
            while self.eat_sym(",") {
                args.push(self.expr()?);
            }
        }
        let end = self.expect_sym(")")?;
        let kind = ExprKind::Call(Call {
            name,
            span: head.span,
            args,
        });
        Ok(Expr {
            kind,
            span: head.span.to(end),
        })
    }
}
