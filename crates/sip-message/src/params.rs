//! `;name=value` parameter lists of URIs and header fields, kept as borrowed text.

use crate::error::SyntaxError;
use crate::syntax::{check_uri_part, is_gen_value, is_token, trim_lws, unquote, Scanner, UriPart};

/// A parameter list as written, starting at its first `;` (or empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

/// One parameter: its name and, if it has one, its value as written (quotes kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name.
    pub name: &'a str,
    /// The value as written, quotes included; `None` for a flag such as `lr`.
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value with surrounding quotes and escapes removed.
    pub fn unquoted(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.value.map(
            |v| match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(inner) => unquote(inner),
                None => v.into(),
            },
        )
    }
}

/// Whether parameters follow URI rules (no white space, URI characters) or header rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamRules {
    Uri,
    Header,
}

impl<'a> Params<'a> {
    /// Validates `raw` (empty, or starting with `;`) and wraps it.
    pub(crate) fn parse(raw: &'a str, rules: ParamRules) -> Result<Params<'a>, SyntaxError> {
        let raw = match rules {
            ParamRules::Uri => raw,
            ParamRules::Header => trim_lws(raw),
        };
        if !raw.is_empty() && !raw.starts_with(';') {
            return Err(SyntaxError("expected ';' before parameter"));
        }
        let mut at = 0;
        while at < raw.len() {
            let (param, next) = split_one(raw, at)?;
            check(param, rules)?;
            at = next;
        }
        Ok(Params { raw })
    }

    /// Wraps a list that [`parse`](Self::parse) accepted before.
    pub(crate) fn checked(raw: &'a str) -> Params<'a> {
        Params { raw }
    }

    /// The list as written, leading `;` included.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            raw: self.raw,
            at: 0,
        }
    }

    /// Finds a parameter by name, case-insensitively: `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.find(name).map(|p| p.value)
    }

    /// Finds a parameter by name, case-insensitively.
    pub fn find(&self, name: &str) -> Option<Param<'a>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// True when a parameter of that name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over a validated parameter list.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    raw: &'a str,
    at: usize,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;
    fn next(&mut self) -> Option<Param<'a>> {
        if self.at >= self.raw.len() {
            return None;
        }
        let (text, next) = split_one(self.raw, self.at).ok()?;
        self.at = next;
        Some(name_value(text))
    }
}

/// Returns the text of the parameter whose `;` is at `at`, and where the next one starts.
fn split_one(raw: &str, at: usize) -> Result<(&str, usize), SyntaxError> {
    let b = raw.as_bytes();
    let start = at + 1;
    let mut i = start;
    loop {
        match memchr::memchr2(b';', b'"', &b[i..]) {
            None => return Ok((&raw[start..], raw.len())),
            Some(off) if b[i + off] == b';' => return Ok((&raw[start..i + off], i + off)),
            Some(off) => {
                let mut s = Scanner::new(raw);
                s.set_pos(i + off);
                s.quoted_string()?;
                i = s.pos();
            }
        }
    }
}

fn name_value(text: &str) -> Param<'_> {
    match crate::syntax::split_byte(text, b'=') {
        Some((n, v)) => Param {
            name: trim_lws(n),
            value: Some(trim_lws(v)),
        },
        None => Param {
            name: trim_lws(text),
            value: None,
        },
    }
}

fn check(text: &str, rules: ParamRules) -> Result<(), SyntaxError> {
    let p = name_value(text);
    match rules {
        ParamRules::Uri => {
            if p.name.is_empty() {
                return Err(SyntaxError("empty URI parameter"));
            }
            check_uri_part(p.name, UriPart::Param)?;
            if let Some(v) = p.value {
                if v.is_empty() {
                    return Err(SyntaxError("empty URI parameter value"));
                }
                check_uri_part(v, UriPart::Param)?;
            }
        }
        ParamRules::Header => {
            if !is_token(p.name) {
                return Err(SyntaxError("invalid parameter name"));
            }
            if let Some(v) = p.value {
                if v.starts_with('"') {
                    let mut s = Scanner::new(v);
                    s.quoted_string()?;
                    if !s.at_end() {
                        return Err(SyntaxError("junk after quoted parameter value"));
                    }
                } else if !is_gen_value(v) {
                    return Err(SyntaxError("invalid parameter value"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_with_lws() {
        let p = Params::parse(" ;  tag    = 1918181833n", ParamRules::Header).unwrap();
        assert_eq!(p.get("TAG"), Some(Some("1918181833n")));
        let p = Params::parse(
            "; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33",
            ParamRules::Header,
        )
        .unwrap();
        let v: Vec<_> = p.iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(
            v,
            [
                ("newparam", Some("newvalue")),
                ("secondparam", None),
                ("q", Some("0.33"))
            ]
        );
    }

    #[test]
    fn quoted_values_may_hold_semicolons() {
        let p = Params::parse(";a=\"x;y=z\";b", ParamRules::Header).unwrap();
        assert_eq!(p.get("a"), Some(Some("\"x;y=z\"")));
        assert_eq!(p.find("a").unwrap().unquoted().unwrap(), "x;y=z");
        assert_eq!(p.get("b"), Some(None));
    }

    #[test]
    fn empty_params_rejected() {
        assert!(Params::parse(";;", ParamRules::Header).is_err());
        assert!(Params::parse(";a;", ParamRules::Header).is_err());
        assert!(Params::parse(";a=", ParamRules::Header).is_err());
        assert!(Params::parse(";;", ParamRules::Uri).is_err());
        assert!(Params::parse("x", ParamRules::Uri).is_err());
    }

    #[test]
    fn ipv6_values() {
        let p = Params::parse(";received=2001:db8::9:255;branch=z9", ParamRules::Header).unwrap();
        assert_eq!(p.get("received"), Some(Some("2001:db8::9:255")));
    }
}
