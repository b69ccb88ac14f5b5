//! Checks and compiles expressions and conditions.

use std::cmp::Ordering;

use regex::Regex;

use crate::ast::{plain, BinOp, Expr, ExprKind, Part, UnOp, VarRef};
use crate::combine::{Ex, Test};
use crate::compile::Compiler;
use crate::ops::{self, compare, equals, truth};
use crate::registry::{Env, RouteKind};
use crate::run::{call_route, eval, pure, Pure};
use crate::value::Value;

impl<E: Env> Compiler<'_, E> {
    /// Compiles an expression.
    pub(crate) fn expr(&mut self, e: &Expr) -> Ex<E> {
        match &e.kind {
            ExprKind::Int(i) => Ex::Const(Value::Int(*i)),
            ExprKind::Null => Ex::Const(Value::Null),
            ExprKind::Str(parts) => self.string(parts),
            ExprKind::Var(v) => self.read(v),
            ExprKind::Uri => self.uri(e),
            ExprKind::Myself => {
                self.error(e.span, "`myself` can only be compared with `==` or `!=`");
                Ex::Const(Value::Null)
            }
            ExprKind::Ident(name) => {
                let msg =
                    format!("unknown name `{name}` (strings are quoted, variables start with `$`)");
                self.error(e.span, msg);
                Ex::Const(Value::Null)
            }
            ExprKind::Call(call) => self.call(call),
            ExprKind::Route(name) => match self.table.find(RouteKind::Sub, name) {
                Some(id) => Ex::Eval(eval(move |c, x| call_route(id, c, x))),
                None => {
                    self.error(e.span, format!("unknown route `{name}`"));
                    Ex::Const(Value::Null)
                }
            },
            ExprKind::Unary(UnOp::Neg, a) => self.expr(a).map(ops::neg),
            ExprKind::Unary(UnOp::Not, _) | ExprKind::Binary(BinOp::And | BinOp::Or, ..) => {
                self.test(e).into_ex()
            }
            ExprKind::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b)
                if a.kind == ExprKind::Myself || b.kind == ExprKind::Myself =>
            {
                let other = if b.kind == ExprKind::Myself { a } else { b };
                self.expr(other).myself(*op == BinOp::Ne)
            }
            ExprKind::Binary(op @ (BinOp::Match | BinOp::NotMatch), a, b) => {
                let left = self.expr(a);
                match self.regex(*op, b) {
                    Some(re) => {
                        let negate = *op == BinOp::NotMatch;
                        left.map(move |v| truth(ops::matches(&re, v) != negate))
                    }
                    None => Ex::Const(Value::Null),
                }
            }
            ExprKind::Binary(op, a, b) => {
                let (l, r) = (self.expr(a), self.expr(b));
                match op {
                    BinOp::Eq => l.binary(r, |a, b| truth(equals(a, b))),
                    BinOp::Ne => l.binary(r, |a, b| truth(!equals(a, b))),
                    BinOp::Lt => l.binary(r, |a, b| truth(compare(a, b) == Ordering::Less)),
                    BinOp::Gt => l.binary(r, |a, b| truth(compare(a, b) == Ordering::Greater)),
                    BinOp::Le => l.binary(r, |a, b| truth(compare(a, b) != Ordering::Greater)),
                    BinOp::Ge => l.binary(r, |a, b| truth(compare(a, b) != Ordering::Less)),
                    BinOp::Add => l.binary(r, ops::add),
                    _ => l.binary(r, ops::sub),
                }
            }
        }
    }

    /// Compiles a condition: `&&`, `||` and `!` short-circuit without building values.
    pub(crate) fn test(&mut self, e: &Expr) -> Test<E> {
        match &e.kind {
            ExprKind::Unary(UnOp::Not, a) => self.test(a).not(),
            ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
                let l = self.test(a);
                let r = self.test(b);
                l.logic(r, *op == BinOp::And)
            }
            _ => self.expr(e).test(),
        }
    }

    /// `uri`: the variable `$ru`.
    fn uri(&mut self, e: &Expr) -> Ex<E> {
        if self.reg.lookup_variable("ru").is_none() {
            self.error(
                e.span,
                "`uri` needs the variable `$ru`, which is not available",
            );
            return Ex::Const(Value::Null);
        }
        self.read(&VarRef {
            name: "ru".to_owned(),
            param: None,
            span: e.span,
        })
    }

    /// A string literal; its variables are replaced each time it is evaluated.
    fn string(&mut self, parts: &[Part]) -> Ex<E> {
        if let Some(text) = plain(parts) {
            return Ex::Const(Value::from(text.to_owned()));
        }
        enum Piece<E: Env> {
            Text(String),
            Var(Pure<E>),
        }
        let mut pieces = Vec::new();
        for p in parts {
            pieces.push(match p {
                Part::Text(t) => Piece::Text(t.clone()),
                Part::Var(v) => match self.read(v) {
                    Ex::Pure(p) => Piece::Var(p),
                    _ => Piece::Text(String::new()),
                },
            });
        }
        Ex::Pure(pure(move |c, f| {
            let mut s = String::new();
            for p in &pieces {
                match p {
                    Piece::Text(t) => s.push_str(t),
                    Piece::Var(v) => ops::push(&mut s, &v(c, f)),
                }
            }
            Value::from(s)
        }))
    }

    /// The regular expression right of `=~` / `!~`: a string literal, compiled now.
    fn regex(&mut self, op: BinOp, e: &Expr) -> Option<Regex> {
        let sym = if op == BinOp::Match { "=~" } else { "!~" };
        let ExprKind::Str(parts) = &e.kind else {
            self.error(
                e.span,
                format!("the right side of `{sym}` must be a string literal"),
            );
            return None;
        };
        let Some(text) = plain(parts) else {
            let msg =
                format!("the right side of `{sym}` must be a string literal without variables");
            self.error(e.span, msg);
            return None;
        };
        match Regex::new(text) {
            Ok(re) => Some(re),
            Err(err) => {
                let full = err.to_string();
                let reason = full
                    .lines()
                    .find_map(|l| l.strip_prefix("error: "))
                    .unwrap_or(full.trim());
                self.error(e.span, format!("invalid regular expression: {reason}"));
                None
            }
        }
    }
}
