//! Checks each route block's statements and compiles them into closures.

use std::collections::HashMap;

use crate::ast::{self, SwitchItem};
use crate::check::Table;
use crate::combine::{Ex, Test};
use crate::diag::{Error, Span};
use crate::ops::equals;
use crate::registry::{Env, Registry};
use crate::run::{run_body, stmt, Body, Exec, Flow, Stmt, Stop};
use crate::value::Value;

/// The checker and compiler's state for one script.
pub(crate) struct Compiler<'s, E: Env> {
    pub(crate) reg: &'s Registry<E>,
    pub(crate) table: &'s Table,
    pub(crate) errors: Vec<Error>,
    /// `$var(name)` slots.
    pub(crate) vars: HashMap<String, usize>,
    /// `$avp(name)` slots.
    pub(crate) avps: HashMap<String, usize>,
    /// The block being compiled.
    pub(crate) block: usize,
    /// How many switches the statement being compiled is in.
    switches: usize,
}

impl<'s, E: Env> Compiler<'s, E> {
    pub(crate) fn new(reg: &'s Registry<E>, table: &'s Table) -> Self {
        Compiler {
            reg,
            table,
            errors: Vec::new(),
            vars: HashMap::new(),
            avps: HashMap::new(),
            block: 0,
            switches: 0,
        }
    }

    pub(crate) fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(Error::new(span, message));
    }

    /// Compiles the body of block `index`.
    pub(crate) fn block(&mut self, index: usize, body: &[ast::Stmt]) -> Body<E> {
        self.block = index;
        let mut out = Vec::new();
        for s in body {
            self.stmt(s, &mut out);
        }
        out.into()
    }

    fn body(&mut self, s: &ast::Stmt) -> Body<E> {
        let mut out = Vec::new();
        self.stmt(s, &mut out);
        out.into()
    }

    fn stmt(&mut self, s: &ast::Stmt, out: &mut Vec<Stmt<E>>) {
        match s {
            ast::Stmt::Block(b) => b.iter().for_each(|s| self.stmt(s, out)),
            ast::Stmt::If(cond, then, els) => {
                let test = self.test(cond);
                let then = self.body(then);
                let els = els.as_ref().map(|e| self.body(e)).unwrap_or_default();
                match test {
                    Test::Const(b) => out.extend(if b { then } else { els }),
                    Test::Pure(t) => out.push(stmt(move |c, x| {
                        run_body(if t(c, &x.frame) { &then } else { &els }, c, x)
                    })),
                    Test::Eval(t) => out.push(stmt(move |c, x| {
                        run_body(if t(c, x)? { &then } else { &els }, c, x)
                    })),
                }
            }
            ast::Stmt::Switch(subject, items) => out.push(self.switch(subject, items)),
            ast::Stmt::Break(span) => {
                if self.switches == 0 {
                    self.error(*span, "`break` outside switch");
                }
                out.push(stmt(|_, _| Err(Stop::Break)));
            }
            ast::Stmt::Return(value) => out.push(match value.as_ref().map(|e| self.expr(e)) {
                None => stmt(|_, _| Err(Stop::Return(1))),
                Some(Ex::Const(v)) => {
                    let code = v.as_int();
                    stmt(move |_, _| Err(Stop::Return(code)))
                }
                Some(Ex::Pure(p)) => stmt(move |c, x| Err(Stop::Return(p(c, &x.frame).as_int()))),
                Some(Ex::Eval(e)) => stmt(move |c, x| Err(Stop::Return(e(c, x)?.as_int()))),
            }),
            ast::Stmt::Exit => out.push(stmt(|_, _| Err(Stop::Exit))),
            ast::Stmt::Drop => out.push(stmt(|_, _| Err(Stop::Drop))),
            ast::Stmt::Assign(target, value) => {
                if let Some(s) = self.assign(target, value) {
                    out.push(s);
                }
            }
            ast::Stmt::Expr(e) => {
                if let Ex::Eval(e) = self.expr(e) {
                    out.push(stmt(move |c, x| e(c, x).map(drop)));
                }
            }
        }
    }

    /// `switch`: runs from the first matching label (or `default`) until `break`.
    fn switch(&mut self, subject: &ast::Expr, items: &[SwitchItem]) -> Stmt<E> {
        let subject = self.expr(subject);
        let mut labels = Vec::new();
        let mut default = None;
        let mut body = Vec::new();
        self.switches += 1;
        for item in items {
            match item {
                SwitchItem::Case(v) => labels.push((v.clone(), body.len())),
                SwitchItem::Default => default = Some(body.len()),
                SwitchItem::Stmt(s) => self.stmt(s, &mut body),
            }
        }
        self.switches -= 1;
        let body: Body<E> = body.into();
        let start = move |v: &Value<'_>| {
            labels
                .iter()
                .find(|(l, _)| equals(l, v))
                .map(|&(_, i)| i)
                .or(default)
        };
        match subject {
            Ex::Const(v) => {
                let from = start(&v);
                stmt(move |c, x| run_from(&body, from, c, x))
            }
            Ex::Pure(p) => stmt(move |c, x| {
                let from = start(&p(c, &x.frame));
                run_from(&body, from, c, x)
            }),
            Ex::Eval(e) => stmt(move |c, x| {
                let from = start(&e(c, x)?);
                run_from(&body, from, c, x)
            }),
        }
    }
}

/// Runs a switch body from `from`; `break` ends it.
fn run_from<E: Env>(
    body: &[Stmt<E>],
    from: Option<usize>,
    c: &mut E::Ctx<'_>,
    x: &mut Exec<'_, E>,
) -> Flow {
    let Some(rest) = from.and_then(|i| body.get(i..)) else {
        return Ok(());
    };
    match run_body(rest, c, x) {
        Err(Stop::Break) => Ok(()),
        flow => flow,
    }
}
