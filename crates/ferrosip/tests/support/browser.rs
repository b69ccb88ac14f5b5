//! Headless Chromium running JsSIP or SIP.js (the pages in `tests/browser`) for end-to-end
//! tests. A tiny HTTP server on 127.0.0.1 (std threads) serves the pages, takes the page's
//! events (`POST /event`, a line each, kept in order) and log (`POST /log`), and hands it the
//! test's commands (`GET /command`, long-polled: one line, or 204 after 20 s). Chromium runs
//! with a fake microphone (a 440 Hz tone) in a profile of its own, which is removed on drop
//! after Chromium's whole process group is killed; the pages play the audio they receive.
//! `scripts/test.sh` installs Chromium; a test using this fails, not skips, without it.
//!
//! The pages' query: `ws` (`ws://…` or `wss://…`), `uri` (`sip:alice@127.0.0.1`), `user` and
//! `password` for digest authentication (may be empty), `debug=1` for a verbose log,
//! `bundle=max-bundle` for that BUNDLE policy.
//!
//! Their events: `loaded LIBRARY VERSION`, `connected`, `disconnected [CODE]`, `registered`,
//! `registration-failed CAUSE`, `unregistered`, `registration-lost` (JsSIP: the connection
//! went), `incoming-call FROM-URI` (answered at once, audio only), `call-confirmed`,
//! `call-ended local|remote [CAUSE]`, `call-failed [ORIGINATOR] CAUSE`, `held`, `resumed`,
//! `renegotiated` (JsSIP),
//! `dtmf-sent DIGITS`, `stats IN OUT ENERGY SECONDS` (audio RTP packets received and sent,
//! the total energy and duration of the audio played out), `message BODY`, `message-sent`, `message-failed CAUSE`,
//! `pong [ARG]`, `command-failed COMMAND ERROR`, `error TEXT`.
//!
//! Commands: `call URI`, `hangup`, `hold`, `unhold`, `ice-restart` (JsSIP: a re-INVITE with
//! new ICE credentials), `dtmf DIGITS` (RFC 4733), `stats`,
//! `message URI TEXT`, `reconnect` (closes the WebSocket under the library, which connects
//! and registers again), `unregister`, `ping [ARG]`.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Debian's Chromium (`apt-get install chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long `GET /command` waits for a command before answering 204.
const POLL: Duration = Duration::from_secs(20);

/// How long [`Browser::expect`] waits.
pub const STEP: Duration = Duration::from_secs(20);

/// A page in headless Chromium, and the HTTP server it talks to; both stop on drop.
pub struct Browser {
    chromium: Mutex<Child>,
    shared: Arc<Shared>,
    http: SocketAddr,
    server: Option<JoinHandle<()>>,
    /// Chromium's profile, its temporary files and its output (`chromium.log`).
    dir: tempfile::TempDir,
    /// The network namespace of the HTTP server, when not this one.
    http_ns: Option<String>,
}

/// What the HTTP server's threads and the test share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Every event line so far, and whether `wait_for` returned it already.
    events: Vec<(String, bool)>,
    /// Commands the page has not fetched yet.
    commands: VecDeque<String>,
    /// The page's log (SIP traces, warnings).
    log: Vec<String>,
}

impl Shared {
    /// The state, even after a panic of a thread holding it.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Browser {
    /// Serves `tests/browser` and opens `page` there (`jssip.html`, `sipjs.html`) with
    /// `query` as its query string.
    pub fn open(page: &str, query: &[(&str, &str)]) -> Browser {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the pages' HTTP server");
        Browser::launch(None, listener, page, query)
    }

    /// `page` as `uri` (no credentials) on the server at `ws`, with BUNDLE policy `bundle`,
    /// once it registered.
    pub fn registered(page: &str, ws: &str, uri: &str, bundle: &str) -> Browser {
        let query = [
            ("ws", ws),
            ("uri", uri),
            ("user", ""),
            ("password", ""),
            ("bundle", bundle),
        ];
        let b = Browser::open(page, &query);
        b.expect("registered");
        b
    }

    /// The same as [`Browser::open`] with Chromium in network namespace `ns` (behind a NAT of `support::netns`),
    /// the pages served at `http_ip` in namespace `http_ns` (the internet's), which `ns`
    /// reaches.
    pub fn open_in(
        ns: &str,
        http_ns: &str,
        http_ip: &str,
        page: &str,
        query: &[(&str, &str)],
    ) -> Browser {
        let ip = http_ip.to_owned();
        let listener = in_netns(Some(http_ns), move || {
            TcpListener::bind((ip.as_str(), 0)).expect("bind the pages' HTTP server")
        });
        let mut b = Browser::launch(Some(ns), listener, page, query);
        b.http_ns = Some(http_ns.to_owned());
        b
    }

    fn launch(
        ns: Option<&str>,
        listener: TcpListener,
        page: &str,
        query: &[(&str, &str)],
    ) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh installs it)"
        );
        let http = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared::default());
        let server = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || serve(&listener, &shared))
        };
        let dir = tempfile::Builder::new()
            .prefix("ferrosip-chromium-")
            .tempdir()
            .expect("tempdir");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("mkdir");
        let out = std::fs::File::create(dir.path().join("chromium.log")).expect("log file");
        // The fake microphone plays a 440 Hz tone (looped): audio a peer hears as such.
        let tone = dir.path().join("tone.wav");
        std::fs::write(&tone, super::phone::tone_wav(4)).expect("tone");
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = format!("http://{http}/{page}?{}", query.join("&"));
        let mut command = match ns {
            None => Command::new(CHROMIUM),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, CHROMIUM]);
                c
            }
        };
        let child = command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                // No sound card here: a fake output that still plays (and measures) audio.
                "--disable-audio-output",
                "--ignore-certificate-errors",
                "--remote-debugging-port=0",
                // Nothing but the page on the network; no mDNS names for host candidates.
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                "--disable-dev-shm-usage",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(format!(
                "--use-file-for-fake-audio-capture={}",
                tone.display()
            ))
            // Pages not on loopback are a secure context only so (getUserMedia needs one).
            .arg(format!(
                "--unsafely-treat-insecure-origin-as-secure=http://{http}"
            ))
            .arg(&url)
            // Its temporary files (the profile's lock socket) go with the folder.
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMIUM}: {e}"));
        Browser {
            chromium: Mutex::new(child),
            shared,
            http,
            server: Some(server),
            dir,
            http_ns: None,
        }
    }

    /// The first event not returned yet that starts with `prefix`, waiting up to `timeout`
    /// for it; None if none came. Panics if Chromium exited.
    pub fn wait_for(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        loop {
            let found = state
                .events
                .iter_mut()
                .find(|(line, seen)| !*seen && line.starts_with(prefix));
            if let Some((line, seen)) = found {
                *seen = true;
                return Some(line.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if let Some(status) = self.exited() {
                drop(state);
                panic!("chromium exited ({status}):\n{}", self.chromium_log());
            }
            let step = (deadline - now).min(Duration::from_millis(500));
            state = self
                .shared
                .changed
                .wait_timeout(state, step)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Like [`Browser::wait_for`] with [`STEP`], failing the test (with every event so far)
    /// when the event does not come.
    pub fn expect(&self, prefix: &str) -> String {
        self.wait_for(prefix, STEP).unwrap_or_else(|| {
            panic!(
                "no event {prefix:?} within {STEP:?}; events: {:#?}",
                self.events()
            )
        })
    }

    /// Queues a command for the page (`call URI`, `hangup`, `message URI TEXT`,
    /// `reconnect`, `unregister`, `ping`).
    pub fn command(&self, line: &str) {
        self.shared.state().commands.push_back(line.to_owned());
        self.shared.changed.notify_all();
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<String> {
        let state = self.shared.state();
        state.events.iter().map(|(line, _)| line.clone()).collect()
    }

    /// The page's log so far: the library's SIP trace and warnings, a line each.
    pub fn log(&self) -> String {
        self.shared.state().log.join("\n")
    }

    /// What Chromium itself wrote (standard output and error).
    pub fn chromium_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default()
    }

    /// The address of the pages' HTTP server.
    pub fn http(&self) -> SocketAddr {
        self.http
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.chromium.lock().unwrap_or_else(|e| e.into_inner());
        child.try_wait().ok().flatten()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The log stays out of the suite's output unless the test failed.
        if std::thread::panicking() {
            eprintln!(
                "--- browser events ---\n{:#?}\n--- page log ---\n{}",
                self.events(),
                self.log()
            );
        }
        // Chromium and every process it started (one process group): asked to stop, then
        // killed, and waited for before its folder goes.
        let child = self.chromium.get_mut().unwrap_or_else(|e| e.into_inner());
        let group = format!("-{}", child.id());
        let signal = |sig: &str| {
            Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        signal("-KILL");
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(3);
        while signal("-0") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The HTTP server: its accept loop woken up by one last connection.
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        let http = self.http;
        in_netns(self.http_ns.as_deref(), move || {
            let _ = TcpStream::connect_timeout(&http, Duration::from_secs(1));
        });
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// `f`'s result, run on a thread in network namespace `ns` (`None`: this one): a socket
/// belongs to the namespace of the thread that makes it.
fn in_netns<T: Send + 'static>(ns: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.map(str::to_owned);
    std::thread::spawn(move || {
        if let Some(ns) = ns {
            let netns = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns");
            // SAFETY: setns changes this short-lived thread's network namespace alone.
            let entered =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&netns), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns {ns}");
        }
        f()
    })
    .join()
    .expect("thread")
}

/// Percent-encodes all but unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Accepts connections until told to stop, each on a thread of its own (a long poll
/// holds one).
fn serve(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(conn) = conn {
            let shared = Arc::clone(shared);
            std::thread::spawn(move || {
                let _ = handle(conn, &shared);
            });
        }
    }
}

/// One HTTP/1.1 request, answered with `Connection: close`.
fn handle(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let path = target.split('?').next().unwrap_or("/");
    match (method, path) {
        ("POST", "/event") => {
            shared.state().events.push((body, false));
            shared.changed.notify_all();
            respond(&mut conn, 204, "", b"")
        }
        ("POST", "/log") => {
            shared.state().log.push(body);
            respond(&mut conn, 204, "", b"")
        }
        ("GET", "/command") => match next_command(shared) {
            Some(line) => respond(&mut conn, 200, "text/plain", line.as_bytes()),
            None => respond(&mut conn, 204, "", b""),
        },
        ("GET", _) => match static_file(path) {
            Some((kind, data)) => respond(&mut conn, 200, kind, &data),
            None => respond(&mut conn, 404, "text/plain", b"not found"),
        },
        _ => respond(&mut conn, 405, "text/plain", b"method not allowed"),
    }
}

/// The next queued command, waiting up to [`POLL`] for one.
fn next_command(shared: &Shared) -> Option<String> {
    let deadline = Instant::now() + POLL;
    let mut state = shared.state();
    loop {
        if let Some(line) = state.commands.pop_front() {
            return Some(line);
        }
        let now = Instant::now();
        if now >= deadline || shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        state = shared
            .changed
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// A file under `tests/browser` and its content type; None for a missing file or a path
/// leaving the folder.
fn static_file(path: &str) -> Option<(&'static str, Vec<u8>)> {
    let relative = Path::new(path.trim_start_matches('/'));
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(relative);
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    };
    Some((kind, std::fs::read(file).ok()?))
}

fn respond(conn: &mut TcpStream, status: u16, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
Connection: close\r\n",
        body.len()
    );
    if !kind.is_empty() {
        head.push_str(&format!("Content-Type: {kind}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}
