//! The values a script computes with.

use std::borrow::Cow;
use std::fmt;

/// A script value: nothing, an integer or a string. Strings read from a message borrow it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Value<'a> {
    /// No value (an absent header, an unset variable, `null`).
    #[default]
    Null,
    /// A 64-bit signed integer.
    Int(i64),
    /// A string.
    Str(Cow<'a, str>),
}

impl<'a> Value<'a> {
    /// The integer this value holds: an integer, or a string holding one (`"486"`); `None`
    /// for `null` and other strings.
    pub fn number(&self) -> Option<i64> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.parse().ok(),
        }
    }

    /// The value as an integer: [`Value::number`], or 0 when it holds none.
    pub fn as_int(&self) -> i64 {
        self.number().unwrap_or(0)
    }

    /// The value as a string: integers formatted, `null` as "".
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Value::Null => Cow::Borrowed(""),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Str(s) => Cow::Borrowed(s),
        }
    }

    /// The script's truth: an integer greater than 0, a non-empty string; `null` is false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Int(i) => *i > 0,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The same value, borrowing this one's string (no allocation).
    pub fn reborrow(&self) -> Value<'_> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(*i),
            Value::Str(s) => Value::Str(Cow::Borrowed(s)),
        }
    }

    /// The same value, owning its string.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(i),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        }
    }
}

impl fmt::Display for Value<'_> {
    /// The value as [`Value::as_str`] gives it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl<'a> From<Cow<'a, str>> for Value<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Value::Str(s)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    /// `None` is `null`.
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
