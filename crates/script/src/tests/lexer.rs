use crate::ast::{Part, VarRef};
use crate::diag::Error;
use crate::diag::Span;
use crate::lexer::{Lexer, Tok, Token};

/// The tokens of `src`, ending with `Tok::Eof`.
pub(super) fn lex(src: &str) -> Result<Vec<Token>, Error> {
    let mut lexer = Lexer::new(src, 0);
    let mut out = Vec::new();
    loop {
        let t = lexer.next_token()?;
        let eof = t.tok == Tok::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}

/// The tokens of `src` without spans, `Eof` left out.
fn toks(src: &str) -> Vec<Tok> {
    let mut t: Vec<Tok> = lex(src).unwrap().into_iter().map(|t| t.tok).collect();
    assert_eq!(t.pop(), Some(Tok::Eof));
    t
}

fn ident(s: &str) -> Tok {
    Tok::Ident(s.to_owned())
}

fn text(s: &str) -> Part {
    Part::Text(s.to_owned())
}

fn var(name: &str, param: Option<&str>, start: usize, end: usize) -> VarRef {
    VarRef {
        name: name.into(),
        param: param.map(Into::into),
        span: Span::new(start, end),
    }
}

#[test]
fn symbols_longest_first() {
    let want: Vec<Tok> = [
        "==", "=", "!=", "!~", "!", "=~", "<=", "<", ">=", ">", "&&", "||",
    ]
    .into_iter()
    .map(Tok::Sym)
    .collect();
    assert_eq!(toks("== = != !~ ! =~ <= < >= > && ||"), want);
    assert_eq!(toks("a==b"), vec![ident("a"), Tok::Sym("=="), ident("b")]);
}

#[test]
fn identifiers_and_integers() {
    let lexed = lex("request_route _x9 486").unwrap();
    assert_eq!(lexed[0].tok, ident("request_route"));
    assert_eq!(lexed[1].tok, ident("_x9"));
    assert_eq!(lexed[0].span, Span::new(0, 13));
    assert_eq!(lexed[1].span, Span::new(14, 17));
    assert_eq!(lexed[2].tok, Tok::Int(486));
    // A leading minus is an operator.
    assert_eq!(toks("-5"), vec![Tok::Sym("-"), Tok::Int(5)]);
}

#[test]
fn comments_are_skipped() {
    let src = "# line\na // to the end\n/* block\n */ b # c #!d";
    assert_eq!(toks(src), vec![ident("a"), ident("b")]);
}

#[test]
fn directives_start_their_line() {
    let src = "#!KAMAILIO\n  #!ifdef X # x \r\na #!define Y\n/*\n#!endif\n*/";
    let want = vec![
        Tok::Directive("KAMAILIO".into()),
        Tok::Directive("ifdef X # x".into()),
        ident("a"),
    ];
    assert_eq!(toks(src), want);
}

#[test]
fn double_quoted_escapes() {
    assert_eq!(
        toks(r#""a\"b\\c\n\r\t\$d""#),
        vec![Tok::Str(vec![text("a\"b\\c\n\r\t$d")])]
    );
    // Other backslashes are kept, for regular expressions.
    assert_eq!(toks(r#""^\+?49""#), vec![Tok::Str(vec![text(r"^\+?49")])]);
    assert_eq!(toks(r#""""#), vec![Tok::Str(vec![text("")])]);
}

#[test]
fn double_quoted_interpolation() {
    let src = r#""sip:$rU@gw.example.net""#;
    let want = vec![
        text("sip:"),
        Part::Var(var("rU", None, 5, 8)),
        text("@gw.example.net"),
    ];
    assert_eq!(toks(src), vec![Tok::Str(want)]);
    let src = r#""$hdr(User-Agent)x""#;
    let want = vec![Part::Var(var("hdr", Some("User-Agent"), 1, 17)), text("x")];
    assert_eq!(toks(src), vec![Tok::Str(want)]);
    // `$` not followed by a letter is a plain `$`.
    assert_eq!(
        toks(r#""5$ and $1 ^a$""#),
        vec![Tok::Str(vec![text("5$ and $1 ^a$")])]
    );
}

#[test]
fn single_quoted_raw() {
    assert_eq!(
        toks(r"'a\n$rU\'b'"),
        vec![Tok::Str(vec![text(r"a\n$rU'b")])]
    );
}

#[test]
fn variables() {
    assert_eq!(toks("$ru"), vec![Tok::Var(var("ru", None, 0, 3))]);
    assert_eq!(
        toks("$avp(caller)"),
        vec![Tok::Var(var("avp", Some("caller"), 0, 12))]
    );
    assert_eq!(
        toks("$var( x )=1")[0],
        Tok::Var(var("var", Some("x"), 0, 9))
    );
}

#[test]
fn errors() {
    let err = |src: &str| lex(src).unwrap_err();
    assert_eq!(err("a \"open").message, "unterminated string");
    assert_eq!(err("a \"open").span, Span::new(2, 3));
    assert_eq!(err("'open").message, "unterminated string");
    assert_eq!(err("x /* y").message, "unterminated comment");
    assert_eq!(err("x @ y").message, "unexpected character `@`");
    assert_eq!(err("x é").span, Span::new(2, 4));
    assert_eq!(err("99999999999999999999").message, "integer too large");
    assert_eq!(err("$ x").message, "expected a variable name after `$`");
    assert_eq!(err("$hdr(X").message, "missing `)` after `$hdr(`");
}
