//! The parsed script, before checking.

use std::fmt;

use crate::diag::Span;
use crate::registry::RouteKind;
use crate::value::Value;

/// `$name` or `$name(param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarRef {
    pub(crate) name: String,
    pub(crate) param: Option<String>,
    pub(crate) span: Span,
}

impl fmt::Display for VarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.param {
            Some(p) => write!(f, "${}({p})", self.name),
            None => write!(f, "${}", self.name),
        }
    }
}

/// A piece of a string literal: text, or a variable replaced each time it is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    Var(VarRef),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Match,
    NotMatch,
    Add,
    Sub,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Not,
    Neg,
}

/// `f(args)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) name: String,
    /// The function's name.
    pub(crate) span: Span,
    pub(crate) args: Vec<Expr>,
}

/// An expression with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expr {
    pub(crate) kind: ExprKind,
    pub(crate) span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExprKind {
    Int(i64),
    Str(Vec<Part>),
    Null,
    Uri,
    Myself,
    /// A bare name: a route name or a log level, as an argument.
    Ident(String),
    Var(VarRef),
    Call(Call),
    /// `route(NAME)`: the name (span: the name).
    Route(String),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The text of a literal without variables: a string, a name or an integer.
    pub(crate) fn literal_text(&self) -> Option<String> {
        match &self.kind {
            ExprKind::Ident(s) => Some(s.clone()),
            ExprKind::Int(i) => Some(i.to_string()),
            ExprKind::Str(parts) => plain(parts).map(str::to_owned),
            _ => None,
        }
    }
}

/// The text of string parts without variables.
pub(crate) fn plain(parts: &[Part]) -> Option<&str> {
    match parts {
        [] => Some(""),
        [Part::Text(t)] => Some(t),
        _ => None,
    }
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stmt {
    Block(Vec<Stmt>),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    Switch(Expr, Vec<SwitchItem>),
    Break(Span),
    Return(Option<Expr>),
    Exit,
    Drop,
    Assign(VarRef, Expr),
    Expr(Expr),
}

/// What a switch body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SwitchItem {
    Case(Value<'static>),
    Default,
    Stmt(Stmt),
}

/// A route block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) kind: RouteKind,
    pub(crate) name: Option<String>,
    /// The name, or the keyword when there is none.
    pub(crate) span: Span,
    pub(crate) body: Vec<Stmt>,
}

/// Calls `f` on every `route(NAME)` in statements, with the name and its span.
pub(crate) fn route_calls<'a>(body: &'a [Stmt], f: &mut impl FnMut(&'a str, Span)) {
    for s in body {
        match s {
            Stmt::Block(b) => route_calls(b, f),
            Stmt::If(c, t, e) => {
                expr_routes(c, f);
                route_calls(std::slice::from_ref(t), f);
                if let Some(e) = e {
                    route_calls(std::slice::from_ref(e), f);
                }
            }
            Stmt::Switch(e, items) => {
                expr_routes(e, f);
                for i in items {
                    if let SwitchItem::Stmt(s) = i {
                        route_calls(std::slice::from_ref(s), f);
                    }
                }
            }
            Stmt::Return(Some(e)) | Stmt::Assign(_, e) | Stmt::Expr(e) => expr_routes(e, f),
            Stmt::Break(_) | Stmt::Return(None) | Stmt::Exit | Stmt::Drop => {}
        }
    }
}

fn expr_routes<'a>(e: &'a Expr, f: &mut impl FnMut(&'a str, Span)) {
    match &e.kind {
        ExprKind::Route(name) => f(name, e.span),
        ExprKind::Call(c) => c.args.iter().for_each(|a| expr_routes(a, f)),
        ExprKind::Unary(_, a) => expr_routes(a, f),
        ExprKind::Binary(_, a, b) => {
            expr_routes(a, f);
            expr_routes(b, f);
        }
        _ => {}
    }
}
