//! The language's own functions: `setflag`, `resetflag`, `isflag`, `log` and `xlog`.

use crate::ast::{Call, Expr};
use crate::combine::Ex;
use crate::compile::Compiler;
use crate::registry::{Builtin, Env, Host};
use crate::run::eval;
use crate::value::Value;

/// `log` levels.
#[derive(Debug, Clone, Copy)]
enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

const LEVELS: &str = "L_ERR, L_WARN, L_NOTICE, L_INFO or L_DBG";

fn emit(level: Level, text: &Value<'_>) {
    match level {
        Level::Error => tracing::error!(target: "script", "{text}"),
        Level::Warn => tracing::warn!(target: "script", "{text}"),
        Level::Info => tracing::info!(target: "script", "{text}"),
        Level::Debug => tracing::debug!(target: "script", "{text}"),
    }
}

impl<E: Env> Compiler<'_, E> {
    pub(crate) fn builtin(&mut self, b: Builtin, call: &Call) -> Ex<E> {
        match b {
            Builtin::Log => self.log(call),
            _ => self.flag(b, call),
        }
    }

    fn flag(&mut self, b: Builtin, call: &Call) -> Ex<E> {
        if !self.arity(call, 1, 1) {
            return Ex::Const(Value::Null);
        }
        let errors = self.errors.len();
        let arg = &call.args[0];
        let bit = match self.expr(arg) {
            Ex::Const(Value::Int(n)) if (0..64).contains(&n) => n,
            Ex::Const(Value::Int(n)) => {
                self.error(arg.span, format!("flag {n} out of range (0 to 63)"));
                return Ex::Const(Value::Null);
            }
            _ => {
                if self.errors.len() == errors {
                    let msg = format!(
                        "argument 1 of {} must be a flag number (0 to 63)",
                        call.name
                    );
                    self.error(arg.span, msg);
                }
                return Ex::Const(Value::Null);
            }
        };
        let mask = 1u64 << bit;
        Ex::Eval(match b {
            Builtin::SetFlag => eval::<E, _>(move |c, x| {
                *c.flags() |= mask;
                x.frame.rc = 1;
                Ok(Value::Int(1))
            }),
            Builtin::ResetFlag => eval::<E, _>(move |c, x| {
                *c.flags() &= !mask;
                x.frame.rc = 1;
                Ok(Value::Int(1))
            }),
            _ => eval::<E, _>(move |c, x| {
                let rc = if c.flags_ref() & mask != 0 { 1 } else { -1 };
                x.frame.rc = rc;
                Ok(Value::Int(rc))
            }),
        })
    }

    fn log(&mut self, call: &Call) -> Ex<E> {
        if !self.arity(call, 1, 2) {
            return Ex::Const(Value::Null);
        }
        let (level, text) = match &call.args[..] {
            [level, text] => (self.level(level), text),
            [text, ..] => (Level::Info, text),
            [] => return Ex::Const(Value::Null),
        };
        Ex::Eval(match self.expr(text) {
            Ex::Const(v) => eval::<E, _>(move |_, x| {
                emit(level, &v);
                x.frame.rc = 1;
                Ok(Value::Int(1))
            }),
            Ex::Pure(p) => eval::<E, _>(move |c, x| {
                emit(level, &p(c, &x.frame));
                x.frame.rc = 1;
                Ok(Value::Int(1))
            }),
            Ex::Eval(e) => eval::<E, _>(move |c, x| {
                emit(level, &e(c, x)?);
                x.frame.rc = 1;
                Ok(Value::Int(1))
            }),
        })
    }

    fn level(&mut self, e: &Expr) -> Level {
        let text = e.literal_text();
        match text.as_deref() {
            Some("L_ERR") => Level::Error,
            Some("L_WARN") => Level::Warn,
            Some("L_NOTICE" | "L_INFO") => Level::Info,
            Some("L_DBG") => Level::Debug,
            Some(other) => {
                self.error(e.span, format!("unknown log level `{other}` ({LEVELS})"));
                Level::Info
            }
            None => {
                self.error(e.span, format!("the log level must be {LEVELS}"));
                Level::Info
            }
        }
    }
}
