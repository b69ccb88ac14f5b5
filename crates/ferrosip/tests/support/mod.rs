//! Helpers for end-to-end tests: start the real `ferrosip` binary on loopback ports and talk
//! SIP to it over UDP.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_message::Message;

pub mod baresip;
pub mod browser;
pub mod ca;
pub mod dns;
pub mod linphone;
pub mod netns;
pub mod phone;
pub mod sipp;

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// The management API's port (0 when the test turned it off).
    pub api_port: u16,
}

/// A free loopback port (UDP and TCP both free).
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Server {
    /// Starts `ferrosip serve` on a fresh port with its database in `dir`.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_on(dir, free_port(), extra)
    }

    /// Starts with a config file of this text (written into `dir`).
    pub fn start_with_config(dir: &Path, toml: &str) -> Server {
        let config = dir.join("ferrosip.toml");
        std::fs::write(&config, toml).expect("write config");
        let config = config.to_str().expect("utf-8 path").to_owned();
        Server::start(dir, &["--config", &config])
    }

    /// Starts on a given port (a restart reuses the port and database).
    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> Server {
        Server::start_listens(dir, port, &loopback(port), extra)
    }

    /// Starts on a fresh port logging what `filter` (`FERROSIP_LOG`) lets through, for a
    /// test that reads the log.
    pub fn start_logging(dir: &Path, extra: &[&str], filter: &str) -> Server {
        let port = free_port();
        Server::launch(dir, port, &loopback(port), extra, filter)
    }

    /// Starts with these listen addresses; `port` is the IPv4 loopback one used to probe.
    pub fn start_listens(dir: &Path, port: u16, listens: &[String], extra: &[&str]) -> Server {
        let filter = std::env::var("TEST_LOG").unwrap_or("warn".into());
        Server::launch(dir, port, listens, extra, &filter)
    }

    /// Starts with these listen addresses, logging what `filter` lets through.
    pub fn start_listens_logging(
        dir: &Path,
        port: u16,
        listens: &[String],
        extra: &[&str],
        filter: &str,
    ) -> Server {
        Server::launch(dir, port, listens, extra, filter)
    }

    fn launch(dir: &Path, port: u16, listens: &[String], extra: &[&str], filter: &str) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrosip"));
        cmd.arg("serve");
        for l in listens {
            cmd.args(["--listen", l]);
        }
        // Each server has its API on a port of its own (unless the test says), and its
        // token file in `dir`.
        let api_port = if extra.contains(&"--api") {
            0
        } else {
            let port = free_port();
            cmd.args(["--api", &format!("127.0.0.1:{port}")]);
            port
        };
        if !extra.contains(&"--db") {
            cmd.arg("--db").arg(dir.join("ferrosip.db"));
        }
        let child = cmd
            .current_dir(dir)
            .args(extra)
            .env("FERROSIP_LOG", filter)
            .stdout(Stdio::null())
            .stderr(log_file(dir))
            .spawn()
            .expect("start ferrosip");
        let server = Server {
            child,
            port,
            dir: dir.to_owned(),
            api_port,
        };
        server.wait_ready();
        // SIP answers before the API listens: wait for it too (its token file comes first).
        let api = match extra.iter().position(|a| *a == "--api") {
            Some(i) => extra.get(i + 1).and_then(|a| a.parse::<SocketAddr>().ok()),
            None => Some(SocketAddr::from(([127, 0, 0, 1], api_port))),
        };
        if let Some(api) = api {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(api).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        server
    }

    /// Starts `ferrosip serve` in network namespace `ns` with this configuration (its
    /// listen addresses and everything else), its database in `dir`; ready once it logs
    /// that it serves (the test cannot reach it on loopback).
    pub fn start_in(ns: &str, dir: &Path, toml: &str) -> Server {
        let config = dir.join("ferrosip.toml");
        std::fs::write(&config, toml).expect("write config");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                env!("CARGO_BIN_EXE_ferrosip"),
                "serve",
                "--config",
            ])
            .arg(&config)
            .arg("--db")
            .arg(dir.join("ferrosip.db"))
            .current_dir(dir)
            .env("FERROSIP_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file(dir))
            .spawn()
            .expect("start ferrosip");
        let server = Server {
            child,
            port: 5060,
            dir: dir.to_owned(),
            api_port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.log().contains("serving") {
            assert!(
                Instant::now() < deadline,
                "ferrosip did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Stops the server with SIGTERM and returns whether it exited cleanly within 10 s.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn wait_ready(&self) {
        let ua = Ua::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            ua.send(
                self.addr(),
                &ua.options(self.port, &format!("ready-{}", rand_id())),
            );
            if ua.recv_timeout(Duration::from_millis(200)).is_some() {
                return;
            }
        }
        panic!("ferrosip did not answer OPTIONS within 10 s");
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the process with SIGKILL (no clean shutdown) and waits for it.
    pub fn kill9(mut self) -> (PathBuf, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self.port)
    }

    /// What the server logged so far (standard error).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(LOG)).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The log stays out of the suite's output unless the test failed.
        if std::thread::panicking() {
            eprintln!("--- ferrosip's log ---\n{}", self.log());
        }
    }
}

/// UDP and TCP on `port` of 127.0.0.1.
fn loopback(port: u16) -> [String; 2] {
    [
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    ]
}

/// The server's log file in its folder.
const LOG: &str = "ferrosip.log";

/// The log file in `dir`, appended to (a restarted server adds to it).
fn log_file(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG))
        .expect("open the server's log file")
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// The default routing script changed to relay every call's media (on loopback no phone
/// is behind NAT), written as `relay-all.cfg` in `dir`: a `[routing] script` for it.
pub fn relay_all_script(dir: &Path) -> &'static str {
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ferrosip.cfg"))
            .expect("default script")
            .replace(
                "isflag(FLT_NATS) || dst_behind_nat()",
                "is_method(\"INVITE\")",
            );
    assert!(
        script.contains("rtp_relay();"),
        "the default script relays media"
    );
    std::fs::write(dir.join("relay-all.cfg"), script).expect("write");
    "relay-all.cfg"
}

/// A minimal SIP user agent on a UDP socket.
pub struct Ua {
    pub sock: UdpSocket,
    pub port: u16,
}

impl Ua {
    pub fn new() -> Ua {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = sock.local_addr().expect("addr").port();
        Ua { sock, port }
    }

    pub fn send(&self, to: SocketAddr, text: &str) {
        self.sock
            .send_to(
                text.replace('\n', "\r\n")
                    .replace("\r\r\n", "\r\n")
                    .as_bytes(),
                to,
            )
            .expect("send");
    }

    pub fn send_raw(&self, to: SocketAddr, data: &[u8]) {
        self.sock.send_to(data, to).expect("send");
    }

    pub fn recv_timeout(&self, t: Duration) -> Option<(Message, SocketAddr)> {
        self.sock.set_read_timeout(Some(t)).expect("timeout");
        let mut buf = vec![0u8; 65535];
        let (n, from) = self.sock.recv_from(&mut buf).ok()?;
        buf.truncate(n);
        Some((
            Message::parse(buf).expect("server sent a parsable message"),
            from,
        ))
    }

    /// Waits for a message, skipping `100 Trying`.
    pub fn recv(&self) -> Message {
        loop {
            let (m, _) = self
                .recv_timeout(Duration::from_secs(5))
                .expect("expected a message within 5 s");
            if m.status() != Some(100) {
                return m;
            }
        }
    }

    pub fn options(&self, server_port: u16, call_id: &str) -> String {
        format!(
            "OPTIONS sip:127.0.0.1:{server_port} SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{call_id}\n\
From: <sip:probe@127.0.0.1>;tag=1\nTo: <sip:127.0.0.1:{server_port}>\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
            p = self.port
        )
    }

    /// A REGISTER of `user` with this UA's address as contact (a new branch each time).
    pub fn register(
        &self,
        server_port: u16,
        user: &str,
        call_id: &str,
        cseq: u32,
        expires: &str,
    ) -> String {
        static BRANCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let b = BRANCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(
            "REGISTER sip:127.0.0.1:{server_port} SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKr{call_id}{cseq}x{b}\n\
From: <sip:{user}@127.0.0.1>;tag=r1\nTo: <sip:{user}@127.0.0.1>\nCall-ID: {call_id}\nCSeq: {cseq} REGISTER\n\
Contact: <sip:{user}@127.0.0.1:{p}>{expires}\nMax-Forwards: 70\nContent-Length: 0\n\n",
            p = self.port
        )
    }
}

/// What a `ferrosip` command did.
pub struct Cli {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `ferrosip` binary with `args`, `stdin` on its standard input.
pub fn cli(args: &[&str], stdin: &str) -> Cli {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrosip"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferrosip");
    let mut input = child.stdin.take().expect("stdin");
    // A command that refuses its arguments exits without reading its input: a broken pipe.
    if let Err(e) = input.write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(input);
    let out = child.wait_with_output().expect("wait for ferrosip");
    Cli {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The test data folder.
pub fn data(path: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "../../tests/data", path]
        .iter()
        .collect()
}

/// `GET path` on the server's HTTP API, with its token: the body.
pub fn api(s: &Server, path: &str) -> String {
    let token = std::fs::read_to_string(s.dir.join("ferrosip.token")).expect("token");
    ureq::get(&format!("http://127.0.0.1:{}{path}", s.api_port))
        .set("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .expect("API")
        .into_string()
        .expect("text")
}
