//! Subscribers from the CLI, and REGISTER with digest authentication against the real binary.

mod support;

use auth::{expected_response, ha1, Algorithm, Credentials};
use sip_message::header::AuthHeader;
use sip_message::{HeaderName, Message};
use support::{free_port, Server, Ua};

/// Runs `ferrosip user …` on the database `db` with `stdin`; (success, stdout, stderr).
fn user(db: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let db = db.to_str().expect("utf-8 path");
    let args: Vec<&str> = ["user"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--db", db])
        .collect();
    let out = support::cli(&args, stdin);
    (out.ok, out.stdout, out.stderr)
}

/// Adds alice@127.0.0.1 (password "wonderland") to the database a server in `dir` uses.
fn add_alice(dir: &std::path::Path) {
    let db = dir.join("ferrosip.db");
    let added = user(
        &db,
        &["add", "alice@127.0.0.1", "--password-stdin"],
        "wonderland\n",
    );
    assert!(added.0, "{added:?}");
}

#[test]
fn user_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("f.db");
    let (ok, out, _) = user(
        &db,
        &["add", "alice@Example.COM", "--password-stdin"],
        "s3cret\n",
    );
    assert!(ok && out.contains("added alice@example.com"), "{out}");
    let (ok, _, err) = user(
        &db,
        &["add", "alice@example.com", "--password-stdin"],
        "x\n",
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    assert!(user(&db, &["add", "bob@example.net", "--password-stdin"], "b\n").0);
    let (_, list, _) = user(&db, &["list"], "");
    assert_eq!(list, "alice@example.com\nbob@example.net\n");
    let (_, list, _) = user(&db, &["list", "example.net"], "");
    assert_eq!(list, "bob@example.net\n");
    let (ok, show, _) = user(&db, &["show", "alice@example.com"], "");
    assert!(
        ok && show.contains("user:       alice") && !show.contains("s3cret"),
        "{show}"
    );
    assert!(
        user(
            &db,
            &["passwd", "alice@example.com", "--password-stdin"],
            "new\n"
        )
        .0
    );
    let (ok, _, err) = user(
        &db,
        &["passwd", "carol@example.com", "--password-stdin"],
        "x\n",
    );
    assert!(!ok && err.contains("no subscriber"), "{err}");
    let (ok, _, err) = user(&db, &["add", "nodomain", "--password-stdin"], "x\n");
    assert!(!ok && err.contains("is not user@domain"), "{err}");
    let (ok, _, err) = user(&db, &["add", "dave@example.com", "--password-stdin"], "\n");
    assert!(!ok && err.contains("empty password"), "{err}");
    assert!(user(&db, &["rm", "bob@example.net"], "").0);
    assert!(!user(&db, &["rm", "bob@example.net"], "").0);
    let (_, list, _) = user(&db, &["list"], "");
    assert_eq!(list, "alice@example.com\n");
}

/// The credentials a client computes for the challenge in `challenge` (a 401 or a 407) of
/// algorithm `alg`, for a `method` request to `uri` with this password.
#[allow(clippy::too_many_arguments)]
fn authorization(
    challenge: &Message,
    alg: Algorithm,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let name = match challenge.status() {
        Some(407) => HeaderName::ProxyAuthenticate,
        _ => HeaderName::WwwAuthenticate,
    };
    let ch = challenge
        .auth_headers(name)
        .filter_map(Result::ok)
        .find(|h| h.get("algorithm").as_deref() == Some(alg.token()))
        .expect("a challenge for the algorithm");
    let (realm, nonce) = (
        ch.get("realm").expect("realm"),
        ch.get("nonce").expect("nonce"),
    );
    let text = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"0\", algorithm={}, qop=auth, nc={nc:08x}, cnonce=\"e2e\"",
        alg.token()
    );
    let c =
        Credentials::from_header(&AuthHeader::parse(&text).expect("header")).expect("credentials");
    let response = expected_response(&ha1(alg, user, &realm, password), method, &c);
    text.replace("response=\"0\"", &format!("response=\"{response}\""))
}

/// alice's REGISTER from `ua` to `s` (Call-ID `call_id`), with `auth` as Authorization.
fn alice_register(s: &Server, ua: &Ua, call_id: &str, cseq: u32, auth: Option<&str>) -> String {
    let text = ua.register(s.port, "alice", call_id, cseq, "");
    match auth {
        Some(a) => text.replace(
            "Max-Forwards: 70\n",
            &format!("Authorization: {a}\nMax-Forwards: 70\n"),
        ),
        None => text,
    }
}

/// By default a 401 offers MD5 alone (what every common phone answers).
#[test]
fn the_default_challenge_is_md5_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_on(dir.path(), free_port(), &[]);
    let ua = Ua::new();
    ua.send(s.addr(), &alice_register(&s, &ua, "reg-md5", 1, None));
    let challenge = ua.recv();
    let offered: Vec<String> = challenge
        .auth_headers(HeaderName::WwwAuthenticate)
        .filter_map(Result::ok)
        .filter_map(|h| h.get("algorithm").map(|a| a.into_owned()))
        .collect();
    assert_eq!(offered, ["MD5"]);
}

/// A realm configured for SHA-256 and MD5 offers both and takes either; one configured for
/// SHA-256 alone does not take MD5 credentials (no downgrade).
#[test]
fn register_is_challenged_and_accepted_with_the_password_in_both_algorithms() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_with_config(
        dir.path(),
        "[auth.realm_algorithms]\n\"127.0.0.1\" = [\"SHA-256\", \"MD5\"]\n",
    );
    let ua = Ua::new();
    let uri = format!("sip:127.0.0.1:{}", s.port);
    let mut cseq = 0;
    let mut register = |auth: Option<String>| {
        cseq += 1;
        ua.send(
            s.addr(),
            &alice_register(&s, &ua, "reg-auth", cseq, auth.as_deref()),
        );
        ua.recv()
    };
    let challenge = register(None);
    assert_eq!(challenge.status(), Some(401));
    assert_eq!(
        challenge.auth_headers(HeaderName::WwwAuthenticate).count(),
        2
    );
    // Both challenges carry one nonce: each use counts up.
    for (nc, alg) in (1..).zip(Algorithm::ALL) {
        let good = authorization(&challenge, alg, "alice", "wonderland", "REGISTER", &uri, nc);
        assert_eq!(register(Some(good.clone())).status(), Some(200), "{alg:?}");
        assert_eq!(register(Some(good)).status(), Some(401), "{alg:?} replayed");
    }
    let wrong = authorization(
        &challenge,
        Algorithm::Md5,
        "alice",
        "guess",
        "REGISTER",
        &uri,
        3,
    );
    assert_eq!(
        register(Some(wrong)).status(),
        Some(401),
        "a wrong password is challenged again"
    );
}

#[test]
fn a_realm_of_sha256_alone_refuses_md5_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_with_config(
        dir.path(),
        "[auth.realm_algorithms]\n\"127.0.0.1\" = [\"SHA-256\"]\n",
    );
    let ua = Ua::new();
    let uri = format!("sip:127.0.0.1:{}", s.port);
    ua.send(s.addr(), &alice_register(&s, &ua, "reg-256", 1, None));
    let challenge = ua.recv();
    assert_eq!(
        challenge.auth_headers(HeaderName::WwwAuthenticate).count(),
        1
    );
    let good = authorization(
        &challenge,
        Algorithm::Sha256,
        "alice",
        "wonderland",
        "REGISTER",
        &uri,
        1,
    );
    // The same nonce answered in MD5 (as an attacker rewriting the challenge would have it).
    let md5 = good
        .replace("algorithm=SHA-256", "algorithm=MD5")
        .replace("nc=00000001", "nc=00000002");
    let register = |cseq, auth: &str| {
        ua.send(
            s.addr(),
            &alice_register(&s, &ua, "reg-256", cseq, Some(auth)),
        );
        ua.recv().status()
    };
    assert_eq!(register(2, &md5), Some(401), "MD5 is not taken");
    // Credentials in both algorithms, MD5 first: the SHA-256 ones are taken.
    let both = alice_register(&s, &ua, "reg-256", 3, Some(&md5)).replace(
        "Max-Forwards: 70\n",
        &format!("Authorization: {good}\nMax-Forwards: 70\n"),
    );
    ua.send(s.addr(), &both);
    assert_eq!(ua.recv().status(), Some(200));
}

/// sipp answers only MD5 challenges, and only the first: the default configuration.
#[test]
fn sipp_registers_with_the_password_and_is_refused_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_on(dir.path(), free_port(), &[]);
    let run = |password: &str, status: &str| {
        let mut c = support::sipp::sipp(
            Some(&s),
            "register_auth.xml",
            "alice",
            free_port(),
            &[("status", status)],
        );
        c.args(["-au", "alice", "-ap", password]);
        support::sipp::run(c)
    };
    assert!(run("wonderland", "200"), "the right password registers");
    assert!(run("guess", "401"), "a wrong one is challenged again");
}

/// sipsak (Debian 0.9.8.1) registers with the right password and is refused with a wrong
/// one or as an unknown user. It answers only the first challenge and only MD5; it mangles
/// the user name of the credentials (`-u` sets it) and the last digit of a port in the
/// Request-URI (so the server is named as outbound proxy with `-p`). The default
/// configuration.
#[test]
fn sipsak_registers_with_the_password_and_is_refused_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_on(dir.path(), free_port(), &[]);
    let contact_port = free_port();
    let sipsak = |user: &str, password: &str| {
        let out = std::process::Command::new("sipsak")
            .args(["-U", "-vv", "-x", "600", "-u", user, "-a", password])
            .args(["-C", &format!("sip:{user}@127.0.0.1:{contact_port}")])
            .args(["-s", &format!("sip:{user}@127.0.0.1")])
            .args(["-p", &format!("127.0.0.1:{}", s.port)])
            .output()
            .expect("sipsak runs (scripts/test.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, out) = sipsak("alice", "wonderland");
    assert!(ok && out.contains("completed successful"), "{out}");
    for (user, password) in [("alice", "guess"), ("mallory", "guess")] {
        let (ok, out) = sipsak(user, password);
        assert!(!ok && out.contains("SIP/2.0 401"), "{user}: {out}");
    }
    let db = dir.path().join("ferrosip.db");
    let shown = support::cli(
        &["location", "show", "--db", db.to_str().expect("utf-8")],
        "",
    );
    assert!(
        shown
            .stdout
            .contains(&format!("sip:alice@127.0.0.1:{contact_port}"))
            && !shown.stdout.contains("mallory"),
        "{}",
        shown.stdout
    );
}

/// With subscribers, requests from their domain are challenged (407), unless they come from
/// a trusted peer.
#[test]
fn a_trusted_peer_is_not_challenged() {
    for (trusted, expected) in [("", 407), ("trusted = [\"127.0.0.0/8\"]", 404)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("ferrosip.db");
        assert!(user(&db, &["add", "alice@127.0.0.1", "--password-stdin"], "w\n").0);
        let s = Server::start_with_config(dir.path(), &format!("[auth]\n{trusted}\n"));
        let ua = Ua::new();
        // For a user: looked up (404, no contacts) when trusted, else challenged.
        let to_user =
            ua.options(s.port, "trust-1")
                .replacen("OPTIONS sip:", "OPTIONS sip:nobody@", 1);
        ua.send(s.addr(), &to_user);
        assert_eq!(ua.recv().status(), Some(expected), "{trusted:?}");
        // A keep-alive for the server itself is answered, trusted or not.
        ua.send(s.addr(), &ua.options(s.port, "trust-2"));
        assert_eq!(ua.recv().status(), Some(200), "{trusted:?}");
    }
}

/// A source that fails to authenticate too often is ignored for a while; a flood from one
/// source is cut.
#[test]
fn failed_authentications_ban_and_floods_are_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_with_config(
        dir.path(),
        "[security]\nauth_failures = 2\nban = 60\nflood_limit = 0\n",
    );
    let ua = Ua::new();
    let uri = format!("sip:127.0.0.1:{}", s.port);
    let send = |cseq: u32, auth: Option<String>| {
        ua.send(
            s.addr(),
            &alice_register(&s, &ua, "ban-1", cseq, auth.as_deref()),
        );
        ua.recv_timeout(std::time::Duration::from_millis(500))
            .map(|(m, _)| m)
    };
    let challenge = send(1, None).expect("a challenge");
    // The second user name tries to forge a line naming another source.
    for (nc, user) in [(1, "alice"), (2, "x src=192.0.2.66")] {
        let wrong = authorization(
            &challenge,
            Algorithm::Md5,
            user,
            "guess",
            "REGISTER",
            &uri,
            nc,
        );
        assert_eq!(
            send(1 + nc, Some(wrong)).and_then(|m| m.status()),
            Some(401)
        );
    }
    assert!(
        send(10, None).is_none(),
        "banned after two failures: no answer at all"
    );
    // Each failure and the ban are logged for fail2ban: the README's filter matches
    // `authentication failed src=<HOST> ` and `source banned after failed authentications
    // src=<HOST> `, the client's text only quoted after it.
    let log = s.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("authentication failed"))
        .collect();
    assert_eq!(failed.len(), 2, "{log}");
    for (line, user) in failed.iter().zip(["\"alice\"", "\"x src=192.0.2.66\""]) {
        let tail = format!(
            "authentication failed src=127.0.0.1 user={user} realm=\"127.0.0.1\" method=\"REGISTER\""
        );
        assert!(line.ends_with(&tail), "{line}");
    }
    assert!(
        log.lines()
            .any(|l| l.contains("source banned after failed authentications src=127.0.0.1 ")),
        "{log}"
    );
    // The fail2ban filter shipped in packaging/ finds the real source in each failure.
    let filter = std::fs::read_to_string(support::data(
        "../../packaging/fail2ban/filter.d-ferrosip.conf",
    ))
    .expect("the fail2ban filter");
    let failregex = filter
        .lines()
        .find_map(|l| l.strip_prefix("failregex = "))
        .expect("failregex");
    let re = regex::Regex::new(&failregex.replace("<HOST>", r"(?P<host>\S+)")).expect("regex");
    let hosts: Vec<&str> = log
        .lines()
        .filter_map(|l| re.captures(l))
        .map(|c| c.name("host").expect("host").as_str())
        .collect();
    assert_eq!(hosts, ["127.0.0.1", "127.0.0.1"], "{log}");
    // As fail2ban's systemd backend shows a journal line: "HOST ferrosip[PID]: " in front.
    for line in log.lines().filter(|l| l.contains("authentication failed")) {
        let journal = format!("vm ferrosip[4242]: {line}");
        let host = re.captures(&journal).and_then(|c| c.name("host"));
        assert_eq!(host.map(|h| h.as_str()), Some("127.0.0.1"), "{journal}");
    }

    // Floods: another server, at most 5 requests a second from one address.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start_with_config(dir.path(), "[security]\nflood_limit = 5\n");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // past the readiness probes
    let ua = Ua::new();
    for i in 0..20 {
        ua.send(s.addr(), &ua.options(s.port, &format!("flood-{i}")));
    }
    let mut answers = 0;
    while ua
        .recv_timeout(std::time::Duration::from_millis(300))
        .is_some()
    {
        answers += 1;
    }
    assert!((1..=5).contains(&answers), "{answers} of 20 answered");
}

/// Right credentials on an expired nonce get a new challenge with `stale=true`.
#[test]
fn an_expired_nonce_is_answered_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_with_config(dir.path(), "[auth]\nnonce_lifetime = 1\n");
    let ua = Ua::new();
    let uri = format!("sip:127.0.0.1:{}", s.port);
    let send = |cseq: u32, auth: Option<String>| {
        ua.send(
            s.addr(),
            &alice_register(&s, &ua, "stale-1", cseq, auth.as_deref()),
        );
        ua.recv()
    };
    let old = send(1, None);
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let late = authorization(
        &old,
        Algorithm::Md5,
        "alice",
        "wonderland",
        "REGISTER",
        &uri,
        1,
    );
    let again = send(2, Some(late));
    assert_eq!(again.status(), Some(401));
    let stale: Vec<_> = again
        .auth_headers(HeaderName::WwwAuthenticate)
        .map(|h| h.expect("challenge").get("stale").map(|v| v.into_owned()))
        .collect();
    assert_eq!(stale, [Some("true".into())]);
    let fresh = authorization(
        &again,
        Algorithm::Md5,
        "alice",
        "wonderland",
        "REGISTER",
        &uri,
        1,
    );
    assert_eq!(send(3, Some(fresh)).status(), Some(200));
}

/// The same user name in two domains: two subscribers, two passwords. An INVITE from a
/// subscriber is challenged with 407 and passes with Proxy-Authorization.
#[test]
fn two_domains_keep_their_users_apart_and_invite_gets_407() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let db = dir.path().join("ferrosip.db");
    assert!(
        user(
            &db,
            &["add", "alice@localhost", "--password-stdin"],
            "looking-glass\n"
        )
        .0
    );
    let s = Server::start_on(dir.path(), free_port(), &[]);
    let ua = Ua::new();
    let register = |domain: &str, cseq: u32, auth: Option<String>| {
        let text = alice_register(&s, &ua, &format!("two-{domain}"), cseq, auth.as_deref())
            .replace("@127.0.0.1>", &format!("@{domain}>"))
            .replace(
                &format!("REGISTER sip:127.0.0.1:{}", s.port),
                &format!("REGISTER sip:{domain}:{}", s.port),
            );
        ua.send(s.addr(), &text);
        ua.recv()
    };
    let uri = format!("sip:localhost:{}", s.port);
    let challenge = register("localhost", 1, None);
    assert_eq!(challenge.status(), Some(401));
    let other_password = authorization(
        &challenge,
        Algorithm::Md5,
        "alice",
        "wonderland",
        "REGISTER",
        &uri,
        1,
    );
    assert_eq!(
        register("localhost", 2, Some(other_password)).status(),
        Some(401)
    );
    let own_password = authorization(
        &challenge,
        Algorithm::Md5,
        "alice",
        "looking-glass",
        "REGISTER",
        &uri,
        2,
    );
    assert_eq!(
        register("localhost", 3, Some(own_password)).status(),
        Some(200)
    );

    let invite = |branch: &str, auth: &str| {
        format!(
            "INVITE sip:nobody@127.0.0.1:{port} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{branch}\n\
From: <sip:alice@127.0.0.1>;tag=i\nTo: <sip:nobody@127.0.0.1>\nCall-ID: inv-{branch}\nCSeq: 1 INVITE\n\
Contact: <sip:alice@127.0.0.1:{p}>\n{auth}Max-Forwards: 70\nContent-Length: 0\n\n",
            port = s.port,
            p = ua.port
        )
    };
    ua.send(s.addr(), &invite("inv1", ""));
    let challenge = ua.recv();
    assert_eq!(challenge.status(), Some(407));
    let target = format!("sip:nobody@127.0.0.1:{}", s.port);
    let auth = authorization(
        &challenge,
        Algorithm::Md5,
        "alice",
        "wonderland",
        "INVITE",
        &target,
        1,
    );
    ua.send(
        s.addr(),
        &invite("inv2", &format!("Proxy-Authorization: {auth}\n")),
    );
    assert_eq!(
        ua.recv().status(),
        Some(404),
        "authenticated: routed, and nobody is there"
    );
}

/// A database created for one test on a real server, dropped at the end.
struct ServerDb {
    admin: String,
    name: String,
    url: String,
}

impl ServerDb {
    /// On PostgreSQL (`postgres`) or MariaDB (`mysql`) at 127.0.0.1, or the server named by
    /// `FERROSIP_TEST_POSTGRES` / `FERROSIP_TEST_MYSQL` (an admin URL).
    fn create(kind: &str) -> ServerDb {
        use sqlx::{Connection, Executor};
        let (var, default) = match kind {
            "postgres" => (
                "FERROSIP_TEST_POSTGRES",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            _ => ("FERROSIP_TEST_MYSQL", "mysql://root@127.0.0.1:3306/mysql"),
        };
        let admin = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let name = format!("ferrosip_e2e_{}_{}", std::process::id(), kind);
        let base = admin.rsplit_once('/').expect("a URL with a database").0;
        let url = format!("{base}/{name}");
        let sql = format!("CREATE DATABASE {name}");
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                let result = if kind == "postgres" {
                    let mut c = sqlx::PgConnection::connect(&admin).await;
                    match &mut c {
                        Ok(c) => c.execute(sql.as_str()).await.map(drop),
                        Err(_) => c.map(drop),
                    }
                } else {
                    let mut c = sqlx::MySqlConnection::connect(&admin).await;
                    match &mut c {
                        Ok(c) => c.execute(sql.as_str()).await.map(drop),
                        Err(_) => c.map(drop),
                    }
                };
                result.unwrap_or_else(|e| panic!("{admin} ({var}): {e}"));
            });
        ServerDb { admin, name, url }
    }
}

impl Drop for ServerDb {
    fn drop(&mut self) {
        use sqlx::{Connection, Executor};
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = tokio::runtime::Runtime::new().map(|rt| {
            rt.block_on(async {
                if admin.starts_with("postgres") {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ = c
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                    }
                } else if let Ok(mut c) = sqlx::MySqlConnection::connect(&admin).await {
                    let _ = c
                        .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                        .await;
                }
            })
        });
    }
}

/// The server keeps subscribers and bindings in PostgreSQL and MariaDB as in SQLite:
/// REGISTER is challenged and accepted, and after `kill -9` the binding is still there.
#[test]
fn postgresql_and_mariadb_hold_subscribers_and_bindings_across_a_restart() {
    for kind in ["postgres", "mysql"] {
        let db = ServerDb::create(kind);
        let added = support::cli(
            &[
                "user",
                "add",
                "alice@127.0.0.1",
                "--password-stdin",
                "--db",
                &db.url,
            ],
            "wonderland\n",
        );
        assert!(added.ok, "{kind}: {}", added.stderr);
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Server::start(dir.path(), &["--db", &db.url]);
        let ua = Ua::new();
        ua.send(s.addr(), &alice_register(&s, &ua, "reg-db", 1, None));
        let challenge = ua.recv();
        assert_eq!(challenge.status(), Some(401), "{kind}");
        let uri = format!("sip:127.0.0.1:{}", s.port);
        let good = authorization(
            &challenge,
            Algorithm::Md5,
            "alice",
            "wonderland",
            "REGISTER",
            &uri,
            1,
        );
        ua.send(s.addr(), &alice_register(&s, &ua, "reg-db", 2, Some(&good)));
        assert_eq!(ua.recv().status(), Some(200), "{kind}");
        let (dir_path, port) = s.kill9();
        let s = Server::start_on(&dir_path, port, &["--db", &db.url]);
        let caller = Ua::new();
        caller.send(
            s.addr(),
            &format!(
                "OPTIONS sip:alice@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKdb{kind}\n\
From: <sip:carol@example.net>;tag=c\nTo: <sip:alice@127.0.0.1>\nCall-ID: db-{kind}\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
                p = caller.port
            ),
        );
        let (req, _) = ua
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{kind}: the binding survived the restart"));
        assert_eq!(req.call_id().unwrap(), format!("db-{kind}"));
        drop(s);
    }
}

/// Replies the server makes itself (401, 200, 423 to a REGISTER; 200 to an OPTIONS) tell the
/// client where it was seen from: `received` and `rport` on the top Via (RFC 3261 §18.2.1,
/// RFC 3581 §4). A phone behind NAT learns its public address from them.
#[test]
fn replies_of_our_own_carry_received_and_rport() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_alice(dir.path());
    let s = Server::start_on(dir.path(), free_port(), &[]);
    let ua = Ua::new();
    let uri = format!("sip:127.0.0.1:{}", s.port);
    let natted = |text: String| {
        let via = format!("Via: SIP/2.0/UDP 127.0.0.1:{};", ua.port);
        text.replacen(&via, "Via: SIP/2.0/UDP 10.9.9.9:5999;rport;", 1)
    };
    let expected = format!("received=127.0.0.1;rport={}", ua.port);
    let top_via = |m: &Message| {
        m.header(HeaderName::Via)
            .map(|h| h.value_unfolded().into_owned())
            .unwrap_or_default()
    };
    ua.send(s.addr(), &natted(alice_register(&s, &ua, "nat-1", 1, None)));
    let challenge = ua.recv();
    assert_eq!(challenge.status(), Some(401));
    assert!(
        top_via(&challenge).ends_with(&expected),
        "{}",
        top_via(&challenge)
    );
    let good = authorization(
        &challenge,
        Algorithm::Md5,
        "alice",
        "wonderland",
        "REGISTER",
        &uri,
        1,
    );
    ua.send(
        s.addr(),
        &natted(alice_register(&s, &ua, "nat-1", 2, Some(&good))),
    );
    let ok = ua.recv();
    assert_eq!(ok.status(), Some(200));
    assert!(top_via(&ok).ends_with(&expected), "{}", top_via(&ok));
    let good = authorization(
        &challenge,
        Algorithm::Md5,
        "alice",
        "wonderland",
        "REGISTER",
        &uri,
        2,
    );
    let brief = alice_register(&s, &ua, "nat-1", 3, Some(&good))
        .replace("Max-Forwards: 70\n", "Expires: 1\nMax-Forwards: 70\n");
    ua.send(s.addr(), &natted(brief));
    let too_brief = ua.recv();
    assert_eq!(too_brief.status(), Some(423));
    assert!(
        top_via(&too_brief).ends_with(&expected),
        "{}",
        top_via(&too_brief)
    );
    ua.send(s.addr(), &natted(ua.options(s.port, "nat-2")));
    let pong = ua.recv();
    assert_eq!(pong.status(), Some(200));
    assert!(top_via(&pong).ends_with(&expected), "{}", top_via(&pong));
}
