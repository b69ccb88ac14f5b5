//! The CSeq header (RFC 3261 §20.16).

use crate::error::SyntaxError;
use crate::method::Method;
use crate::syntax::{parse_u64, Scanner};

/// `CSeq: 4711 INVITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number; RFC 3261 requires it to fit in 32 bits.
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value.
    pub fn parse(s: &'a str) -> Result<CSeq<'a>, SyntaxError> {
        let mut sc = Scanner::new(s);
        sc.skip_lws();
        let digits = sc.take_while(|b| b.is_ascii_digit());
        let seq = parse_u64(digits)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(SyntaxError("sequence number missing or larger than 2^32-1"))?;
        if !sc.skip_lws() {
            return Err(SyntaxError("expected space after sequence number"));
        }
        let method = Method::from_token(sc.token("missing method")?);
        sc.skip_lws();
        if !sc.at_end() {
            return Err(SyntaxError("junk after method"));
        }
        Ok(CSeq { seq, method })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        assert_eq!(
            CSeq::parse("0009\r\n  INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert_eq!(CSeq::parse("4294967295 FOO").unwrap().seq, u32::MAX);
        for bad in [
            "36893488147419103232 REGISTER",
            "4294967296 A",
            "1",
            "INVITE",
            "1 INVITE x",
            "-1 A",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
    }
}
