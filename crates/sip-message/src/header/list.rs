//! Splitting comma-separated header values (RFC 3261 §7.3.1).

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
        let (mut quoted, mut angle) = (false, false);
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(crate::syntax::trim_lws(&s[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(crate::syntax::trim_lws(s))
    }
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
