use super::lexer::lex;
use crate::ast::{Block, Expr, ExprKind, Part, Stmt, SwitchItem};
use crate::diag::Error;
use crate::registry::RouteKind;
use crate::value::Value;

fn parse(src: &str) -> Result<Vec<Block>, Error> {
    crate::parser::parse(lex(src)?)
}

/// An expression as an s-expression.
fn show(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Str(parts) => {
            let p: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => format!("{t:?}"),
                    Part::Var(v) => format!("${}", v.name),
                })
                .collect();
            p.join("+")
        }
        ExprKind::Null => "null".into(),
        ExprKind::Uri => "uri".into(),
        ExprKind::Myself => "myself".into(),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Var(v) => match &v.param {
            Some(p) => format!("${}({p})", v.name),
            None => format!("${}", v.name),
        },
        ExprKind::Call(c) => {
            let args: Vec<String> = c.args.iter().map(show).collect();
            format!("{}({})", c.name, args.join(" "))
        }
        ExprKind::Route(n) => format!("route({n})"),
        ExprKind::Unary(op, a) => format!("({op:?} {})", show(a)),
        ExprKind::Binary(op, a, b) => format!("({op:?} {} {})", show(a), show(b)),
    }
}

fn blocks(src: &str) -> Vec<Block> {
    parse(src).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The expression of `if (EXPR);` in a request_route.
fn cond(expr: &str) -> String {
    let b = blocks(&format!("request_route {{ if ({expr}); }}"));
    match &b[0].body[0] {
        Stmt::If(c, _, _) => show(c),
        s => panic!("{s:?}"),
    }
}

#[test]
fn precedence() {
    assert_eq!(cond("a() || b() && c()"), "(Or a() (And b() c()))");
    assert_eq!(cond("$a == 1 || $b != 2"), "(Or (Eq $a 1) (Ne $b 2))");
    assert_eq!(cond("$a + 1 == 2 - $b"), "(Eq (Add $a 1) (Sub 2 $b))");
    assert_eq!(cond("!a() && -1 < 2"), "(And (Not a()) (Lt (Neg 1) 2))");
    assert_eq!(cond("(a() || b()) && c()"), "(And (Or a() b()) c())");
    assert_eq!(cond("1 - 2 - 3"), "(Sub (Sub 1 2) 3)");
    assert_eq!(
        cond("$rU =~ \"^49\" && uri != myself"),
        "(And (Match $rU \"^49\") (Ne uri myself))"
    );
    assert_eq!(cond("route(CHECK) == 2"), "(Eq route(CHECK) 2)");
    assert_eq!(cond("f(1, \"a$x\", $hdr(To))"), "f(1 \"a\"+$x $hdr(To))");
    assert_eq!(cond("$x >= null"), "(Ge $x null)");
}

#[test]
fn route_blocks() {
    let src = "route { } request_route {} reply_route {} onreply_route[R1] {}\n\
               failure_route[\"F\"] {} branch_route[7] {} route[RELAY] {}";
    let got: Vec<(RouteKind, Option<String>)> =
        blocks(src).into_iter().map(|b| (b.kind, b.name)).collect();
    let name = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        vec![
            (RouteKind::Request, None),
            (RouteKind::Request, None),
            (RouteKind::Reply, None),
            (RouteKind::Reply, name("R1")),
            (RouteKind::Failure, name("F")),
            (RouteKind::Branch, name("7")),
            (RouteKind::Sub, name("RELAY")),
        ]
    );
}

#[test]
fn statements() {
    let src = "request_route {
        if (a()) { b(); } else if (c()) d(); else { ; }
        $ru = \"x\";
        route(R);
        return; return 2; return(-1);
        exit; drop;
    }";
    let body = &blocks(src)[0].body;
    assert_eq!(body.len(), 8);
    let Stmt::If(_, then, Some(els)) = &body[0] else {
        panic!("{:?}", body[0])
    };
    assert!(matches!(**then, Stmt::Block(ref b) if b.len() == 1));
    assert!(matches!(**els, Stmt::If(_, _, Some(_))));
    assert!(matches!(&body[1], Stmt::Assign(v, _) if v.name == "ru"));
    assert!(matches!(&body[2], Stmt::Expr(e) if show(e) == "route(R)"));
    assert_eq!(body[3], Stmt::Return(None));
    assert!(matches!(&body[4], Stmt::Return(Some(e)) if show(e) == "2"));
    assert!(matches!(&body[5], Stmt::Return(Some(e)) if show(e) == "(Neg 1)"));
    assert_eq!(body[6], Stmt::Exit);
    assert_eq!(body[7], Stmt::Drop);
}

#[test]
fn switch() {
    let src = "request_route { switch ($rm) {
        case \"REGISTER\": save(); break;
        case 'OPTIONS':
        case -3: f();
        default: g();
    } }";
    let Stmt::Switch(subject, items) = &blocks(src)[0].body[0] else {
        panic!()
    };
    assert_eq!(show(subject), "$rm");
    let shape: Vec<String> = items
        .iter()
        .map(|i| match i {
            SwitchItem::Case(v) => format!("case {v}"),
            SwitchItem::Default => "default".into(),
            SwitchItem::Stmt(Stmt::Break(_)) => "break".into(),
            SwitchItem::Stmt(Stmt::Expr(e)) => show(e),
            SwitchItem::Stmt(s) => format!("{s:?}"),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "case REGISTER",
            "save()",
            "break",
            "case OPTIONS",
            "case -3",
            "f()",
            "default",
            "g()"
        ]
    );
    assert!(matches!(&items[4], SwitchItem::Case(Value::Int(-3))));
}

#[test]
fn syntax_errors() {
    let err = |src: &str| parse(src).unwrap_err().message;
    assert_eq!(
        err("request_route { t_relay() }"),
        "expected `;`, found `}`"
    );
    assert_eq!(err("request_route { t_relay; }"), "expected `(`, found `;`");
    assert_eq!(
        err("request_route { if a() {} }"),
        "expected `(`, found `a`"
    );
    assert_eq!(
        err("request_route { f(1,); }"),
        "expected an expression, found `)`"
    );
    assert_eq!(
        err("request_route { else; }"),
        "expected a statement, found `else`"
    );
    assert_eq!(
        err("request_route { 1; }"),
        "expected a statement, found `1`"
    );
    assert_eq!(err("request_route {"), "expected `}`, found end of file");
    assert_eq!(
        err("loadmodule \"tm.so\""),
        "expected a route block (request_route, reply_route, failure_route, branch_route or \
         route), found `loadmodule`"
    );
    assert_eq!(
        err("failure_route { }"),
        "failure_route needs a name: failure_route[NAME]"
    );
    assert_eq!(
        err("request_route[X] { }"),
        "request_route cannot have a name"
    );
    assert_eq!(
        err("route[\"$x\"] { }"),
        "a route name cannot contain variables"
    );
    assert_eq!(
        err("request_route { switch (1) { case $x: } }"),
        "expected a string or integer literal, found `$x`"
    );
    assert_eq!(
        err("request_route { switch (1) { default: default: } }"),
        "a switch has one `default` at most"
    );
}

#[test]
fn nesting_is_bounded() {
    let deep = format!(
        "request_route {{ $x = {}1{}; }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert_eq!(parse(&deep).unwrap_err().message, "nested too deeply");
    let long = format!("request_route {{ $x = 1{}; }}", " + 1".repeat(5000));
    assert_eq!(parse(&long).unwrap_err().message, "nested too deeply");
    let nots = format!("request_route {{ $x = {}1; }}", "!".repeat(5000));
    assert_eq!(parse(&nots).unwrap_err().message, "nested too deeply");
    let ifs = format!("request_route {{ {} }}", "if (1) ".repeat(5000));
    assert_eq!(parse(&ifs).unwrap_err().message, "nested too deeply");
}
