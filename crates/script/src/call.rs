//! Function calls: checked against the registry, arguments typed and, when constant,
//! built once at load.

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::ast::{Call, Expr};
use crate::combine::Ex;
use crate::compile::Compiler;
use crate::registry::{ArgType, Env, Func, Function, RouteKind, RouteMask};
use crate::run::{eval, Eval};
use crate::value::Value;

/// A compiled argument.
enum Arg<E: Env> {
    Const(Value<'static>),
    /// Evaluated at each call and passed as a string.
    Str(Eval<E>),
    /// Evaluated at each call and passed as an integer.
    Int(Eval<E>),
}

impl<E: Env> Compiler<'_, E> {
    /// A function call: gives its return code, which also becomes `$rc`.
    pub(crate) fn call(&mut self, call: &Call) -> Ex<E> {
        let reg = self.reg;
        match reg.lookup_function(&call.name) {
            None => {
                self.error(call.span, format!("unknown function `{}`", call.name));
                self.skip_args(&call.args);
                Ex::Const(Value::Null)
            }
            Some(Func::Builtin(b)) => self.builtin(*b, call),
            Some(Func::Host(f)) => self.host_call(f, call),
        }
    }

    /// Compiles arguments only to report their errors.
    pub(crate) fn skip_args(&mut self, args: &[Expr]) {
        for a in args {
            self.expr(a);
        }
    }

    /// Checks the number of arguments; reports and gives false when it is wrong.
    pub(crate) fn arity(&mut self, call: &Call, min: usize, max: usize) -> bool {
        let given = call.args.len();
        if (min..=max).contains(&given) {
            return true;
        }
        let expected = match (min, max) {
            (_, 0) => "no arguments".to_owned(),
            (1, 1) => "1 argument".to_owned(),
            (a, b) if a == b => format!("{a} arguments"),
            (a, b) => format!("{a} to {b} arguments"),
        };
        self.error(
            call.span,
            format!("`{}` takes {expected}, {given} given", call.name),
        );
        self.skip_args(&call.args);
        false
    }

    fn host_call(&mut self, f: &Function<E>, call: &Call) -> Ex<E> {
        if let Some(place) = self.refused_in(f.routes) {
            self.error(call.span, format!("`{}` cannot be used in {place}", f.name));
        }
        if !self.arity(call, f.required, f.args.len()) {
            return Ex::Const(Value::Null);
        }
        let args: Vec<Arg<E>> = call
            .args
            .iter()
            .zip(f.args)
            .enumerate()
            .map(|(i, (a, ty))| self.arg(f.name, i + 1, a, *ty))
            .collect();
        let func = f.call;
        if args.iter().all(|a| matches!(a, Arg::Const(_))) {
            let values: Box<[Value<'static>]> = args
                .into_iter()
                .map(|a| match a {
                    Arg::Const(v) => v,
                    Arg::Str(_) | Arg::Int(_) => Value::Null,
                })
                .collect();
            return Ex::Eval(eval(move |c, x| {
                let rc = func(c, &values);
                x.frame.rc = rc;
                Ok(Value::Int(rc))
            }));
        }
        Ex::Eval(eval(move |c, x| {
            let mut values: SmallVec<[Value<'_>; 4]> = SmallVec::new();
            for a in &args {
                values.push(match a {
                    Arg::Const(v) => v.reborrow(),
                    Arg::Str(e) => match e(c, x)? {
                        Value::Null => Value::Str(Cow::Borrowed("")),
                        Value::Int(i) => Value::from(i.to_string()),
                        s => s,
                    },
                    Arg::Int(e) => Value::Int(e(c, x)?.as_int()),
                });
            }
            let rc = func(c, &values);
            x.frame.rc = rc;
            Ok(Value::Int(rc))
        }))
    }

    /// Argument `n` (from 1) of function `name`, of type `ty`.
    fn arg(&mut self, name: &str, n: usize, a: &Expr, ty: ArgType) -> Arg<E> {
        let errors = self.errors.len();
        let must = |what: &str| format!("argument {n} of {name} must be {what}");
        match ty {
            ArgType::Str => match self.expr(a) {
                Ex::Const(v) => Arg::Const(Value::from(v.as_str().into_owned())),
                other => Arg::Str(other.into_eval()),
            },
            ArgType::Int => match self.expr(a) {
                Ex::Const(v) => {
                    let number = v.number();
                    if number.is_none() && self.errors.len() == errors {
                        self.error(a.span, must("an integer"));
                    }
                    Arg::Const(Value::Int(number.unwrap_or(0)))
                }
                other => Arg::Int(other.into_eval()),
            },
            ArgType::OneOf(words) => {
                let text = a.literal_text();
                match words.iter().find(|w| text.as_deref() == Some(**w)) {
                    Some(w) => Arg::Const(Value::Str(Cow::Borrowed(w))),
                    None => {
                        let list: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                        self.error(a.span, must(&format!("one of {}", list.join(", "))));
                        Arg::Const(Value::Null)
                    }
                }
            }
            ArgType::Route(kind) => {
                let Some(target) = a.literal_text() else {
                    self.error(a.span, must("a route name"));
                    return Arg::Const(Value::Null);
                };
                match self.table.find(kind, &target) {
                    Some(id) => Arg::Const(Value::Int(id as i64)),
                    None => {
                        self.error(a.span, format!("unknown {} `{target}`", kind.keyword()));
                        Arg::Const(Value::Null)
                    }
                }
            }
        }
    }

    /// Describes where a function is refused, or `None` when every kind of block that runs
    /// the current one allows `allowed`.
    fn refused_in(&self, allowed: RouteMask) -> Option<String> {
        let entry = &self.table.entries[self.block];
        let kinds = [
            RouteKind::Request,
            RouteKind::Reply,
            RouteKind::Failure,
            RouteKind::Branch,
        ];
        let kind = kinds
            .into_iter()
            .find(|k| !allowed.contains(k.mask()) && entry.mask.contains(k.mask()))?;
        let kw = kind.keyword();
        Some(match entry.kind {
            RouteKind::Sub if entry.called => {
                format!("{kw} ({} is called from {kw})", entry.label())
            }
            RouteKind::Sub => format!("{kw} ({} is checked as if {kw} called it)", entry.label()),
            _ => kw.to_owned(),
        })
    }
}
