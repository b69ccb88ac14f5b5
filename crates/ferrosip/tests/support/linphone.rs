//! linphonec (Debian `linphone-cli`, liblinphone 5.1) as a softphone: `HOME` and the
//! configuration (`-c`) in a directory of its own, listening on the account's transport
//! only, one proxy account, `soundcard use files` with a generated tone played as
//! microphone, commands typed on its console, and its log (`-d 6 -l`) for the SIP messages
//! and the RTP statistics it prints when a stream stops. `scripts/test.sh` installs it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::phone::{number_after, tone_wav, Account, Console, Rtp, Seen, STEP};

/// The header of the statistics liblinphone logs when an audio stream stops.
const STATS: &str = "AUDIO SESSION'S RTP STATISTICS";

/// A running linphonec, registered; killed and its directory removed when dropped.
pub struct Linphone {
    console: Console,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Linphone {
    /// Starts linphonec for `account` and waits until it has registered.
    pub fn start(account: &Account) -> Linphone {
        Linphone::start_with(account, "")
    }

    /// The same, with more lines for its `[sip]` section (`root_ca=…` for TLS).
    pub fn start_with(account: &Account, sip: &str) -> Linphone {
        let dir = tempfile::tempdir().expect("tempdir");
        // liblinphone brings its network up only once its database opens.
        std::fs::create_dir_all(dir.path().join(".local/share/linphone")).expect("mkdir");
        let Account {
            user,
            domain,
            password,
            proxy,
            transport,
        } = account;
        // -1: a random port; 0: not listening on that transport.
        let (udp, tcp, tls) = match *transport {
            "tcp" => (0, -1, 0),
            "tls" => (0, 0, -1),
            _ => (-1, 0, 0),
        };
        let rc = format!(
            "[sip]\nsip_port={udp}\nsip_tcp_port={tcp}\nsip_tls_port={tls}\ndefault_proxy=0\n{sip}\
             [rtp]\naudio_rtp_port=-1\n\
             [proxy_0]\nreg_proxy=<sip:{proxy};transport={transport}>\n\
             reg_identity=sip:{user}@{domain}\nreg_expires=600\nreg_sendregister=1\n\
             [auth_info_0]\nusername={user}\npasswd={password}\ndomain={domain}\n"
        );
        let rc_path = dir.path().join("linphonerc");
        std::fs::write(&rc_path, rc).expect("write linphonerc");
        let tone = dir.path().join("tone.wav");
        std::fs::write(&tone, tone_wav(1)).expect("write tone");
        let log = dir.path().join("linphone.log");
        let name = format!("linphonec {user}@{domain}");
        let args = [
            "-c".as_ref(),
            rc_path.as_os_str(),
            "-d".as_ref(),
            "6".as_ref(),
            "-l".as_ref(),
            log.as_os_str(),
        ];
        // Its files, and PulseAudio's probe of a sound server, stay in `dir`.
        let env = ["HOME", "TMPDIR", "XDG_RUNTIME_DIR"].map(|k| (k, dir.path().as_os_str()));
        let mut phone = Linphone {
            console: Console::spawn(&name, "linphonec", &args, &env),
            log,
            _dir: dir,
        };
        phone.send("soundcard use files");
        phone.expect("Using wav files instead of soundcard");
        phone.send(&format!("play {}", tone.display()));
        phone
            .console
            .poll("status register", "registered, identity=", STEP);
        phone
    }

    /// Waits for `needle` in what linphonec prints next.
    pub fn expect(&mut self, needle: &str) -> String {
        self.console.expect(needle, STEP)
    }

    /// Types a command (`call sip:…`, `terminate`, `pause 1`, `chat sip:… "text"`…).
    pub fn send(&mut self, command: &str) {
        self.console.send(command);
    }

    /// Waits for an incoming call; returns its id.
    pub fn incoming(&mut self) -> u32 {
        self.expect("Receiving new incoming call from");
        let line = self.expect("\n");
        number_after(&line, "assigned id").expect("call id") as u32
    }

    /// The RTP packets of the last audio stream that stopped, from the statistics
    /// liblinphone logs then (waits for them).
    pub fn rtp(&mut self) -> Rtp {
        let deadline = Instant::now() + STEP;
        loop {
            let log = self.log();
            if let Some(stats) = log.rfind(STATS).map(|at| &log[at..]) {
                // The block is whole once its last line is in.
                if stats.contains("received rtcp") {
                    return Rtp {
                        sent: number_after(stats, "ortp-message-sent").unwrap_or(0),
                        received: number_after(stats, "ortp-message-received").unwrap_or(0),
                    };
                }
            }
            assert!(
                Instant::now() < deadline,
                "linphonec logged no RTP statistics within {STEP:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every SIP message in the log so far.
    pub fn trace(&self) -> Vec<Seen> {
        let log = self.log();
        let lines: Vec<&str> = log.lines().map(|l| l.trim_end_matches('\r')).collect();
        lines
            .windows(2)
            .filter_map(|w| {
                let (sent, rest) = if let Some(at) = w[0].find("]: message sent to [") {
                    (true, &w[0][at + "]: message sent to [".len()..])
                } else {
                    let at = w[0].find("new bytes from [")?;
                    (false, &w[0][at + "new bytes from [".len()..])
                };
                Some(Seen {
                    sent,
                    transport: rest.split("://").next()?.to_owned(),
                    start: w[1].to_owned(),
                })
            })
            .collect()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}
