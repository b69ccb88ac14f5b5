//! baresip (Debian `baresip`, 1.0) as a softphone: a configuration directory of its own
//! (`-f`) with one account whose outbound proxy is the server, a 440 Hz sine (`ausine`) or
//! a WAV file (`aufile`) as microphone and no player, commands typed on its console (the `stdio` and `menu`
//! modules), and its SIP trace (`-s`) on standard output. `scripts/test.sh` installs it.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

use super::phone::{number_after, Account, Console, Rtp, Seen, STEP};

/// A running baresip, registered; killed and its directory removed when dropped.
pub struct Baresip {
    console: Console,
    /// Its SIP address and the server's, as the trace prints them (`127.0.0.1:5060`,
    /// `[::1]:5060`).
    local: String,
    proxy: String,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip for `account` and waits until it has registered. `peer` is the one
    /// contact, which `/message` writes to.
    pub fn start(account: &Account, peer: &str) -> Baresip {
        Baresip::start_with(account, peer, "")
    }

    /// The same, with more lines of configuration (`sip_cafile …` for TLS).
    pub fn start_with(account: &Account, peer: &str, config: &str) -> Baresip {
        let ip = account.proxy.ip();
        let local = SocketAddr::new(ip, listen_port(ip));
        let source =
            format!("audio_source ausine,440\nausrc_srate 48000\nausrc_channels 2\n{config}");
        Baresip::launch(None, local, account, &format!("<{peer}>"), &source, "")
    }

    /// Starts baresip with its presence module, watching `peer`'s presence (it subscribes
    /// to it), and waits until it has registered.
    pub fn start_watching(account: &Account, peer: &str) -> Baresip {
        let ip = account.proxy.ip();
        let local = SocketAddr::new(ip, listen_port(ip));
        let contact = format!("<{peer}>;presence=p2p");
        let source = "audio_source ausine,440\nausrc_srate 48000\nausrc_channels 2\n";
        Baresip::launch(
            None,
            local,
            account,
            &contact,
            source,
            "module_app presence.so\n",
        )
    }

    /// Types `line` every 300 ms until `needle` appears (`/contacts` until a contact's
    /// presence shows).
    pub fn poll(&mut self, line: &str, needle: &str) -> String {
        self.console.poll(line, needle, STEP)
    }

    /// Starts baresip in network namespace `ns`, listening on `local`, with the WAV file
    /// `wav` (8 kHz mono) as its microphone (`aufile`), and waits until it has registered.
    pub fn start_in(
        ns: &str,
        local: SocketAddr,
        account: &Account,
        peer: &str,
        wav: &std::path::Path,
    ) -> Baresip {
        let source = format!(
            "audio_source aufile,{}\nausrc_srate 8000\nausrc_channels 1\n",
            wav.display()
        );
        Baresip::launch(Some(ns), local, account, &format!("<{peer}>"), &source, "")
    }

    fn launch(
        ns: Option<&str>,
        local: SocketAddr,
        account: &Account,
        contact: &str,
        source: &str,
        apps: &str,
    ) -> Baresip {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip = local.ip();
        let config = format!(
            "poll_method epoll\n\
             sip_listen {local}\n\
             net_interface {ip}\n\
             {source}\
             statmode_default off\n\
             module_path /usr/lib/baresip/modules\n\
             module stdio.so\n\
             module g711.so\n\
             module ausine.so\n\
             module aufile.so\n\
             module_tmp account.so\n\
             module_app menu.so\n\
             module_app contact.so\n\
             {apps}"
        );
        let Account {
            user,
            domain,
            password,
            proxy,
            transport,
        } = account;
        let accounts = format!(
            "<sip:{user}@{domain};transport={transport}>;auth_pass={password};\
             outbound=\"sip:{proxy};transport={transport}\";regint=600;answermode=manual\n"
        );
        for (name, text) in [
            ("config", config),
            ("accounts", accounts),
            ("contacts", format!("{contact}\n")),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write baresip configuration");
        }
        let name = format!("baresip {user}@{domain}");
        let own = ["-s".as_ref(), "-f".as_ref(), dir.path().as_os_str()];
        let console = match ns {
            None => Console::spawn(&name, "baresip", &own, &[]),
            Some(ns) => {
                let mut args: Vec<&std::ffi::OsStr> = vec![
                    "netns".as_ref(),
                    "exec".as_ref(),
                    ns.as_ref(),
                    "baresip".as_ref(),
                ];
                args.extend(own);
                Console::spawn(&name, "ip", &args, &[])
            }
        };
        let mut phone = Baresip {
            console,
            local: local.to_string(),
            proxy: proxy.to_string(),
            _dir: dir,
        };
        phone.expect("registered successfully");
        phone
    }

    /// Waits for `needle` in what baresip prints next.
    pub fn expect(&mut self, needle: &str) -> String {
        self.console.expect(needle, STEP)
    }

    /// Types a command (`/dial sip:…`, `/accept`, `/hangup`, `/hold`, `/resume`…).
    pub fn send(&mut self, command: &str) {
        self.console.send(command);
    }

    /// Dials `uri` through the server.
    pub fn dial(&mut self, uri: &str) {
        self.send(&format!("/dial {uri}"));
    }

    /// Waits for an incoming call and accepts it.
    pub fn accept(&mut self) {
        self.expect("Incoming call from");
        self.send("/accept");
    }

    /// Sends `text` in a MESSAGE to the peer.
    pub fn message(&mut self, text: &str) {
        self.send(&format!("/message {text}"));
    }

    /// The RTP packets of the current call so far, from `/audio_debug`.
    pub fn rtp(&mut self) -> Rtp {
        self.send("/audio_debug");
        self.expect("--- Audio stream ---");
        let stats = self.expect("jitter buffer debug");
        Rtp {
            sent: number_after(&stats, "TX: packets=").unwrap_or(0),
            received: number_after(&stats, "rcvd=").unwrap_or(0),
        }
    }

    /// Everything baresip printed so far.
    pub fn output(&self) -> String {
        self.console.output()
    }

    /// Every SIP message in the trace so far.
    pub fn trace(&self) -> Vec<Seen> {
        let output = self.console.output();
        let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
        lines
            .windows(2)
            .filter_map(|w| {
                let mut words = w[0].split(' ');
                let (transport, from, arrow, to) =
                    (words.next()?, words.next()?, words.next()?, words.next()?);
                if !matches!(transport, "UDP" | "TCP" | "TLS") || arrow != "->" {
                    return None;
                }
                // Over a connection baresip opened, its end has a port of its own.
                Some(Seen {
                    sent: from == self.local || to == self.proxy,
                    transport: transport.to_owned(),
                    start: w[1].to_owned(),
                })
            })
            .collect()
    }
}

/// A port free on `ip` for UDP and TCP, the next one free for TCP too: baresip listens on
/// both transports there, and for TLS on the next.
fn listen_port(ip: IpAddr) -> u16 {
    loop {
        let udp = UdpSocket::bind((ip, 0)).expect("bind");
        let port = udp.local_addr().expect("addr").port();
        let free = |port| TcpListener::bind((ip, port)).is_ok();
        if port < u16::MAX && free(port) && free(port + 1) {
            return port;
        }
    }
}

/// `caller` calls `uri`, `callee` answers, and they talk for `secs`: the RTP each counted
/// then (caller's, callee's).
pub fn call_and_talk(
    caller: &mut Baresip,
    callee: &mut Baresip,
    uri: &str,
    secs: u64,
) -> (Rtp, Rtp) {
    caller.dial(uri);
    callee.accept();
    caller.expect("Call established");
    callee.expect("Call established");
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let at_callee = callee.rtp();
    (caller.rtp(), at_callee)
}

/// `caller` hangs up; each phone had sent and received at least 100 RTP packets (`counts`,
/// caller's and callee's: 3 s of 20 ms packets is 150).
pub fn hang_up_having_heard(caller: &mut Baresip, callee: &mut Baresip, counts: (Rtp, Rtp)) {
    caller.send("/hangup");
    callee.expect("session closed");
    for (phone, rtp) in [("caller", counts.0), ("callee", counts.1)] {
        assert!(
            rtp.sent >= 100 && rtp.received >= 100,
            "the {phone} counted {rtp:?}"
        );
    }
}
