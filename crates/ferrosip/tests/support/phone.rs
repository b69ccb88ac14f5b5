//! What the softphone drivers share: a console program driven on its standard input (its
//! output read by a thread, every wait with a timeout, the process killed on drop), an
//! account, and what a phone's own log says it sent and received.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a phone may take for any one step.
pub const STEP: Duration = Duration::from_secs(10);

/// A running console program.
pub struct Console {
    name: String,
    child: Child,
    stdin: ChildStdin,
    out: Arc<(Mutex<Output>, Condvar)>,
    /// The output before this offset has been matched already.
    seen: usize,
}

/// What the program wrote so far, and whether it closed its output (exited).
#[derive(Default)]
struct Output {
    text: String,
    closed: bool,
}

impl Console {
    /// Runs `program` with `args`, its standard error into its standard output and both
    /// line-buffered (`stdbuf`), so that the output reads in the order it was written. A
    /// missing program fails the test: `scripts/test.sh` installs the clients.
    pub fn spawn(name: &str, program: &str, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Console {
        let mut child = Command::new("sh")
            .args(["-c", "exec stdbuf -oL -eL \"$0\" \"$@\" 2>&1", program])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: sh: {e}"));
        let out = Arc::new((Mutex::new(Output::default()), Condvar::new()));
        let mut stdout = child.stdout.take().expect("stdout");
        let shared = Arc::clone(&out);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let (output, grew) = &*shared;
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                output.lock().expect("output").text.push_str(&text);
                grew.notify_all();
            }
            output.lock().expect("output").closed = true;
            grew.notify_all();
        });
        let stdin = child.stdin.take().expect("stdin");
        Console {
            name: name.to_owned(),
            child,
            stdin,
            out,
            seen: 0,
        }
    }

    /// Types a command line.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("{}: writing {line:?}: {e}\n{}", self.name, self.tail()));
    }

    /// Waits up to `timeout` for `needle` in the output after the last match; returns the
    /// output from there through the needle.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait(needle, timeout).unwrap_or_else(|| {
            panic!(
                "{}: no {needle:?} within {timeout:?} (or it exited); output ends:\n{}",
                self.name,
                self.tail()
            )
        })
    }

    /// Types `line` every 300 ms until `needle` appears, for up to `timeout`.
    pub fn poll(&mut self, line: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            self.send(line);
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(Duration::from_millis(300));
            if let Some(text) = self.wait(needle, step) {
                return text;
            }
            if left == step {
                return self.expect(needle, Duration::ZERO);
            }
        }
    }

    fn wait(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (output, grew) = &*self.out;
        let mut guard = output.lock().expect("output");
        loop {
            let rest = &guard.text[self.seen..];
            if let Some(at) = rest.find(needle) {
                let matched = rest[..at + needle.len()].to_owned();
                self.seen += matched.len();
                return Some(matched);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || guard.closed {
                return None;
            }
            guard = grew.wait_timeout(guard, left).expect("output").0;
        }
    }

    /// The whole output so far.
    pub fn output(&self) -> String {
        self.out.0.lock().expect("output").text.clone()
    }

    /// The last part of the output, for failure messages.
    fn tail(&self) -> String {
        let output = self.out.0.lock().expect("output");
        let from = output
            .text
            .char_indices()
            .rev()
            .nth(6000)
            .map_or(0, |(i, _)| i);
        output.text[from..].to_owned()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SIP message a phone sent or received, as its own log tells it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub sent: bool,
    /// `UDP` or `TCP`.
    pub transport: String,
    /// The request or status line.
    pub start: String,
}

impl Seen {
    /// True for a request of `method` (`ACK`, `BYE`…).
    pub fn is(&self, method: &str) -> bool {
        self.start.starts_with(&format!("{method} "))
    }
}

/// A subscriber signing in through the server: `user@domain` with `password`, over
/// `transport` (`udp` or `tcp`) to `proxy`.
#[derive(Clone, Copy)]
pub struct Account<'a> {
    pub user: &'a str,
    pub domain: &'a str,
    pub password: &'a str,
    pub proxy: SocketAddr,
    pub transport: &'a str,
}

/// RTP packets a phone counted in one call.
#[derive(Debug, Clone, Copy)]
pub struct Rtp {
    pub sent: u64,
    pub received: u64,
}

/// The number after `key` in `text` (`key` such as `packets=`).
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A WAV file (8 kHz, mono, 16-bit) of a 440 Hz tone lasting `seconds`.
pub fn tone_wav(seconds: u32) -> Vec<u8> {
    const RATE: u32 = 8000;
    let samples: Vec<u8> = (0..RATE * seconds)
        .flat_map(|i| {
            let t = f64::from(i) / f64::from(RATE);
            (((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16).to_le_bytes()
        })
        .collect();
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for field in [16u32, 1 | (1 << 16), RATE, RATE * 2, 2 | (16 << 16)] {
        wav.extend_from_slice(&field.to_le_bytes());
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    wav
}
