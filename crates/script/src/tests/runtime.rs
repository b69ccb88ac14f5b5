//! Running compiled scripts on the test host.

use super::env::{calls, compile, run, Ctx};
use crate::{Avps, Outcome, RouteId, RouteKind, Value};

#[test]
fn if_else() {
    let src = "request_route {
        if (is_method(\"INVITE\")) { g(\"invite\"); }
        else if (is_method(\"BYE\")) g(\"bye\");
        else { g(\"other\"); }
    }";
    assert_eq!(calls(src, "INVITE"), ["g(\"invite\")"]);
    assert_eq!(calls(src, "BYE"), ["g(\"bye\")"]);
    assert_eq!(calls(src, "ACK"), ["g(\"other\")"]);
}

#[test]
fn switch_falls_through_until_break() {
    let src = "request_route {
        switch ($rm) {
            case \"REGISTER\": f(1); break;
            case \"OPTIONS\":
            case \"INFO\": f(2);
            case \"BYE\": f(3); if (1) { break; } f(99);
            default: f(4);
        }
        f(5);
    }";
    assert_eq!(calls(src, "REGISTER"), ["f(1)", "f(5)"]);
    assert_eq!(calls(src, "OPTIONS"), ["f(2)", "f(3)", "f(5)"]);
    assert_eq!(calls(src, "INFO"), ["f(2)", "f(3)", "f(5)"]);
    assert_eq!(calls(src, "BYE"), ["f(3)", "f(5)"]);
    assert_eq!(calls(src, "ACK"), ["f(4)", "f(5)"]);
}

#[test]
fn switch_on_integers_and_calls() {
    let src = "request_route {
        switch (f(2)) { case 1: g(\"one\"); case 2: g(\"two\"); }
        switch ($cs) { case \"101\": g(\"cseq\"); break; default: g(\"no\"); }
        switch (7) { case 1: g(\"no\"); }
    }";
    assert_eq!(calls(src, "X"), ["f(2)", "g(\"two\")", "g(\"cseq\")"]);
}

#[test]
fn short_circuit() {
    let src = "request_route {
        if (f(0) && f(1)) { }
        if (f(2) || f(3)) { }
        if (f(-1) || f(4) && f(0)) { }
        if (!f(5) && f(6)) { }
    }";
    assert_eq!(
        calls(src, "X"),
        ["f(0)", "f(2)", "f(-1)", "f(4)", "f(0)", "f(5)"]
    );
}

#[test]
fn constant_conditions_still_evaluate_calls() {
    let src =
        "request_route { if (f(1) && 0) { g(\"no\"); } if (0 && f(2)) { } if (1) { g(\"yes\"); } }";
    assert_eq!(calls(src, "X"), ["f(1)", "g(\"yes\")"]);
}

/// The value of `$var(r)` after `$var(r) = EXPR;`, as a call to g.
fn value(expr: &str) -> String {
    let src = format!("request_route {{ $var(r) = {expr}; g($var(r)); }}");
    calls(&src, "INVITE").remove(0)
}

#[test]
fn comparisons_and_truth() {
    let cases = [
        ("1 == 1", 1),
        ("\"486\" == 486", 1),
        ("486 == \"486\"", 1),
        ("\"abc\" == 0", 0),
        ("null == null", 1),
        ("null == 0", 0),
        ("null == \"\"", 0),
        ("\"a\" == \"A\"", 0),
        ("$rm == \"INVITE\"", 1),
        ("$rm != \"INVITE\"", 0),
        ("2 < 10", 1),
        ("\"2\" < \"10\"", 0),
        ("\"9\" < 10", 1),
        ("\"b\" > \"a\"", 1),
        ("3 >= 3", 1),
        ("3 <= 2", 0),
        ("$hdr(X) == null", 1),
        ("!0", 1),
        ("!-1", 1),
        ("!\"\"", 1),
        ("!\"x\"", 0),
        ("!null", 1),
        ("!1", 0),
        ("1 && \"x\"", 1),
        ("0 || null", 0),
        ("-5 + 2", -3),
        ("10 - 4 - 3", 3),
    ];
    for (expr, want) in cases {
        assert_eq!(value(expr), format!("g(\"{want}\")"), "{expr}");
    }
}

#[test]
fn regex_match() {
    let cases = [
        ("$rU =~ \"^49\"", 1),
        ("$rU =~ \"^\\+?49\"", 1),
        ("$rU =~ \"23$\"", 1),
        ("$rU =~ \"^23\"", 0),
        ("$rU !~ \"^23\"", 1),
        ("$cs =~ '^1.1$'", 1),
        ("$hdr(X) =~ \"^$\"", 0),
        ("$hdr(X) !~ \"x\"", 1),
    ];
    for (expr, want) in cases {
        assert_eq!(value(expr), format!("g(\"{want}\")"), "{expr}");
    }
}

#[test]
fn concatenation_and_interpolation() {
    assert_eq!(value("\"sip:\" + $rU + \"@gw\""), "g(\"sip:49123@gw\")");
    assert_eq!(value("\"n\" + 1 + 2"), "g(\"n12\")");
    assert_eq!(value("1 + 2 + \"n\""), "g(\"3n\")");
    assert_eq!(value("\"x\" + null"), "g(\"x\")");
    assert_eq!(
        value("\"sip:$rU@gw;m=$rm $cs$ $hdr(X)|\""),
        "g(\"sip:49123@gw;m=INVITE 101$ |\")"
    );
    assert_eq!(value("'$rU'"), "g(\"$rU\")");
    assert_eq!(value("\"\\$rU\""), "g(\"$rU\")");
}

#[test]
fn assignment_to_host_variable() {
    let mut ctx = Ctx::new("INVITE", "sip:49123@example.com");
    run(
        "request_route { $ru = \"sip:\" + $rU + \"@gw.example.net\"; g($ru); }",
        &mut ctx,
    );
    assert_eq!(ctx.ru, "sip:49123@gw.example.net");
    assert_eq!(ctx.calls, ["g(\"sip:49123@gw.example.net\")"]);
    // A refused value leaves the variable as it was.
    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    run("request_route { $ru = null; }", &mut ctx);
    assert_eq!(ctx.ru, "sip:a@b");
}

#[test]
fn uri_and_myself() {
    let src = "request_route {
        if (uri == myself) { g(\"mine\"); }
        if (myself != $rU) { g(\"user not mine\"); }
        if (\"example.com\" == myself) { g(\"host\"); }
        if (uri != myself) { g(\"other\"); }
    }";
    let mut ctx = Ctx::new("INVITE", "sip:1@example.com");
    run(src, &mut ctx);
    assert_eq!(
        ctx.calls,
        ["g(\"mine\")", "g(\"user not mine\")", "g(\"host\")"]
    );
    let mut ctx = Ctx::new("INVITE", "sip:1@elsewhere.org");
    run(src, &mut ctx);
    assert_eq!(
        ctx.calls,
        ["g(\"user not mine\")", "g(\"host\")", "g(\"other\")"]
    );
}

#[test]
fn script_variables_live_for_one_run() {
    let script = compile(
        "request_route {
            g(\"[$var(n)]\");
            $var(n) = \"set\";
            route(R);
        }
        route[R] { g($var(n)); }",
    )
    .unwrap();
    for _ in 0..2 {
        let mut ctx = Ctx::new("INVITE", "sip:a@b");
        script.run_request(&mut ctx);
        assert_eq!(ctx.calls, ["g(\"[]\")", "g(\"set\")"]);
    }
}

#[test]
fn avps_persist_across_runs_sharing_storage() {
    let script = compile(
        "request_route { $avp(caller) = $rU; $avp(n) = 5; $avp(gone) = 1; $avp(gone) = null; }
         failure_route[F] { g(\"$avp(caller) $avp(n) [$avp(gone)]\"); if ($avp(gone) == null) f(1); }",
    )
    .unwrap();
    let mut ctx = Ctx::new("INVITE", "sip:alice@b");
    script.run_request(&mut ctx);
    let avps: Avps = ctx.avps.clone();
    let slot = script.avp_slot("caller").unwrap();
    assert_eq!(avps.get(slot), &Value::from("alice".to_owned()));
    assert_eq!(avps.get(99), &Value::Null);

    let mut later = Ctx::new("INVITE", "sip:other@b");
    later.avps = avps;
    let failure = script.route(RouteKind::Failure, "F").unwrap();
    assert_eq!(script.run_route(failure, &mut later), Outcome::Done);
    assert_eq!(later.calls, ["g(\"alice 5 []\")", "f(1)"]);
}

#[test]
fn flags() {
    let src = "request_route {
        setflag(3); setflag(63);
        if (isflag(3)) f(1);
        resetflag(3);
        if (!isflag(3)) f(2);
        if (isflag(63)) f(3);
    }";
    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    run(src, &mut ctx);
    assert_eq!(ctx.calls, ["f(1)", "f(2)", "f(3)"]);
    assert_eq!(ctx.flags, 1 << 63);
}

#[test]
fn route_calls_return_values_and_rc() {
    let src = "request_route {
        if (route(TWO) == 2) { g(\"$rc\"); }
        route(DEFAULT);
        g(\"$retcode\");
        f(-7);
        g(\"$rc\");
        if (route(NEG)) { f(99); }
        route(ONE);
        f(4);
    }
    route[TWO] { return 2; f(99); }
    route[DEFAULT] { f(0); }
    route[NEG] { return(-1); }
    route[ONE] { return; }";
    assert_eq!(
        calls(src, "X"),
        ["g(\"2\")", "f(0)", "g(\"1\")", "f(-7)", "g(\"-7\")", "f(4)"]
    );
}

#[test]
fn return_in_top_level_ends_the_block() {
    assert_eq!(
        calls("request_route { f(1); return; f(2); }", "X"),
        ["f(1)"]
    );
}

#[test]
fn exit_in_nested_route_ends_the_run() {
    let src = "request_route { route(A); f(3); }
               route[A] { route(B); f(2); }
               route[B] { f(1); exit; }";
    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    assert_eq!(run(src, &mut ctx), Outcome::Done);
    assert_eq!(ctx.calls, ["f(1)"]);
}

#[test]
fn drop_gives_drop() {
    let src = "request_route { route(A); f(2); } route[A] { f(1); drop; }";
    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    assert_eq!(run(src, &mut ctx), Outcome::Drop);
    assert_eq!(ctx.calls, ["f(1)"]);
    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    assert_eq!(run("request_route { exit; }", &mut ctx), Outcome::Done);
}

#[test]
fn run_route_on_failure_and_named_routes() {
    let src = "request_route { t_on_failure(\"F\"); t_relay(); }
               failure_route[F] { if ($rm == \"INVITE\") { t_relay(); } }
               branch_route[B] { drop; }
               onreply_route[R] { f(1); }";
    let script = compile(src).unwrap();
    let f = script.route(RouteKind::Failure, "F").unwrap();
    let b = script.route(RouteKind::Branch, "B").unwrap();
    let r = script.route(RouteKind::Reply, "R").unwrap();
    assert_eq!(script.route(RouteKind::Failure, "B"), None);
    assert_eq!(script.route_name(f), Some((RouteKind::Failure, "F")));
    assert_eq!(
        script.route_name(RouteId(0)),
        Some((RouteKind::Request, ""))
    );
    assert_eq!(script.route_name(RouteId(9)), None);

    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    assert_eq!(script.run_request(&mut ctx), Outcome::Done);
    // t_on_failure received the failure route's id.
    assert_eq!(
        ctx.calls,
        [format!("t_on_failure({})", f.0), "t_relay()".to_owned()]
    );
    assert_eq!(RouteId::from_value(&Value::Int(i64::from(f.0))), Some(f));

    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    assert_eq!(script.run_route(f, &mut ctx), Outcome::Done);
    assert_eq!(ctx.calls, ["t_relay()"]);
    assert_eq!(script.run_route(b, &mut ctx), Outcome::Drop);
    assert_eq!(script.run_route(r, &mut ctx), Outcome::Done);
    assert_eq!(script.run_route(RouteId(77), &mut ctx), Outcome::Done);
    assert!(!script.has_reply_route());
    assert_eq!(script.run_reply(&mut ctx), Outcome::Done);
}

#[test]
fn global_reply_route() {
    let script = compile("request_route {} onreply_route { f(1); drop; }").unwrap();
    assert!(script.has_reply_route());
    let mut ctx = Ctx::new("INVITE", "sip:a@b");
    assert_eq!(script.run_reply(&mut ctx), Outcome::Drop);
    assert_eq!(ctx.calls, ["f(1)"]);
}

#[test]
fn argument_conversion() {
    let src = "request_route {
        f(\"42\"); f($cs); f($rm); g(12); g($cs); g($hdr(X)); h(1, \"a\");
        sl_send_reply(\"404\", \"Not $rm\");
        save(\"location\"); forward(); forward(uri);
        log(\"x\"); xlog(L_ERR, \"m=$rm\");
    }";
    assert_eq!(
        calls(src, "INVITE"),
        [
            "f(42)",
            "f(101)",
            "f(0)",
            "g(\"12\")",
            "g(\"101\")",
            "g(\"\")",
            "g(1,\"a\")",
            "sl_send_reply(404,\"Not INVITE\")",
            "save(\"location\")",
            "forward()",
            "forward(\"sip:49123@example.com\")",
        ]
    );
}

#[test]
fn script_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<crate::Script<super::env::TestEnv>>();
    shareable::<crate::Registry<super::env::TestEnv>>();
}

#[test]
fn route_nesting_is_limited_at_run_time() {
    let chain = |n: usize| {
        let mut src = String::from("request_route { route(R0); f(2); }\n");
        for i in 0..n {
            src.push_str(&format!("route[R{i}] {{ route(R{}); }}\n", i + 1));
        }
        src.push_str(&format!("route[R{n}] {{ f(1); }}\n"));
        calls(&src, "X")
    };
    assert_eq!(chain(98), ["f(1)", "f(2)"]);
    // Too deep: the run ends where the limit is hit.
    assert!(chain(150).is_empty());
}
