//! Each kind of load-time error, rendered exactly.

use super::env::{compile, errors};

#[test]
fn syntax_error() {
    let src = "request_route {\n    t_relay()\n    exit;\n}\n";
    assert_eq!(
        errors(src),
        "test.cfg:3:5: expected `;`, found `exit`\n\
         \x20   |     exit;\n\
         \x20   |     ^^^^"
    );
}

#[test]
fn lexical_error() {
    assert_eq!(
        errors("request_route {\n\tg(\"abc);\n}"),
        "test.cfg:2:4: unterminated string\n\
         \x20   | \tg(\"abc);\n\
         \x20   | \t  ^"
    );
}

#[test]
fn unknown_function() {
    let src = "request_route {\n    if (is_method(\"INVITE\")) {\n        t_relya();\n    }\n}";
    assert_eq!(
        errors(src),
        "test.cfg:3:9: unknown function `t_relya`\n\
         \x20   |         t_relya();\n\
         \x20   |         ^^^^^^^"
    );
}

#[test]
fn wrong_number_of_arguments() {
    let src = "request_route {\n  sl_send_reply(404);\n  t_relay(1);\n  forward(\"a\", \"b\");\n  \
               f();\n  h();\n}";
    assert_eq!(
        errors(src),
        "test.cfg:2:3: `sl_send_reply` takes 2 arguments, 1 given\n\
         \x20   |   sl_send_reply(404);\n\
         \x20   |   ^^^^^^^^^^^^^\n\
         test.cfg:3:3: `t_relay` takes no arguments, 1 given\n\
         \x20   |   t_relay(1);\n\
         \x20   |   ^^^^^^^\n\
         test.cfg:4:3: `forward` takes 0 to 1 arguments, 2 given\n\
         \x20   |   forward(\"a\", \"b\");\n\
         \x20   |   ^^^^^^^\n\
         test.cfg:5:3: `f` takes 1 argument, 0 given\n\
         \x20   |   f();\n\
         \x20   |   ^\n\
         test.cfg:6:3: `h` takes 1 to 3 arguments, 0 given\n\
         \x20   |   h();\n\
         \x20   |   ^"
    );
}

#[test]
fn wrong_argument_type() {
    let src = "request_route {\n  sl_send_reply(\"abc\", \"x\");\n  save(\"locations\");\n  \
               t_on_failure($rm);\n  f(null);\n}\nfailure_route[F] {}";
    assert_eq!(
        errors(src),
        "test.cfg:2:17: argument 1 of sl_send_reply must be an integer\n\
         \x20   |   sl_send_reply(\"abc\", \"x\");\n\
         \x20   |                 ^^^^^\n\
         test.cfg:3:8: argument 1 of save must be one of \"location\"\n\
         \x20   |   save(\"locations\");\n\
         \x20   |        ^^^^^^^^^^^\n\
         test.cfg:4:16: argument 1 of t_on_failure must be a route name\n\
         \x20   |   t_on_failure($rm);\n\
         \x20   |                ^^^\n\
         test.cfg:5:5: argument 1 of f must be an integer\n\
         \x20   |   f(null);\n\
         \x20   |     ^^^^"
    );
}

#[test]
fn integer_arguments_accept_numeric_strings_and_expressions() {
    assert!(compile("request_route { sl_send_reply(\"404\", 'x'); f($cs + 1); }").is_ok());
}

#[test]
fn function_not_allowed_in_route_kind() {
    let src = "request_route { route(R); }\nreply_route {\n    t_relay();\n    route(R);\n}\n\
               route[R] {\n    route(S);\n}\nroute[S] {\n    t_relay();\n}\n\
               route[U] {\n    sl_send_reply(1, \"x\");\n}\nfailure_route[F] { route(U); }";
    assert_eq!(
        errors(src),
        "test.cfg:3:5: `t_relay` cannot be used in reply_route\n\
         \x20   |     t_relay();\n\
         \x20   |     ^^^^^^^\n\
         test.cfg:10:5: `t_relay` cannot be used in reply_route (route[S] is called from \
         reply_route)\n\
         \x20   |     t_relay();\n\
         \x20   |     ^^^^^^^\n\
         test.cfg:13:5: `sl_send_reply` cannot be used in failure_route (route[U] is called \
         from failure_route)\n\
         \x20   |     sl_send_reply(1, \"x\");\n\
         \x20   |     ^^^^^^^^^^^^^"
    );
}

#[test]
fn uncalled_route_is_checked_as_request_route() {
    assert!(compile("request_route {}\nroute[U] { sl_send_reply(1, \"x\"); }").is_ok());
    assert_eq!(
        errors("request_route {}\nroute[U] {\n  reply_only();\n}"),
        "test.cfg:3:3: `reply_only` cannot be used in request_route (route[U] is checked as if \
         request_route called it)\n\
         \x20   |   reply_only();\n\
         \x20   |   ^^^^^^^^^^"
    );
    assert!(
        compile("request_route {}\nreply_route { route(U); }\nroute[U] { reply_only(); }").is_ok()
    );
}

#[test]
fn unknown_variable() {
    let src =
        "request_route {\n  if ($foo == 1) { g(\"x$bar(y)z\"); }\n  $x = $hdr;\n  $y = $ru(p);\n}";
    assert_eq!(
        errors(src),
        "test.cfg:2:7: unknown variable `$foo`\n\
         \x20   |   if ($foo == 1) { g(\"x$bar(y)z\"); }\n\
         \x20   |       ^^^^\n\
         test.cfg:2:24: unknown variable `$bar`\n\
         \x20   |   if ($foo == 1) { g(\"x$bar(y)z\"); }\n\
         \x20   |                        ^^^^^^^\n\
         test.cfg:3:3: unknown variable `$x`\n\
         \x20   |   $x = $hdr;\n\
         \x20   |   ^^\n\
         test.cfg:3:8: `$hdr` needs a parameter, as in `$hdr(name)`\n\
         \x20   |   $x = $hdr;\n\
         \x20   |        ^^^^\n\
         test.cfg:4:3: unknown variable `$y`\n\
         \x20   |   $y = $ru(p);\n\
         \x20   |   ^^\n\
         test.cfg:4:8: `$ru` takes no parameter\n\
         \x20   |   $y = $ru(p);\n\
         \x20   |        ^^^^^^"
    );
}

#[test]
fn assignment_to_read_only_variable() {
    let src = "request_route {\n  $rm = \"INVITE\";\n  $rc = 1;\n  $ru = \"sip:a@b\";\n}";
    assert_eq!(
        errors(src),
        "test.cfg:2:3: `$rm` is read-only\n\
         \x20   |   $rm = \"INVITE\";\n\
         \x20   |   ^^^\n\
         test.cfg:3:3: `$rc` is read-only\n\
         \x20   |   $rc = 1;\n\
         \x20   |   ^^^"
    );
}

#[test]
fn unknown_route_name() {
    let src = "request_route {\n  route(RELAY);\n  t_on_failure(\"MISSING\");\n  \
               t_on_failure(R);\n}\nroute[R] {}";
    assert_eq!(
        errors(src),
        "test.cfg:2:9: unknown route `RELAY`\n\
         \x20   |   route(RELAY);\n\
         \x20   |         ^^^^^\n\
         test.cfg:3:16: unknown failure_route `MISSING`\n\
         \x20   |   t_on_failure(\"MISSING\");\n\
         \x20   |                ^^^^^^^^^\n\
         test.cfg:4:16: unknown failure_route `R`\n\
         \x20   |   t_on_failure(R);\n\
         \x20   |                ^"
    );
}

#[test]
fn duplicate_route_block() {
    let src = "request_route {}\nroute {}\nfailure_route[F] {}\nfailure_route[\"F\"] {}\n\
               reply_route {}\nonreply_route {}";
    assert_eq!(
        errors(src),
        "test.cfg:2:1: duplicate request_route (first defined at line 1)\n\
         \x20   | route {}\n\
         \x20   | ^^^^^\n\
         test.cfg:4:15: duplicate failure_route[F] (first defined at line 3)\n\
         \x20   | failure_route[\"F\"] {}\n\
         \x20   |               ^^^\n\
         test.cfg:6:1: duplicate reply_route (first defined at line 5)\n\
         \x20   | onreply_route {}\n\
         \x20   | ^^^^^^^^^^^^^"
    );
}

#[test]
fn missing_request_route() {
    assert_eq!(
        errors("# nothing\nroute[R] {}\n"),
        "test.cfg:1:1: missing request_route\n\
         \x20   | # nothing\n\
         \x20   | ^"
    );
    assert_eq!(
        errors(""),
        "test.cfg:1:1: missing request_route\n    | \n    | ^"
    );
}

#[test]
fn bad_regex() {
    let src = "request_route {\n  if ($rU =~ \"^(49\") { }\n  if ($rU !~ $rm) { }\n}";
    assert_eq!(
        errors(src),
        "test.cfg:2:14: invalid regular expression: unclosed group\n\
         \x20   |   if ($rU =~ \"^(49\") { }\n\
         \x20   |              ^^^^^^\n\
         test.cfg:3:14: the right side of `!~` must be a string literal\n\
         \x20   |   if ($rU !~ $rm) { }\n\
         \x20   |              ^^^"
    );
}

#[test]
fn myself_outside_comparison() {
    let src = "request_route {\n  if (myself) { }\n  if (uri == myself) { }\n  g(myself);\n}";
    assert_eq!(
        errors(src),
        "test.cfg:2:7: `myself` can only be compared with `==` or `!=`\n\
         \x20   |   if (myself) { }\n\
         \x20   |       ^^^^^^\n\
         test.cfg:4:5: `myself` can only be compared with `==` or `!=`\n\
         \x20   |   g(myself);\n\
         \x20   |     ^^^^^^"
    );
}

#[test]
fn break_outside_switch() {
    let src = "request_route {\n  switch ($rm) { default: if (1) { break; } }\n  break;\n}";
    assert_eq!(
        errors(src),
        "test.cfg:3:3: `break` outside switch\n\
         \x20   |   break;\n\
         \x20   |   ^^^^^"
    );
}

#[test]
fn recursion_between_routes() {
    let src = "request_route { route(A); }\nroute[A] { route(B); }\nroute[B] {\n  \
               if (1) { route(A); }\n}\nroute[C] { route(C); }";
    assert_eq!(
        errors(src),
        "test.cfg:4:18: recursive route call: route[A] -> route[B] -> route[A]\n\
         \x20   |   if (1) { route(A); }\n\
         \x20   |                  ^\n\
         test.cfg:6:18: recursive route call: route[C] -> route[C]\n\
         \x20   | route[C] { route(C); }\n\
         \x20   |                  ^"
    );
}

#[test]
fn flag_out_of_range() {
    let src =
        "request_route {\n  setflag(64);\n  isflag(-1);\n  resetflag($rm);\n  setflag(63);\n}";
    assert_eq!(
        errors(src),
        "test.cfg:2:11: flag 64 out of range (0 to 63)\n\
         \x20   |   setflag(64);\n\
         \x20   |           ^^\n\
         test.cfg:3:10: flag -1 out of range (0 to 63)\n\
         \x20   |   isflag(-1);\n\
         \x20   |          ^^\n\
         test.cfg:4:13: argument 1 of resetflag must be a flag number (0 to 63)\n\
         \x20   |   resetflag($rm);\n\
         \x20   |             ^^^"
    );
}

#[test]
fn unknown_log_level() {
    let src = "request_route {\n  xlog(L_ERROR, \"x\");\n  log(\"L_DBG\", \"ok\");\n  \
               log($rm, \"x\");\n}";
    assert_eq!(
        errors(src),
        "test.cfg:2:8: unknown log level `L_ERROR` (L_ERR, L_WARN, L_NOTICE, L_INFO or L_DBG)\n\
         \x20   |   xlog(L_ERROR, \"x\");\n\
         \x20   |        ^^^^^^^\n\
         test.cfg:4:7: the log level must be L_ERR, L_WARN, L_NOTICE, L_INFO or L_DBG\n\
         \x20   |   log($rm, \"x\");\n\
         \x20   |       ^^^"
    );
}

#[test]
fn bare_names_are_not_values() {
    assert_eq!(
        errors("request_route { g(location); }"),
        "test.cfg:1:19: unknown name `location` (strings are quoted, variables start with `$`)\n\
         \x20   | request_route { g(location); }\n\
         \x20   |                   ^^^^^^^^"
    );
}

#[test]
fn all_errors_are_reported_in_source_order() {
    let src = "failure_route[F] { sl_send_reply(500, \"x\"); }\nrequest_route { nope(); $x = 1; }";
    let d = compile(src).unwrap_err();
    let found: Vec<(usize, usize)> = d.0.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(found, [(1, 20), (2, 17), (2, 25)]);
}
