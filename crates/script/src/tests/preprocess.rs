//! The preprocessor: `#!define` and kin, `#!ifdef` branches, includes, substitution, and
//! where its errors are placed.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::env::{registry, Ctx, TestEnv};
use crate::{Diagnostics, Script};

/// The main script's name: includes are looked for in `conf/`.
const MAIN: &str = "conf/main.cfg";

/// Compiles `main` with `files` (path, text) to include.
pub(super) fn compile_with(
    main: &str,
    files: &[(&str, &str)],
) -> Result<Script<TestEnv>, Diagnostics> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    let load = |path: &Path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    };
    Script::compile_with(MAIN, main, &registry(), &load)
}

/// The calls the request_route of `main` makes.
fn calls(main: &str, files: &[(&str, &str)]) -> Vec<String> {
    let script = compile_with(main, files).unwrap_or_else(|e| panic!("{e}"));
    let mut ctx = Ctx::new("INVITE", "sip:49123@example.com");
    script.run_request(&mut ctx);
    ctx.calls
}

/// The first line of the first error of `main`, which must not compile.
fn error(main: &str, files: &[(&str, &str)]) -> String {
    match compile_with(main, files) {
        Ok(_) => panic!("compiled: {main}"),
        Err(d) => d.to_string().lines().next().unwrap_or_default().to_owned(),
    }
}

#[test]
fn ifdef_takes_one_branch() {
    let body = "request_route {\n#!ifdef WITH_AUTH\n  f(1);\n#!else\n  f(2);\n#!endif\n\
                #!ifndef WITH_AUTH\n  f(3);\n#!endif\n}";
    assert_eq!(calls(body, &[]), ["f(2)", "f(3)"]);
    let with = format!("#!define WITH_AUTH\n{body}");
    assert_eq!(calls(&with, &[]), ["f(1)"]);
}

#[test]
fn branches_nest() {
    let src = "#!define A\nrequest_route {\n\
               #!ifdef B\n  #!ifdef A\n f(1);\n  #!else\n f(2);\n  #!endif\n\
               #!else\n  #!ifndef B\n f(3);\n    #!ifdef A\n f(4);\n    #!endif\n  #!endif\n\
               #!endif\n}";
    assert_eq!(calls(src, &[]), ["f(3)", "f(4)"]);
}

#[test]
fn skipped_text_is_not_read() {
    // Neither lexed (Kamailio's `listen=` line) nor its directives done, but conditionals.
    let src = "#!ifdef NO\nlisten=udp:1.2.3.4:5060 \"\n#!substdef \"/a/b/\"\n#!define X 1\n\
               #!ifdef Y\n#!else\n#!endif\n#!endif\n#!ifndef X\nrequest_route { f(0); }\n#!endif";
    assert_eq!(calls(src, &[]), ["f(0)"]);
}

#[test]
fn markers_are_ignored() {
    for marker in ["KAMAILIO", "OPENSER", "SER", "MAXCOMPAT", "ALL"] {
        let src = format!("#!{marker}\n# a comment\nrequest_route {{ f(1); }}");
        assert_eq!(calls(&src, &[]), ["f(1)"], "{marker}");
    }
}

#[test]
fn defined_names_are_replaced_by_their_values() {
    let src = "#!define FLT_ACC 3\n#!define GW \"sip:gw\" // the gateway\n#!define TWO 1 + 1\n\
               #!define NOTHING\nrequest_route {\n  f(FLT_ACC); g(GW); f(TWO) NOTHING;\n\
               g(\"FLT_ACC $var(FLT_ACC)\"); g('GW'); $var(FLT_ACC) = 5; f($var(FLT_ACC));\n}";
    assert_eq!(
        calls(src, &[]),
        [
            "f(3)",
            "g(\"sip:gw\")",
            "f(2)",
            "g(\"FLT_ACC \")",
            "g(\"GW\")",
            "f(5)"
        ]
    );
}

#[test]
fn values_are_expanded_in_turn() {
    let src = "#!define A B + 1\n#!define B C\n#!define C 40\n#!define g g\n\
               request_route { f(A); g(1); }";
    assert_eq!(calls(src, &[]), ["f(41)", "g(\"1\")"]);
}

#[test]
fn expansions_are_bounded() {
    let mut chain: String = (0..17)
        .map(|i| format!("#!define D{i} D{}\n", i + 1))
        .collect();
    chain.push_str("#!define D17 1\nrequest_route {\n  f(D0);\n}");
    assert_eq!(
        error(&chain, &[]),
        "conf/main.cfg:20:5: defines nest more than 16 deep"
    );
    let mut wide = String::from("#!define E0 1 1 1 1 1 1 1 1 1 1\n");
    for i in 1..5 {
        let e = format!("E{} ", i - 1).repeat(10);
        wide.push_str(&format!("#!define E{i} {e}\n"));
    }
    wide.push_str("request_route { E4; }");
    assert_eq!(
        error(&wide, &[]),
        "conf/main.cfg:6:17: a define expands to too many tokens"
    );
    let src = "#!define X #!y\nrequest_route { X; }";
    assert_eq!(
        error(src, &[]),
        "conf/main.cfg:1:12: a define's value cannot be a directive"
    );
}

#[test]
fn trydef_redefine_undef() {
    let src = "#!define N 1\n#!trydef N 2\n#!trydef M 7\nrequest_route {\n  f(N); f(M);\n\
               #!redefine N 3\n  f(N);\n#!undef N\n#!undef NEVER\n#!ifdef N\n  f(9);\n#!endif\n\
               #!redefine N 4\n  f(N);\n}";
    assert_eq!(calls(src, &[]), ["f(1)", "f(7)", "f(3)", "f(4)"]);
}

#[test]
fn directive_errors_name_file_and_line() {
    let route = "request_route { }\n";
    let cases = [
        (
            "#!define N 1\n#!define N 2\n",
            "conf/main.cfg:2:1: `N` is already defined (#!redefine replaces a define)",
        ),
        (
            "\n#!else\n",
            "conf/main.cfg:2:1: `#!else` without `#!ifdef`",
        ),
        (
            "#!endif\n",
            "conf/main.cfg:1:1: `#!endif` without `#!ifdef`",
        ),
        (
            "#!ifdef A\n#!else\n  #!else\n#!endif\n",
            "conf/main.cfg:3:3: second `#!else` for one `#!ifdef`",
        ),
        (
            "#!ifdef A\n#!endif\n#!ifndef A\n#!ifdef B\n#!endif\n",
            "conf/main.cfg:3:1: `#!ifndef` without `#!endif`",
        ),
        (
            "#!substdef \"/a/b/\"\n",
            "conf/main.cfg:1:1: unsupported preprocessor directive `#!substdef`",
        ),
        ("#!\n", "conf/main.cfg:1:1: expected a directive after `#!`"),
        ("#!ifdef\n", "conf/main.cfg:1:1: `#!ifdef` needs a name"),
        ("#!undef 9\n", "conf/main.cfg:1:1: `#!undef` needs a name"),
        (
            "#!ifdef A B\n#!endif\n",
            "conf/main.cfg:1:11: unexpected `B` after the directive",
        ),
        (
            "#!define F(x) x\n",
            "conf/main.cfg:1:11: defines with parameters are not supported",
        ),
        (
            "#!define L 1 + \\\n 2\n",
            "conf/main.cfg:1:16: a define's value ends with its line (no `\\` continuation)",
        ),
        (
            "#!include_file routes.cfg\n",
            "conf/main.cfg:1:1: expected a quoted file name after `#!include_file`",
        ),
        (
            "include_file $x\n",
            "conf/main.cfg:1:14: expected a quoted file name after `include_file`",
        ),
    ];
    for (head, want) in cases {
        assert_eq!(error(&format!("{head}{route}"), &[]), want, "{head}");
    }
    // Comments may follow a directive.
    let ok = "#!ifdef A // a\n#!else # b\n#!endif # c\n";
    assert!(compile_with(&format!("{ok}{route}"), &[]).is_ok());
}

#[test]
fn errors_in_a_branch_or_after_it_keep_their_place() {
    let src = "#!define X\n#!ifdef X\nrequest_route {\n#!else\nfoo\n#!endif\n  t_relya();\n}";
    assert_eq!(
        error(src, &[]).as_str(),
        "conf/main.cfg:7:3: unknown function `t_relya`"
    );
}

#[test]
fn substituted_tokens_are_placed_where_the_name_is() {
    let src = "#!define RELAY t_relya\nrequest_route {\n  RELAY();\n}";
    let err = compile_with(src, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "conf/main.cfg:3:3: unknown function `t_relya`\n    |   RELAY();\n    |   ^^^^^"
    );
    // A value that cannot be lexed is an error in the define, once used.
    let src = "#!define IP 192.0.2.1\nrequest_route { }";
    assert!(compile_with(src, &[]).is_ok());
    let src = "#!define IP 192.0.2.1\nrequest_route { g(IP); }";
    assert_eq!(
        error(src, &[]),
        "conf/main.cfg:1:16: unexpected character `.`"
    );
}

#[test]
fn includes_are_read_relative_to_the_including_file() {
    let main = "#!KAMAILIO\n#!include_file \"routes/defs.cfg\"\nrequest_route {\n\
                #!ifdef WITH_RELAY\n  route(RELAY);\n#!endif\n}\ninclude_file 'routes/relay.cfg'\n";
    let files = [
        (
            "conf/routes/defs.cfg",
            "#!define WITH_RELAY\n#!define FLAG 4\n",
        ),
        (
            "conf/routes/relay.cfg",
            "route[RELAY] {\n  f(FLAG);\n  route(MORE);\n}\n#!import_file \"more.cfg\"\n\
             #!import_file \"absent.cfg\"\n",
        ),
        ("conf/routes/more.cfg", "route[MORE] { g(\"more\"); }"),
    ];
    assert_eq!(calls(main, &files), ["f(4)", "g(\"more\")"]);
}

#[test]
fn errors_in_included_files_name_them() {
    let main = "request_route {\n  route(R);\n}\n#!include_file \"r.cfg\"\n";
    let files = [("conf/r.cfg", "# R\nroute[R] {\n  t_relya();\n}\n")];
    assert_eq!(
        error(main, &files),
        "conf/r.cfg:3:3: unknown function `t_relya`"
    );
    let files = [("conf/r.cfg", "route[R] { }\n#!ifdef X\n")];
    assert_eq!(
        error(main, &files),
        "conf/r.cfg:2:1: `#!ifdef` without `#!endif`"
    );
    let files = [("conf/r.cfg", "route[R] { }\nrequest_route { }\n")];
    assert_eq!(
        error(main, &files),
        "conf/r.cfg:2:1: duplicate request_route (first defined at conf/main.cfg:1)"
    );
}

#[test]
fn a_missing_include_is_an_error_at_the_include() {
    let main = "request_route { }\n\n  #!include_file \"lost.cfg\"\n";
    assert_eq!(
        error(main, &[]),
        "conf/main.cfg:3:3: cannot include `conf/lost.cfg`: entity not found"
    );
    let main = "request_route { }\ninclude_file \"lost.cfg\"\n";
    assert_eq!(
        error(main, &[]),
        "conf/main.cfg:2:1: cannot include `conf/lost.cfg`: entity not found"
    );
    // Without a loader nothing can be included, not even optionally.
    let main = "request_route { }\n#!import_file \"x.cfg\"\n";
    let err = Script::compile(MAIN, main, &registry()).unwrap_err();
    assert_eq!(
        err.0[0].message,
        "cannot include `conf/x.cfg`: this script cannot include files"
    );
}

#[test]
fn include_cycles_and_depth_are_errors() {
    let main = "request_route { }\n#!include_file \"a.cfg\"\n";
    let files = [
        ("conf/a.cfg", "#!include_file \"sub/b.cfg\"\n"),
        ("conf/sub/b.cfg", "\n#!include_file \"../a.cfg\"\n"),
    ];
    assert_eq!(
        error(main, &files),
        "conf/sub/b.cfg:2:1: include cycle: conf/main.cfg -> conf/a.cfg -> conf/sub/b.cfg -> \
         conf/sub/../a.cfg"
    );
    let names: Vec<String> = (0..12).map(|i| format!("conf/{i}.cfg")).collect();
    let texts: Vec<String> = (0..12)
        .map(|i| format!("#!include_file \"{}.cfg\"\n", i + 1))
        .collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&texts)
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let main = "request_route { }\n#!include_file \"0.cfg\"\n";
    assert_eq!(
        error(main, &files),
        "conf/9.cfg:1:1: includes nest more than 10 deep"
    );
}
