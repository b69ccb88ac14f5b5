//! Variables: resolved at load to the host's accessors or to slots, read and written.

use std::collections::HashMap;

use crate::ast::{Expr, VarRef};
use crate::combine::Ex;
use crate::compile::Compiler;
use crate::registry::{Env, GetFn, Host, SetFn, Var};
use crate::run::{pure, stmt, Stmt};
use crate::value::Value;

/// A variable, resolved.
enum Resolved<E: Env> {
    Host {
        get: GetFn<E>,
        set: Option<SetFn<E>>,
        param: String,
    },
    Script(usize),
    Avp(usize),
    RetCode,
}

impl<E: Env> Compiler<'_, E> {
    /// Finds a variable, reporting an unknown name or a parameter that does not fit.
    fn resolve(&mut self, v: &VarRef) -> Option<Resolved<E>> {
        let reg = self.reg;
        let Some(var) = reg.lookup_variable(&v.name) else {
            self.error(v.span, format!("unknown variable `${}`", v.name));
            return None;
        };
        let param = v.param.as_deref().unwrap_or_default();
        let wants = match var {
            Var::Script | Var::Avp => true,
            Var::RetCode => false,
            Var::Host(h) => h.param,
        };
        if !self.check_param(v, wants) {
            return None;
        }
        Some(match var {
            Var::Script => Resolved::Script(Self::slot(&mut self.vars, param)),
            Var::Avp => Resolved::Avp(Self::slot(&mut self.avps, param)),
            Var::RetCode => Resolved::RetCode,
            Var::Host(h) => Resolved::Host {
                get: h.get,
                set: h.set,
                param: param.to_owned(),
            },
        })
    }

    /// Reads a variable.
    pub(crate) fn read(&mut self, v: &VarRef) -> Ex<E> {
        Ex::Pure(match self.resolve(v) {
            None => return Ex::Const(Value::Null),
            Some(Resolved::Host { get, param, .. }) => pure::<E, _>(move |c, _| get(c, &param)),
            Some(Resolved::Script(slot)) => {
                pure::<E, _>(move |_, f| f.vars.get(slot).map_or(Value::Null, Value::reborrow))
            }
            Some(Resolved::Avp(slot)) => {
                pure::<E, _>(move |c, _| c.avps_ref().get(slot).reborrow())
            }
            Some(Resolved::RetCode) => pure::<E, _>(|_, f| Value::Int(f.rc)),
        })
    }

    /// `$name = value;`
    pub(crate) fn assign(&mut self, target: &VarRef, value: &Expr) -> Option<Stmt<E>> {
        let value = self.expr(value).into_eval();
        Some(match self.resolve(target)? {
            Resolved::Host {
                set: Some(set),
                param,
                ..
            } => {
                let name = target.name.clone();
                stmt(move |c, x| {
                    let v = value(c, x)?;
                    if !set(c, &param, v) {
                        tracing::warn!(target: "script", "value refused by ${name}: not assigned");
                    }
                    Ok(())
                })
            }
            Resolved::Host { set: None, .. } | Resolved::RetCode => {
                self.error(target.span, format!("`${}` is read-only", target.name));
                return None;
            }
            Resolved::Script(slot) => stmt(move |c, x| {
                let v = value(c, x)?;
                if let Some(var) = x.frame.vars.get_mut(slot) {
                    *var = v;
                }
                Ok(())
            }),
            Resolved::Avp(slot) => stmt(move |c, x| {
                let v = value(c, x)?;
                c.avps().set(slot, v);
                Ok(())
            }),
        })
    }

    /// The slot of `$var(name)` or `$avp(name)`.
    fn slot(map: &mut HashMap<String, usize>, name: &str) -> usize {
        let next = map.len();
        *map.entry(name.to_owned()).or_insert(next)
    }

    /// Reports a variable reference whose parameter does not fit, true when it fits.
    fn check_param(&mut self, v: &VarRef, wants: bool) -> bool {
        match (&v.param, wants) {
            (Some(p), true) if !p.is_empty() => true,
            (None, false) => true,
            (_, true) => {
                let msg = format!("`${0}` needs a parameter, as in `${0}(name)`", v.name);
                self.error(v.span, msg);
                false
            }
            (Some(_), false) => {
                self.error(v.span, format!("`${}` takes no parameter", v.name));
                false
            }
        }
    }
}
