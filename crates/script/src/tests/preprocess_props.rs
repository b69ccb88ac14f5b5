//! Whatever the directives, preprocessing never panics, and balanced branches run as a
//! model says.

use std::collections::HashSet;

use proptest::prelude::*;

use super::env::Ctx;
use super::preprocess::compile_with;

/// Lines to build scripts from, balanced or not.
const LINES: &[&str] = &[
    "#!ifdef A",
    "#!ifndef A",
    "#!ifdef",
    "#!else",
    "#!endif",
    "#!define A",
    "#!define B A",
    "#!define A B",
    "#!redefine B f(1)",
    "#!trydef C \"",
    "#!undef A",
    "#!include_file \"x.cfg\"",
    "#!import_file \"x.cfg\"",
    "include_file \"x.cfg\"",
    "#!bogus",
    "#!",
    "request_route {",
    "}",
    "f(B);",
    "B;",
    "\"",
    "/*",
    "*/",
];

/// A piece of a request_route.
#[derive(Debug, Clone)]
enum Node {
    Call(u8),
    Define(u8),
    Undef(u8),
    If {
        name: u8,
        defined: bool,
        then: Vec<Node>,
        other: Option<Vec<Node>>,
    },
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        (0..9u8).prop_map(Node::Call),
        (0..3u8).prop_map(Node::Define),
        (0..3u8).prop_map(Node::Undef),
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        let list = proptest::collection::vec(inner, 0..4);
        (
            0..3u8,
            any::<bool>(),
            list.clone(),
            proptest::option::of(list),
        )
            .prop_map(|(name, defined, then, other)| Node::If {
                name,
                defined,
                then,
                other,
            })
    })
}

/// The script text of `nodes`.
fn render(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Call(i) => out.push_str(&format!("f({i});\n")),
            Node::Define(d) => out.push_str(&format!("#!redefine N{d}\n")),
            Node::Undef(d) => out.push_str(&format!("  #!undef N{d}\n")),
            Node::If {
                name,
                defined,
                then,
                other,
            } => {
                let word = if *defined { "ifdef" } else { "ifndef" };
                out.push_str(&format!("#!{word} N{name}\n"));
                render(then, out);
                if let Some(other) = other {
                    out.push_str("#!else\n");
                    render(other, out);
                }
                out.push_str("#!endif\n");
            }
        }
    }
}

/// The calls `nodes` make, by the model.
fn model(nodes: &[Node], defined: &mut HashSet<u8>, calls: &mut Vec<String>) {
    for n in nodes {
        match n {
            Node::Call(i) => calls.push(format!("f({i})")),
            Node::Define(d) => {
                defined.insert(*d);
            }
            Node::Undef(d) => {
                defined.remove(d);
            }
            Node::If {
                name,
                defined: want,
                then,
                other,
            } => {
                if defined.contains(name) == *want {
                    model(then, defined, calls);
                } else if let Some(other) = other {
                    model(other, defined, calls);
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn random_directive_lines_never_panic(picks in proptest::collection::vec(0..LINES.len(), 0..40)) {
        let lines: Vec<&str> = picks.into_iter().map(|i| LINES[i]).collect();
        let files = [("conf/x.cfg", "#!ifdef A\nf(2);\n")];
        if let Ok(script) = compile_with(&lines.join("\n"), &files) {
            script.run_request(&mut Ctx::new("INVITE", "sip:a@b"));
        }
    }

    #[test]
    fn balanced_branches_run_as_modelled(nodes in proptest::collection::vec(node(), 0..6)) {
        let mut src = String::from("request_route {\n");
        render(&nodes, &mut src);
        src.push('}');
        let script = compile_with(&src, &[]).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let mut ctx = Ctx::new("INVITE", "sip:a@b");
        script.run_request(&mut ctx);
        let mut want = Vec::new();
        model(&nodes, &mut HashSet::new(), &mut want);
        prop_assert_eq!(ctx.calls, want, "{}", src);
    }
}
