//! Splitting comma-separated header values (RFC 3261 §7.3.1).

use crate::syntax::trim_lws;

/// Iterates over the comma-separated elements of a header value, ignoring commas inside
/// quoted strings and `<…>`. Elements are trimmed; empty elements are yielded as empty
/// strings so that validation can reject them.
#[derive(Debug, Clone)]
pub struct ListIter<'a> {
    rest: Option<&'a str>,
}

impl<'a> ListIter<'a> {
    /// Starts splitting `value`.
    pub fn new(value: &'a str) -> Self {
        ListIter { rest: Some(value) }
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let b = s.as_bytes();
        let mut i = 0;
        while let Some(off) = memchr::memchr3(b',', b'"', b'<', &b[i..]) {
            i += off;
            match b[i] {
                b',' => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(trim_lws(&s[..i]));
                }
                b'"' => i = skip_quoted(b, i + 1),
                _ => i = memchr::memchr(b'>', &b[i..]).map_or(b.len(), |o| i + o + 1),
            }
            if i >= b.len() {
                break;
            }
        }
        self.rest = None;
        Some(trim_lws(s))
    }
}

/// Index just past the closing quote of a quoted string whose content starts at `i`.
fn skip_quoted(b: &[u8], mut i: usize) -> usize {
    while let Some(off) = memchr::memchr2(b'"', b'\\', &b[i..]) {
        i += off;
        if b[i] == b'"' {
            return i + 1;
        }
        i += 2;
        if i >= b.len() {
            break;
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_brackets() {
        let v: Vec<_> = ListIter::new("\"a, b\" <sip:x@y;p=1,2>;q=1 , <sip:z>").collect();
        assert_eq!(v, ["\"a, b\" <sip:x@y;p=1,2>;q=1", "<sip:z>"]);
        let v: Vec<_> = ListIter::new("a,,b").collect();
        assert_eq!(v, ["a", "", "b"]);
        let v: Vec<_> = ListIter::new("").collect();
        assert_eq!(v, [""]);
    }
}
