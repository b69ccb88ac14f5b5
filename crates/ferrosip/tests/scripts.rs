//! The routing scripts of `examples/`, run by the real binary and driven by sipp. Each test
//! loads the example as shipped, with only the addresses of the gateway and voice mail
//! server pointed at the test's own sipp.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::sipp::{finish, register, run, sipp, spawn, tmp};
use support::{cli, free_port, Server, Ua};

fn example(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "../../examples", name]
        .iter()
        .collect()
}

/// Starts the server with example `name`'s script, after replacing each `(from, to)` text.
fn start_example(dir: &Path, name: &str, replace: &[(&str, String)], toml: &str) -> Server {
    let mut script = std::fs::read_to_string(example(&format!("{name}.cfg"))).expect("example");
    for (from, to) in replace {
        assert!(script.contains(from), "{name}.cfg mentions {from}");
        script = script.replace(from, to);
    }
    std::fs::write(dir.join("routes.cfg"), script).expect("write script");
    Server::start_with_config(
        dir,
        &format!("{toml}\n[routing]\nscript = \"routes.cfg\"\n"),
    )
}

#[test]
fn every_example_passes_check() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(example(""))
        .expect("examples folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for toml in names {
        let out = cli(&["check", "--config", toml.to_str().expect("utf-8")], "");
        assert!(out.ok, "{}: {}", toml.display(), out.stderr);
        let script = toml.with_extension("cfg");
        assert!(script.exists(), "{} has its script", toml.display());
    }
}

#[test]
fn check_reports_script_errors_with_position_and_caret() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("bad.cfg"),
        "request_route {\n    if ($ru =~ \"(\") { exit; }\n    t_relya();\n}\n",
    )
    .expect("write");
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "[routing]\nscript = \"bad.cfg\"\n").expect("write");
    let out = cli(&["check", "--config", toml.to_str().expect("utf-8")], "");
    assert!(!out.ok);
    let err = out.stderr;
    assert!(err.contains("bad.cfg:2:16:"), "{err}");
    assert!(
        err.contains("bad.cfg:3:5: unknown function `t_relya`"),
        "{err}"
    );
    assert!(
        err.contains("    t_relya();\n") && err.contains("    ^^^^^^^"),
        "{err}"
    );
    // The default script checks.
    let out = cli(&["check"], "");
    assert!(out.ok, "{}", out.stderr);
}

/// The script of `preprocessor_branches_defines_and_includes`; `{define}` is replaced.
const KAMAILIO_STYLE: &str = "#!KAMAILIO
{define}
#!define REPLY_CODE 403
#!include_file \"inc/auth.cfg\"

request_route {
#!ifdef WITH_AUTH
    route(AUTH);
#!else
    t_relya();
#!endif
    sl_send_reply(200, \"OK\");
}
";

#[test]
fn preprocessor_branches_defines_and_includes() {
    let dir = tmp();
    let d = dir.path();
    std::fs::create_dir(d.join("inc")).expect("mkdir");
    std::fs::write(
        d.join("inc/auth.cfg"),
        "route[AUTH] {\n    if (is_method(\"OPTIONS\")) {\n        \
         sl_send_reply(REPLY_CODE, \"Forbidden\");\n        exit;\n    }\n}\n",
    )
    .expect("write");
    let toml = d.join("check.toml");
    std::fs::write(&toml, "[routing]\nscript = \"routes.cfg\"\n").expect("write");
    let check = |define: &str| {
        let script = KAMAILIO_STYLE.replace("{define}", define);
        std::fs::write(d.join("routes.cfg"), script).expect("write script");
        cli(&["check", "--config", toml.to_str().expect("utf-8")], "")
    };
    // Without WITH_AUTH the #!else branch is read, and its mistake found.
    let out = check("# no auth");
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("routes.cfg:10:5: unknown function `t_relya`"),
        "{}",
        out.stderr
    );
    // With it, the branch is skipped and the included route, with REPLY_CODE, answers.
    let out = check("#!define WITH_AUTH");
    assert!(out.ok, "{}", out.stderr);
    let s = Server::start_with_config(d, "[routing]\nscript = \"routes.cfg\"\n");
    let ua = Ua::new();
    ua.send(s.addr(), &ua.options(s.port, "pp-1"));
    let reply = ua.recv();
    assert_eq!(reply.status(), Some(403));
    // An #!ifdef without #!endif is refused, at its line.
    let out = check("#!ifdef WITH_AUTH");
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("routes.cfg:2:1: `#!ifdef` without `#!endif`"),
        "{}",
        out.stderr
    );
}

#[test]
fn prefix_routes_to_the_gateway() {
    let dir = tmp();
    let gw_port = free_port();
    let s = start_example(
        dir.path(),
        "prefix-gateway",
        &[("192.0.2.50:5060", format!("127.0.0.1:{gw_port}"))],
        "",
    );
    let gw = spawn(sipp(None, "uas.xml", "gw", gw_port, &[]));
    assert!(
        run(sipp(Some(&s), "uac.xml", "+493012345", free_port(), &[])),
        "call to +49 through the gateway"
    );
    assert!(finish(gw), "the gateway took the call");
    // Another number is looked up, and nobody has it.
    assert!(run(sipp(
        Some(&s),
        "uac_fail.xml",
        "+33123",
        free_port(),
        &[("status", "404"), ("mf", "70")]
    )));
}

#[test]
fn a_scanner_user_agent_gets_403() {
    let dir = tmp();
    let s = start_example(dir.path(), "block-user-agent", &[], "");
    let options = |ua: &str, status: &str| {
        run(sipp(
            Some(&s),
            "options.xml",
            "x",
            free_port(),
            &[("ua", ua), ("status", status)],
        ))
    };
    assert!(options("friendly-scanner", "403"));
    assert!(options("SIPVicious 0.3", "403"));
    assert!(options("Linphone/5.2", "200"));
}

#[test]
fn a_busy_subscriber_is_forwarded_to_voicemail() {
    let dir = tmp();
    let (bob_port, vm_port) = (free_port(), free_port());
    let s = start_example(
        dir.path(),
        "voicemail",
        &[("192.0.2.60:5060", format!("127.0.0.1:{vm_port}"))],
        "",
    );
    assert!(register(&s, "bob", bob_port, "1.0", "600", "200"));
    let busy = spawn(sipp(None, "uas_busy.xml", "bob", bob_port, &[]));
    let vm = spawn(sipp(
        None,
        "uas_header.xml",
        "vm",
        vm_port,
        &[("header", "X-Original-Status:"), ("value", "486")],
    ));
    assert!(
        run(sipp(Some(&s), "uac.xml", "bob", free_port(), &[])),
        "the call was answered by voice mail"
    );
    assert!(finish(busy), "bob was tried first");
    assert!(finish(vm), "voice mail got the call, marked 486");
}

/// Bob's phone is gone (nothing answers at its contact): timer C ends the branch with 408 and
/// the failure route sends the call to voice mail.
#[test]
fn an_unanswered_subscriber_is_forwarded_to_voicemail_after_408() {
    let dir = tmp();
    let (bob_port, vm_port) = (free_port(), free_port());
    let s = start_example(
        dir.path(),
        "voicemail",
        &[("192.0.2.60:5060", format!("127.0.0.1:{vm_port}"))],
        "[proxy]\ntimer_c = 2",
    );
    // sipp registers bob at its port and exits: nothing answers there afterwards.
    assert!(register(&s, "bob", bob_port, "1.0", "600", "200"));
    let vm = spawn(sipp(
        None,
        "uas_header.xml",
        "vm",
        vm_port,
        &[("header", "X-Original-Status:"), ("value", "408")],
    ));
    assert!(
        run(sipp(Some(&s), "uac.xml", "bob", free_port(), &[])),
        "the call was answered by voice mail"
    );
    assert!(finish(vm), "voice mail got the call, marked 408");
}

#[test]
fn relayed_requests_carry_the_added_header() {
    let dir = tmp();
    let s = start_example(dir.path(), "add-header", &[], "");
    let port = free_port();
    assert!(register(&s, "carol", port, "1.0", "600", "200"));
    let uas = spawn(sipp(
        None,
        "uas_header.xml",
        "carol",
        port,
        &[
            ("header", "X-Relayed-By:"),
            ("value", "ferrosip 127\\.0\\.0\\.1$"),
        ],
    ));
    assert!(run(sipp(Some(&s), "uac.xml", "carol", free_port(), &[])));
    assert!(finish(uas), "the header arrived");
}

#[test]
fn one_domain_is_redirected_and_the_other_proxied() {
    let dir = tmp();
    let domains = "[server]\ndomains = [\"voip.example.org\", \"moved.example.org\"]";
    let s = start_example(dir.path(), "redirect-domain", &[], domains);
    let (moved, here) = (free_port(), free_port());
    let register_in = |user: &str, port: u16, domain: &str| {
        run(sipp(
            Some(&s),
            "register.xml",
            user,
            port,
            &[
                ("q", "1.0"),
                ("expires", "600"),
                ("status", "200"),
                ("domain", domain),
            ],
        ))
    };
    assert!(register_in("gina", moved, "moved.example.org"));
    assert!(register_in("hank", here, "voip.example.org"));
    assert!(run(sipp(
        Some(&s),
        "uac_fail.xml",
        "gina",
        free_port(),
        &[
            ("status", "302"),
            ("mf", "70"),
            ("domain", "moved.example.org")
        ]
    )));
    let uas = spawn(sipp(None, "uas.xml", "hank", here, &[]));
    assert!(run(sipp(
        Some(&s),
        "uac.xml",
        "hank",
        free_port(),
        &[("domain", "voip.example.org")]
    )));
    assert!(finish(uas));
}

#[test]
fn a_named_route_classifies_by_its_return_value() {
    let dir = tmp();
    let s = start_example(dir.path(), "named-route", &[], "");
    let fail = |user: &str, status: &str| {
        run(sipp(
            Some(&s),
            "uac_fail.xml",
            user,
            free_port(),
            &[("status", status), ("mf", "70")],
        ))
    };
    assert!(fail("0900123456", "403"), "premium rate barred");
    assert!(fail("112", "404"), "emergency to the PSTN");
    let port = free_port();
    assert!(register(&s, "ivan", port, "1.0", "600", "200"));
    let uas = spawn(sipp(None, "uas.xml", "ivan", port, &[]));
    assert!(run(sipp(Some(&s), "uac.xml", "ivan", free_port(), &[])));
    assert!(finish(uas));
}

#[test]
fn the_stateless_script_relays_a_whole_call() {
    let dir = tmp();
    let s = start_example(dir.path(), "stateless", &[], "");
    let port = free_port();
    assert!(register(&s, "sam", port, "1.0", "600", "200"));
    let uas = spawn(sipp(None, "uas.xml", "sam", port, &[]));
    assert!(
        run(sipp(Some(&s), "uac.xml", "sam", free_port(), &[])),
        "call through the stateless proxy failed"
    );
    assert!(finish(uas), "UAS side failed");
}

/// SIGHUP reloads the script; a broken one leaves the running script in place.
#[test]
fn sighup_reloads_the_script_and_keeps_it_on_errors() {
    let dir = tmp();
    let script = dir.path().join("routes.cfg");
    let answer = |reason: &str| {
        format!("request_route {{ if (is_method(\"OPTIONS\")) {{ sl_send_reply(200, \"{reason}\"); }} }}\n")
    };
    std::fs::write(&script, answer("First")).expect("write");
    let s = Server::start_with_config(dir.path(), "[routing]\nscript = \"routes.cfg\"\n");
    let ua = Ua::new();
    let ask = |n: u32| {
        ua.send(s.addr(), &ua.options(s.port, &format!("hup-{n}")));
        ua.recv().reason().map(str::to_owned)
    };
    assert_eq!(ask(1).as_deref(), Some("First"));
    let hup = |s: &Server| {
        let ok = Command::new("kill")
            .args(["-HUP", &s.pid().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    std::fs::write(&script, answer("Second")).expect("write");
    hup(&s);
    assert_eq!(ask(2).as_deref(), Some("Second"));
    std::fs::write(
        &script,
        "request_route { sl_send_reply(200, \"Broken\") }\n",
    )
    .expect("write");
    hup(&s);
    assert_eq!(
        ask(3).as_deref(),
        Some("Second"),
        "a broken script is not loaded"
    );
}
