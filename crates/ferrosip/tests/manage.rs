//! Domains and aliases from the CLI, and the management API over HTTP against the real
//! binary: the CLI through it, every endpoint, the token, reload and /metrics.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{free_port, Server, Ua};

/// Runs `ferrosip ARGS` with `stdin`: (success, stdout + stderr).
fn ferrosip(args: &[&str], stdin: &str) -> (bool, String) {
    let out = support::cli(args, stdin);
    (out.ok, out.stdout + &out.stderr)
}

/// A REGISTER of `user@domain` (domain in the URIs, sent to the server's address).
fn register(ua: &Ua, s: &Server, user: &str, domain: &str, call_id: &str) -> sip_message::Message {
    ua.send(
        s.addr(),
        &format!(
            "REGISTER sip:{domain} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{call_id}\n\
From: <sip:{user}@{domain}>;tag=r\nTo: <sip:{user}@{domain}>\nCall-ID: {call_id}\nCSeq: 1 REGISTER\n\
Contact: <sip:{user}@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Length: 0\n\n",
            p = ua.port
        ),
    );
    ua.recv()
}

/// An OPTIONS to `user@domain` through the server (the location service decides).
fn options_to(ua: &Ua, s: &Server, user: &str, domain: &str, call_id: &str) {
    ua.send(
        s.addr(),
        &format!(
            "OPTIONS sip:{user}@{domain} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{call_id}\n\
From: <sip:caller@{domain}>;tag=c\nTo: <sip:{user}@{domain}>\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
            p = ua.port
        ),
    );
}

#[test]
fn domains_and_aliases_on_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("f.db");
    let db = db.to_str().expect("utf-8");
    let run = |args: &[&str]| ferrosip(&[args, &["--db", db]].concat(), "pw\n");
    let (ok, out) = run(&["user", "add", "alice@Example.org", "--password-stdin"]);
    assert!(ok && out.contains("(domain example.org added)"), "{out}");
    let (ok, out) = run(&["domain", "add", "example.net"]);
    assert!(ok && out.contains("added domain example.net"), "{out}");
    assert!(!run(&["domain", "add", "EXAMPLE.net"]).0, "hosted already");
    assert_eq!(run(&["domain", "list"]).1, "example.net\nexample.org\n");
    let (ok, out) = run(&["domain", "rm", "example.org"]);
    assert!(!ok && out.contains("still has 1 subscriber(s)"), "{out}");
    let (ok, out) = run(&["alias", "add", "1000@example.org", "alice@example.org"]);
    assert!(
        ok && out.contains("added alias 1000@example.org -> alice@example.org"),
        "{out}"
    );
    let (ok, out) = run(&["alias", "add", "alice@example.org", "bob@example.org"]);
    assert!(!ok && out.contains("subscriber's own address"), "{out}");
    assert!(!run(&["alias", "add", "1000@example.org", "bob@example.org"]).0);
    assert!(!run(&["alias", "add", "no-domain", "bob@example.org"]).0);
    assert_eq!(
        run(&["alias", "list"]).1,
        "1000@example.org -> alice@example.org\n"
    );
    assert_eq!(
        run(&["alias", "list", "example.net"]).1,
        "no aliases in example.net\n"
    );
    assert!(run(&["alias", "rm", "1000@example.org"]).0);
    let (ok, out) = run(&["alias", "rm", "1000@example.org"]);
    assert!(!ok && out.contains("no alias"), "{out}");
    assert!(run(&["user", "rm", "alice@example.org"]).0);
    assert!(run(&["domain", "rm", "example.org"]).0);
    let (ok, out) = run(&["domain", "rm", "example.org"]);
    assert!(!ok && out.contains("no domain"), "{out}");
    assert_eq!(run(&["domain", "list"]).1, "example.net\n");
}

/// A server with its API on a port of its own; its config file is `dir/ferrosip.toml`.
fn server_with_api(dir: &Path, script: &Path) -> (Server, String, String) {
    let api = format!("127.0.0.1:{}", free_port());
    let config = dir.join("ferrosip.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nlisten = \"{api}\"\n[routing]\nscript = \"{}\"\n",
            script.display()
        ),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8").to_owned();
    let s = Server::start(dir, &["--config", &config, "--api", &api]);
    (s, config, format!("http://{api}"))
}

/// The value of one series in Prometheus text, parsed as Prometheus does.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid Prometheus text");
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match found.map(|s| &s.value) {
        Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v)) => *v,
        other => panic!("{name} {labels:?}: {other:?} in\n{text}"),
    }
}

#[test]
fn the_api_serves_the_cli_and_metrics_and_applies_changes_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("route.cfg");
    std::fs::copy(support::data("../../ferrosip.cfg"), &script).expect("script");
    let (s, config, base) = server_with_api(dir.path(), &script);
    let token = std::fs::read_to_string(dir.path().join("ferrosip.token")).expect("token file");
    let token = token.trim();
    let cli = |args: &[&str], stdin: &str| {
        ferrosip(&[args, &["--api", "--config", &config]].concat(), stdin)
    };

    // Without the token, or with a wrong one: 401.
    let status = |r: Result<ureq::Response, ureq::Error>| match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status(ureq::get(&format!("{base}/api/users")).call()), 401);
    let wrong = ureq::get(&format!("{base}/metrics")).set("Authorization", "Bearer nope");
    assert_eq!(status(wrong.call()), 401);
    let get = |path: &str| {
        ureq::get(&format!("{base}{path}"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("GET")
            .into_string()
            .expect("body")
    };

    // An open domain with an alias: reached at once, no reload.
    let bob = Ua::new();
    let (ok, out) = cli(&["domain", "add", "open.test"], "");
    assert!(ok, "{out}");
    assert_eq!(
        register(&bob, &s, "bob", "open.test", "reg-bob").status(),
        Some(200)
    );
    let (ok, out) = cli(&["alias", "add", "2000@open.test", "bob@open.test"], "");
    assert!(ok, "{out}");
    let caller = Ua::new();
    options_to(&caller, &s, "2000", "open.test", "to-alias");
    let (req, _) = bob
        .recv_timeout(Duration::from_secs(5))
        .expect("the alias reaches bob");
    assert_eq!(req.call_id().unwrap(), "to-alias");
    let users: serde_json::Value = serde_json::from_str(&get("/api/aliases")).expect("json");
    assert_eq!(users[0]["alias"], "2000@open.test");

    // Call records (none here: the default script follows no call yet).
    let records: serde_json::Value =
        serde_json::from_str(&get("/api/cdrs?user=bob@open.test&since=0")).expect("json");
    assert_eq!(records, serde_json::json!([]));
    let (ok, out) = cli(&["cdr", "list", "--json"], "");
    assert!(ok && out.contains("no call records"), "{out}");
    let calls: serde_json::Value = serde_json::from_str(&get("/api/calls")).expect("json");
    assert_eq!(calls, serde_json::json!([]));
    let (ok, out) = cli(&["calls"], "");
    assert!(ok && out.contains("no calls in progress"), "{out}");
    let db = dir.path().join("ferrosip.db");
    let (ok, out) = ferrosip(&["calls", "--db", db.to_str().expect("path")], "");
    assert!(
        !ok && out.contains("--api"),
        "the database has no calls in progress: {out}"
    );

    // A subscriber added through the API is challenged at once.
    let (ok, out) = cli(
        &["user", "add", "alice@secure.test", "--password-stdin"],
        "pw\n",
    );
    assert!(ok && out.contains("added alice@secure.test"), "{out}");
    let alice = Ua::new();
    assert_eq!(
        register(&alice, &s, "alice", "secure.test", "reg-a").status(),
        Some(401)
    );
    let (ok, out) = cli(
        &["user", "add", "alice@secure.test", "--password-stdin"],
        "pw\n",
    );
    assert!(!ok && out.contains("exists already"), "{out}");
    let (ok, out) = cli(&["user", "rm", "carol@secure.test"], "");
    assert!(!ok && out.contains("no subscriber"), "{out}");
    assert!(
        cli(
            &["user", "passwd", "alice@secure.test", "--password-stdin"],
            "pw2\n"
        )
        .0
    );
    assert_eq!(cli(&["user", "list"], "").1, "alice@secure.test\n");
    assert!(cli(&["user", "show", "alice@secure.test"], "")
        .1
        .contains("user:       alice"));
    assert_eq!(cli(&["domain", "list"], "").1, "open.test\nsecure.test\n");

    let (ok, out) = cli(&["domain", "rm", "secure.test"], "");
    assert!(!ok && out.contains("still has 1 subscriber(s)"), "{out}");
    assert!(cli(&["domain", "add", "spare.test"], "").0);
    assert!(cli(&["domain", "rm", "spare.test"], "").0);
    let (ok, out) = cli(&["alias", "add", "3000@open.test", "bob@open.test"], "");
    assert!(ok, "{out}");
    assert!(cli(&["alias", "rm", "3000@open.test"], "").0);
    assert_eq!(
        cli(&["alias", "list", "open.test"], "").1,
        "2000@open.test -> bob@open.test\n"
    );

    // Contacts: shown and removed in the running server.
    let (_, all) = cli(&["location", "show"], "");
    assert_eq!(all.lines().count(), 1, "{all}");
    let (_, out) = cli(&["location", "show", "bob@open.test"], "");
    assert!(out.starts_with("sip:bob@open.test\t"), "{out}");
    let (ok, out) = cli(&["location", "rm", "bob@open.test"], "");
    assert!(ok && out.contains("removed 1 contact(s)"), "{out}");
    options_to(&caller, &s, "bob", "open.test", "after-rm");
    assert_eq!(caller.recv().status(), Some(404), "bob is gone at once");
    assert!(!cli(&["location", "rm", "bob@open.test"], "").0);

    // Counters: the CLI and /metrics.
    let (ok, out) = cli(&["stats"], "");
    assert!(
        ok && out.contains("requests_total{direction=\"in\",method=\"REGISTER\"}"),
        "{out}"
    );
    let text = get("/metrics");
    let registers = [("direction", "in"), ("method", "REGISTER")];
    assert_eq!(sample(&text, "ferrosip_requests_total", &registers), 2.0);
    let not_found = [("direction", "out"), ("class", "4xx")];
    assert!(sample(&text, "ferrosip_responses_total", &not_found) >= 2.0);
    let udp_in = [("direction", "in"), ("transport", "udp")];
    assert!(sample(&text, "ferrosip_transport_messages_total", &udp_in) >= 4.0);
    assert_eq!(sample(&text, "ferrosip_subscribers", &[]), 1.0);
    assert_eq!(sample(&text, "ferrosip_contacts_registered", &[]), 0.0);
    assert_eq!(sample(&text, "ferrosip_auth_failures_total", &[]), 0.0);
    sample(&text, "ferrosip_transactions_active", &[]);
    let (ok, out) = cli(&["monitor", "--interval", "0.2", "--count", "1"], "");
    assert!(ok && out.contains("per second"), "{out}");

    // Reload: a broken script is refused and counted, the old one keeps running.
    std::fs::write(&script, "request_route {\n    nonsense(;\n}\n").expect("script");
    let (ok, out) = cli(&["reload"], "");
    assert!(!ok && out.contains("route.cfg:2"), "{out}");
    std::fs::copy(support::data("../../ferrosip.cfg"), &script).expect("script");
    let (ok, out) = cli(&["reload"], "");
    assert!(ok && out.contains("reloaded"), "{out}");
    let text = get("/metrics");
    assert_eq!(
        sample(
            &text,
            "ferrosip_script_reloads_total",
            &[("result", "error")]
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "ferrosip_script_reloads_total", &[("result", "ok")]),
        1.0
    );
    options_to(&caller, &s, "2000", "open.test", "after-reload");
    assert_eq!(
        caller.recv().status(),
        Some(404),
        "the running script answers"
    );
}

#[test]
fn the_cli_says_when_no_server_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("c.toml");
    let api = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &config,
        format!("[api]\nlisten = \"{api}\"\ntoken = \"t\"\n"),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8");
    let (ok, out) = ferrosip(&["stats", "--config", config], "");
    assert!(!ok && out.contains("is `ferrosip serve` running"), "{out}");
    let (ok, out) = ferrosip(&["domain", "list", "--api", "--config", config], "");
    assert!(
        !ok && out.contains("cannot reach the management API"),
        "{out}"
    );
}

/// A reload, by `ferrosip reload` or SIGHUP, logs what it loaded and warns again of the
/// domains anyone may register in, while there are any (until the first subscriber).
#[test]
fn reload_says_what_it_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ferrosip.db");
    let db = db.to_str().expect("utf-8");
    let run = |args: &[&str]| ferrosip(&[args, &["--db", db]].concat(), "pw\n");
    assert!(run(&["domain", "add", "open.test"]).0);
    let s = Server::start_logging(dir.path(), &[], "info");
    let config = dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!("[api]\nlisten = \"127.0.0.1:{}\"\n", s.api_port),
    )
    .expect("config");
    let (ok, out) = ferrosip(&["reload", "--config", config.to_str().expect("utf-8")], "");
    let loaded = "reloaded 0 subscriber(s), 1 domain(s), 0 alias(es) and the routing script \
                  (the built-in default)";
    assert!(ok && out.contains(loaded), "{out}");
    // With a subscriber the server is no longer open.
    assert!(run(&["user", "add", "alice@secure.test", "--password-stdin"]).0);
    assert!(run(&["alias", "add", "100@secure.test", "alice@secure.test"]).0);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status();
    assert!(hup.is_ok_and(|st| st.success()));
    let reloads = |log: &str| log.matches("routing script reloaded").count();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while reloads(&s.log()) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = s.log();
    assert_eq!(reloads(&log), 2, "{log}");
    let counts = "directory reloaded subscribers=1 domains=2 aliases=1";
    assert_eq!(log.matches(counts).count(), 1, "{log}");
    assert_eq!(log.matches("SIGHUP: reloading").count(), 1, "{log}");
    let open = log
        .lines()
        .filter(|l| l.contains("anyone may register in these domains") && l.contains("open.test"))
        .count();
    assert_eq!(
        open, 2,
        "at the start and at the reload before alice: {log}"
    );
}
