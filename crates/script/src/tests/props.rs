//! Whatever the input, compiling never panics.

use proptest::prelude::*;

use super::env::compile;

/// Pieces of the language, to build plausible nonsense from.
const TOKENS: &[&str] = &[
    "request_route",
    "route",
    "reply_route",
    "onreply_route",
    "failure_route",
    "branch_route",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    ";",
    ":",
    ",",
    "if",
    "else",
    "switch",
    "case",
    "default",
    "break",
    "return",
    "exit",
    "drop",
    "=",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "=~",
    "!~",
    "+",
    "-",
    "!",
    "&&",
    "||",
    "null",
    "uri",
    "myself",
    "R",
    "F",
    "f",
    "g",
    "t_relay",
    "setflag",
    "log",
    "xlog",
    "L_ERR",
    "t_on_failure",
    "is_method",
    "$rm",
    "$ru",
    "$var(x)",
    "$avp(a)",
    "$hdr(X)",
    "$rc",
    "$",
    "0",
    "64",
    "-1",
    "\"s\"",
    "\"$rU@x\"",
    "'r'",
    "\"(\"",
    "#c\n",
    "/* c */",
    "\"",
    "'",
    "/*",
    "\n",
    " ",
];

proptest! {
    #[test]
    fn random_text_never_panics(src in "\\PC{0,200}") {
        let _ = compile(&src);
    }

    #[test]
    fn token_soup_never_panics(picks in proptest::collection::vec(0..TOKENS.len(), 0..80)) {
        let src: Vec<&str> = picks.into_iter().map(|i| TOKENS[i]).collect();
        let _ = compile(&src.join(" "));
    }

    #[test]
    fn soup_inside_a_request_route_never_panics(
        picks in proptest::collection::vec(0..TOKENS.len(), 0..60),
    ) {
        let body: Vec<&str> = picks.into_iter().map(|i| TOKENS[i]).collect();
        let src = format!("request_route {{ {} }}\nroute[R] {{ }}\nfailure_route[F] {{ }}", body.join(" "));
        if let Ok(script) = compile(&src) {
            let mut ctx = super::env::Ctx::new("INVITE", "sip:a@b");
            script.run_request(&mut ctx);
        }
    }
}
