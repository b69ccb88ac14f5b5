//! The operators' semantics on values (docs/routing.md, "Expressions"). Nothing here
//! allocates except string concatenation.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::io::Write;

use regex::Regex;

use crate::value::Value;

/// 1 for true, 0 for false.
pub(crate) fn truth(b: bool) -> Value<'static> {
    Value::Int(i64::from(b))
}

/// Calls `f` with the value as a string, formatting integers on the stack; `null` is "".
pub(crate) fn with_str<R>(v: &Value<'_>, f: impl FnOnce(&str) -> R) -> R {
    match v {
        Value::Null => f(""),
        Value::Str(s) => f(s),
        Value::Int(i) => {
            let mut buf = [0u8; 24];
            let mut w = &mut buf[..];
            // 24 bytes hold any i64, so neither the write nor the UTF-8 check can fail.
            let _ = write!(w, "{i}");
            let len = 24 - w.len();
            f(std::str::from_utf8(&buf[..len]).unwrap_or_default())
        }
    }
}

/// `==`: integers as numbers, an integer and a string holding one as numbers, `null` only
/// equal to `null`, strings exactly.
pub(crate) fn equals(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(i), Value::Str(s)) | (Value::Str(s), Value::Int(i)) => {
            s.parse::<i64>() == Ok(*i)
        }
        (Value::Str(x), Value::Str(y)) => x == y,
    }
}

/// `<` `>` `<=` `>=`: numbers when both sides are (an integer, or a string holding one
/// compared with an integer), else strings (`null` is "").
pub(crate) fn compare(a: &Value<'_>, b: &Value<'_>) -> Ordering {
    let numbers = match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some((*x, *y)),
        (Value::Int(x), Value::Str(s)) => s.parse().ok().map(|y| (*x, y)),
        (Value::Str(s), Value::Int(y)) => s.parse().ok().map(|x| (x, *y)),
        _ => None,
    };
    match numbers {
        Some((x, y)) => x.cmp(&y),
        None => with_str(a, |x| with_str(b, |y| x.cmp(y))),
    }
}

/// `+`: concatenation when either side is a string, else integer addition (`null` is 0).
pub(crate) fn add(a: &Value<'_>, b: &Value<'_>) -> Value<'static> {
    match (a, b) {
        (Value::Str(_), _) | (_, Value::Str(_)) => {
            let mut s = String::with_capacity(16);
            push(&mut s, a);
            push(&mut s, b);
            Value::Str(Cow::Owned(s))
        }
        _ => Value::Int(a.as_int().wrapping_add(b.as_int())),
    }
}

/// Binary `-`: integer subtraction (non-numbers are 0).
pub(crate) fn sub(a: &Value<'_>, b: &Value<'_>) -> Value<'static> {
    Value::Int(a.as_int().wrapping_sub(b.as_int()))
}

/// Unary `-`.
pub(crate) fn neg(a: &Value<'_>) -> Value<'static> {
    Value::Int(a.as_int().wrapping_neg())
}

/// Appends a value to a string as `Value::as_str` would give it.
pub(crate) fn push(s: &mut String, v: &Value<'_>) {
    with_str(v, |t| s.push_str(t));
}

/// `x =~ re`: `null` matches nothing.
pub(crate) fn matches(re: &Regex, v: &Value<'_>) -> bool {
    !v.is_null() && with_str(v, |s| re.is_match(s))
}
