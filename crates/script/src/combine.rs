//! Compiled expressions and conditions, and how operators combine them into closures. An
//! operand is a constant, a pure read (which may borrow the context: no allocation) or an
//! evaluation that calls functions (its value is owned).

use crate::ops::{truth, with_str};
use crate::registry::{Env, Host};
use crate::run::{eval, eval_test, pure, pure_test, Eval, EvalTest, Pure, PureTest};
use crate::value::Value;

/// A compiled expression.
pub(crate) enum Ex<E: Env> {
    Const(Value<'static>),
    Pure(Pure<E>),
    Eval(Eval<E>),
}

/// A compiled condition.
pub(crate) enum Test<E: Env> {
    Const(bool),
    Pure(PureTest<E>),
    Eval(EvalTest<E>),
}

/// What unary operators do.
pub(crate) trait Op1: Fn(&Value<'_>) -> Value<'static> + Send + Sync + 'static {}
impl<F: Fn(&Value<'_>) -> Value<'static> + Send + Sync + 'static> Op1 for F {}

/// What binary operators do.
pub(crate) trait Op2:
    Fn(&Value<'_>, &Value<'_>) -> Value<'static> + Send + Sync + 'static
{
}
impl<F: Fn(&Value<'_>, &Value<'_>) -> Value<'static> + Send + Sync + 'static> Op2 for F {}

impl<E: Env> Ex<E> {
    /// The expression as an evaluation giving an owned value.
    pub(crate) fn into_eval(self) -> Eval<E> {
        match self {
            Ex::Const(v) => eval(move |_, _| Ok(v.clone())),
            Ex::Pure(p) => eval(move |c, x| Ok(p(c, &x.frame).into_owned())),
            Ex::Eval(e) => e,
        }
    }

    /// The expression's truth.
    pub(crate) fn test(self) -> Test<E> {
        match self {
            Ex::Const(v) => Test::Const(v.is_true()),
            Ex::Pure(p) => Test::Pure(pure_test(move |c, f| p(c, f).is_true())),
            Ex::Eval(e) => Test::Eval(eval_test(move |c, x| Ok(e(c, x)?.is_true()))),
        }
    }

    /// Applies a unary operator.
    pub(crate) fn map(self, op: impl Op1) -> Ex<E> {
        match self {
            Ex::Const(v) => Ex::Const(op(&v)),
            Ex::Pure(p) => Ex::Pure(pure(move |c, f| op(&p(c, f)))),
            Ex::Eval(e) => Ex::Eval(eval(move |c, x| Ok(op(&e(c, x)?)))),
        }
    }

    /// `self == myself` (`!=` when `negate`).
    pub(crate) fn myself(self, negate: bool) -> Ex<E> {
        fn is_me<H: Host>(h: &H, v: &Value<'_>, negate: bool) -> Value<'static> {
            truth((!v.is_null() && with_str(v, |s| h.is_myself(s))) != negate)
        }
        match self {
            Ex::Const(v) => Ex::Pure(pure(move |c, _| is_me(c, &v, negate))),
            Ex::Pure(p) => Ex::Pure(pure(move |c, f| is_me(c, &p(c, f), negate))),
            Ex::Eval(e) => Ex::Eval(eval(move |c, x| {
                let v = e(c, x)?;
                Ok(is_me(c, &v, negate))
            })),
        }
    }

    /// Applies a binary operator, evaluating the left side first.
    pub(crate) fn binary(self, r: Ex<E>, op: impl Op2) -> Ex<E> {
        use Ex::{Const as C, Eval as X, Pure as P};
        match (self, r) {
            (C(a), C(b)) => C(op(&a, &b)),
            (C(a), P(q)) => P(pure(move |c, f| op(&a, &q(c, f)))),
            (P(p), C(b)) => P(pure(move |c, f| op(&p(c, f), &b))),
            (P(p), P(q)) => P(pure(move |c, f| op(&p(c, f), &q(c, f)))),
            (C(a), X(q)) => X(eval(move |c, x| Ok(op(&a, &q(c, x)?)))),
            (X(p), C(b)) => X(eval(move |c, x| Ok(op(&p(c, x)?, &b)))),
            (X(p), P(q)) => X(eval(move |c, x| {
                let a = p(c, x)?;
                Ok(op(&a, &q(c, &x.frame)))
            })),
            (l, r) => {
                let (p, q) = (l.into_eval(), r.into_eval());
                X(eval(move |c, x| {
                    let a = p(c, x)?;
                    Ok(op(&a, &q(c, x)?))
                }))
            }
        }
    }
}

impl<E: Env> Test<E> {
    /// The condition as an evaluation.
    fn into_eval(self) -> EvalTest<E> {
        match self {
            Test::Const(b) => eval_test(move |_, _| Ok(b)),
            Test::Pure(t) => eval_test(move |c, x| Ok(t(c, &x.frame))),
            Test::Eval(t) => t,
        }
    }

    /// The condition as a value: 1 or 0.
    pub(crate) fn into_ex(self) -> Ex<E> {
        match self {
            Test::Const(b) => Ex::Const(truth(b)),
            Test::Pure(t) => Ex::Pure(pure(move |c, f| truth(t(c, f)))),
            Test::Eval(t) => Ex::Eval(eval(move |c, x| Ok(truth(t(c, x)?)))),
        }
    }

    /// `!`.
    pub(crate) fn not(self) -> Test<E> {
        match self {
            Test::Const(b) => Test::Const(!b),
            Test::Pure(t) => Test::Pure(pure_test(move |c, f| !t(c, f))),
            Test::Eval(t) => Test::Eval(eval_test(move |c, x| Ok(!t(c, x)?))),
        }
    }

    /// `&&` (`is_and`) or `||`, short-circuit.
    pub(crate) fn logic(self, r: Test<E>, is_and: bool) -> Test<E> {
        // With `&&` a false side decides, with `||` a true one.
        let decisive = !is_and;
        match (self, r) {
            (Test::Const(a), r) => {
                if a == decisive {
                    Test::Const(a)
                } else {
                    r
                }
            }
            (Test::Pure(l), Test::Const(b)) => {
                if b == decisive {
                    Test::Const(b)
                } else {
                    Test::Pure(l)
                }
            }
            (Test::Eval(l), Test::Const(b)) => {
                if b == decisive {
                    Test::Eval(eval_test(move |c, x| l(c, x).map(|_| b)))
                } else {
                    Test::Eval(l)
                }
            }
            (Test::Pure(l), Test::Pure(r)) => Test::Pure(pure_test(move |c, f| {
                let a = l(c, f);
                if a == decisive {
                    a
                } else {
                    r(c, f)
                }
            })),
            (l, r) => {
                let (l, r) = (l.into_eval(), r.into_eval());
                Test::Eval(eval_test(move |c, x| {
                    let a = l(c, x)?;
                    if a == decisive {
                        Ok(a)
                    } else {
                        r(c, x)
                    }
                }))
            }
        }
    }
}
