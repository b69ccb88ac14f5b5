//! The configuration file: one TOML document, every key optional with a documented default.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use transport::Listen;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) server: Server,
    pub(crate) proxy: Proxy,
    pub(crate) registrar: Registrar,
    pub(crate) timers: Timers,
    pub(crate) routing: Routing,
    pub(crate) auth: Auth,
    pub(crate) security: Security,
    pub(crate) api: Api,
    pub(crate) stun: Stun,
    pub(crate) nat: Nat,
    pub(crate) relay: Relay,
    pub(crate) tls: Tls,
    pub(crate) dns: Dns,
    pub(crate) accounting: Accounting,
    pub(crate) calls: Calls,
    pub(crate) presence: Presence,
    pub(crate) messages: Messages,
}

/// `[messages]`: messages kept for users who are offline (`m_store()`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Messages {
    /// Most messages kept for one user (more get 486).
    pub(crate) per_user: usize,
    /// Most messages kept in all (more get 503).
    pub(crate) max: usize,
    /// Largest message kept, in bytes of body (larger get 413).
    pub(crate) max_size: usize,
    /// Days a message is kept undelivered.
    pub(crate) keep_days: u64,
}

impl Default for Messages {
    fn default() -> Self {
        let d = message_store::Limits::default();
        Messages {
            per_user: d.per_user,
            max: d.total,
            max_size: d.max_body,
            keep_days: d.keep_ms / 86_400_000,
        }
    }
}

impl Messages {
    /// The bounds of the message store.
    pub(crate) fn limits(&self) -> message_store::Limits {
        let d = message_store::Limits::default();
        message_store::Limits {
            per_user: self.per_user,
            per_user_bytes: d.per_user_bytes.max(self.max_size),
            max_body: self.max_size,
            total: self.max,
            keep_ms: self.keep_days.saturating_mul(86_400_000),
        }
    }
}

/// `[presence]`: the presence server (`handle_subscribe()`, `handle_publish()`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Presence {
    /// Shortest time in seconds between two NOTIFYs of a user's presence (RFC 3856 §6.10:
    /// five); the changes in between make one NOTIFY with the latest state. 0: every change.
    pub(crate) notify_interval: u64,
    /// Most subscriptions held at once (SUBSCRIBEs past it get 503).
    pub(crate) max_subscriptions: usize,
    /// Most subscriptions of one watcher.
    pub(crate) max_per_watcher: usize,
    /// Most watchers of one user.
    pub(crate) max_watchers: usize,
}

impl Default for Presence {
    fn default() -> Self {
        let d = presence::Config::default();
        Presence {
            notify_interval: d.presence_interval_ms / 1000,
            max_subscriptions: d.max_subscriptions,
            max_per_watcher: d.max_per_watcher,
            max_watchers: d.max_per_presentity,
        }
    }
}

impl Presence {
    /// The presence server's limits.
    pub(crate) fn limits(&self) -> presence::Config {
        presence::Config {
            presence_interval_ms: self.notify_interval.saturating_mul(1000),
            max_subscriptions: self.max_subscriptions,
            max_per_watcher: self.max_per_watcher,
            max_per_presentity: self.max_watchers,
            ..presence::Config::default()
        }
    }
}

/// `[calls]`: bounds on the calls `dlg_manage()` follows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Calls {
    /// Seconds an answered call may last before the server ends it with a BYE to each side
    /// (0: no limit).
    pub(crate) max_duration: u64,
    /// Most calls followed at once; past it new calls go without records (logged).
    pub(crate) max_active: usize,
    /// Seconds an answered call lasts before it is written to the database (a restart or
    /// a crash loses no call written; shorter calls cost no write).
    pub(crate) save_after: u64,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            max_duration: 0,
            max_active: dialog::Limits::default().max_calls,
            save_after: dialog::Limits::default().save_after_ms / 1000,
        }
    }
}

impl Calls {
    /// The limits the proxy follows calls within.
    pub(crate) fn limits(&self) -> dialog::Limits {
        let default = dialog::Limits::default();
        let max_duration_ms =
            (self.max_duration > 0).then(|| self.max_duration.saturating_mul(1000));
        dialog::Limits {
            max_calls: self.max_active,
            max_duration_ms,
            // A call is followed at least an hour past its longest duration.
            save_after_ms: self.save_after.saturating_mul(1000),
            max_followed_ms: max_duration_ms
                .map_or(0, |d| d.saturating_add(3_600_000))
                .max(default.max_followed_ms),
            ..default
        }
    }
}

/// `[accounting]`: where call records go besides the database and the log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Accounting {
    /// Each call record also to syslog, as one JSON object, with this facility (`local0`…
    /// `local7`, `user`, `daemon`); none by default.
    pub(crate) syslog: Option<String>,
    /// The syslog socket.
    pub(crate) syslog_socket: PathBuf,
    /// A file each call record is appended to, one JSON object per line (relative to the
    /// configuration file); none by default.
    pub(crate) json_lines: Option<PathBuf>,
    /// Each call record also as a log line (`ferrosip::cdr`, "call record"): for syslog or
    /// journald, where the log goes. Off by default (the database has them).
    pub(crate) log: bool,
}

impl Default for Accounting {
    fn default() -> Self {
        Accounting {
            syslog: None,
            syslog_socket: "/dev/log".into(),
            json_lines: None,
            log: false,
        }
    }
}

/// `[dns]`: where next hops' names are looked up (RFC 3263: NAPTR, SRV, A and AAAA).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Dns {
    /// The resolvers to ask (`"192.0.2.53"`, `"127.0.0.1:5353"`, `"[2001:db8::53]:53"`)
    /// instead of those of `/etc/resolv.conf`: split DNS, or a test's own server.
    pub(crate) servers: Vec<String>,
}

impl Dns {
    /// The resolvers' socket addresses (port 53 when unnamed); the first that does not
    /// parse is the error.
    pub(crate) fn addresses(&self) -> Result<Vec<std::net::SocketAddr>, String> {
        self.servers
            .iter()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
                    .map_err(|_| s.clone())
            })
            .collect()
    }
}

/// `[tls]`: the certificates of the `tls:` listen addresses (RFC 3261 §26), clients'
/// certificates, and what connections the server opens over TLS trust. Relative paths are
/// taken from the config file's folder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Tls {
    /// The server's certificate chain (PEM, leaf first), for clients that name no domain
    /// of `domains`.
    pub(crate) certificate: Option<PathBuf>,
    /// Its private key (PEM).
    pub(crate) private_key: Option<PathBuf>,
    /// Other domains' certificates, picked by the name a client asks for (SNI).
    pub(crate) domains: Vec<TlsDomain>,
    /// Clients' certificates: `"no"`, `"optional"` (checked when shown) or `"required"`
    /// (peering trunks), against `client_ca`.
    pub(crate) verify_clients: VerifyClients,
    /// The CA (PEM) that signs clients' certificates.
    pub(crate) client_ca: Option<PathBuf>,
    /// A CA (PEM) that connections the server opens trust besides the system's roots.
    pub(crate) ca: Option<PathBuf>,
}

/// One domain's certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsDomain {
    /// The domain, as clients name it.
    pub(crate) name: String,
    /// Its certificate chain (PEM).
    pub(crate) certificate: PathBuf,
    /// Its private key (PEM).
    pub(crate) private_key: PathBuf,
}

/// Whether TLS clients show a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum VerifyClients {
    /// Not asked for.
    #[default]
    No,
    /// Checked when shown.
    Optional,
    /// A client without a good one is refused.
    Required,
}

impl Tls {
    /// The files to load, when a certificate is configured.
    pub(crate) fn files(&self) -> Option<transport::TlsFiles> {
        let pair = |certificate: &PathBuf, private_key: &PathBuf| transport::KeyPair {
            certificate: certificate.clone(),
            private_key: private_key.clone(),
        };
        let ca = || self.client_ca.clone().unwrap_or_default();
        Some(transport::TlsFiles {
            default: pair(self.certificate.as_ref()?, self.private_key.as_ref()?),
            domains: self
                .domains
                .iter()
                .map(|d| (d.name.clone(), pair(&d.certificate, &d.private_key)))
                .collect(),
            clients: match self.verify_clients {
                VerifyClients::No => transport::ClientCertificates::No,
                VerifyClients::Optional => transport::ClientCertificates::Optional(ca()),
                VerifyClients::Required => transport::ClientCertificates::Required(ca()),
            },
            ca: self.ca.clone(),
        })
    }
}

/// `[relay]`: the in-process media relay, which takes the audio of the calls the script
/// gives it (`rtp_relay()`: the default script's calls with a phone behind NAT).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Relay {
    /// Run it (false: `rtp_relay()` leaves the SDP as it is).
    pub(crate) enabled: bool,
    /// Its UDP ports, `"first-last"`: a pair per side of each stream (RTP on the even
    /// port, RTCP on the next).
    pub(crate) ports: String,
    /// The address to bind them on: `::` (the default) takes both families, and the relay
    /// bridges IPv4 and IPv6; on a host without IPv6 it is `0.0.0.0`.
    pub(crate) bind: std::net::IpAddr,
    /// The address the SDP names for them: a cloud server's public address is often on no
    /// interface. Unset: the bind address, else `[server] advertise`, else the first SIP
    /// listen address that is no wildcard nor loopback, else the host's primary address.
    pub(crate) announce: Option<std::net::IpAddr>,
    /// The address the SDP names to parties on IPv6, when `bind` is an IPv6 address (`::`
    /// takes both families: the relay bridges IPv4 and IPv6). Unset: chosen as `announce`.
    pub(crate) announce6: Option<std::net::IpAddr>,
    /// Seconds without a packet after which a call's media session ends.
    pub(crate) timeout: u64,
    /// Packet threads, each with its share of the sessions (0: one per core, 16 at most).
    pub(crate) threads: usize,
    /// Move packets with io_uring (batched system calls) where the kernel allows it; false:
    /// a task per socket, as where it does not.
    pub(crate) io_uring: bool,
    /// Run the packet threads under real-time scheduling (SCHED_FIFO) at this priority,
    /// 1–99, as rtpengine's `--scheduling=fifo --priority`: the kernel's own threads then
    /// wait for them, not the packets for the kernel's threads. 0: normal scheduling.
    /// Needs root, CAP_SYS_NICE or `LimitRTPRIO` (systemd).
    pub(crate) realtime_priority: u8,
    /// Forward latched streams in the kernel (an eBPF program at each interface's ingress,
    /// as rtpengine's kernel module): no system call nor thread per packet. Needs root (or
    /// CAP_BPF and CAP_NET_ADMIN) and Linux 6.6; turns on forwarding on loopback alone. Where it cannot, a warning, and every packet through the relay's threads.
    pub(crate) kernel_forwarding: bool,
    /// Most streams one source (an IPv4 address, an IPv6 /64) may hold in calls not
    /// answered yet: strangers may call subscribers without authenticating, and a ringing
    /// call holds its ports for minutes. `[auth] trusted` peers are exempt. 0: no limit.
    pub(crate) max_ringing_per_source: usize,
    /// When no ports are left: `"reject"` the call with 503, or let it `"proceed"` with
    /// its own SDP (audio then flows only where the phones reach each other).
    pub(crate) when_exhausted: WhenExhausted,
    /// Where `ferrosip relay` answers rtpengine's ng protocol.
    pub(crate) ng_listen: std::net::SocketAddr,
    /// The proxies `ferrosip relay` answers, addresses or networks (anyone else could list
    /// and end every call).
    #[serde(deserialize_with = "networks")]
    pub(crate) ng_allow: Vec<ipnet::IpNet>,
    /// External relays `ferrosip serve` drives over ng instead of its own (rtpengine, or
    /// `ferrosip relay` on other hosts): `"udp:192.0.2.5:2223"`. Calls are shared out by
    /// Call-ID; one that does not answer is skipped for 30 s.
    pub(crate) ng: Vec<String>,
}

/// What a call gets when the relay has no ports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WhenExhausted {
    /// 503 Service Unavailable.
    Reject,
    /// The call goes on without the relay.
    Proceed,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            enabled: true,
            ports: "30000-40000".into(),
            bind: std::net::Ipv6Addr::UNSPECIFIED.into(),
            announce: None,
            announce6: None,
            timeout: 60,
            threads: 0,
            io_uring: true,
            realtime_priority: 0,
            kernel_forwarding: false,
            max_ringing_per_source: 256,
            when_exhausted: WhenExhausted::Reject,
            ng_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 2223)),
            ng_allow: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            ng: Vec::new(),
        }
    }
}

impl Relay {
    /// The external relays `ng` names, or the first entry that is not `udp:address:port`.
    pub(crate) fn ng_relays(&self) -> Result<Vec<std::net::SocketAddr>, &str> {
        self.ng
            .iter()
            .map(|r| {
                r.strip_prefix("udp:")
                    .and_then(|a| a.parse().ok())
                    .ok_or(r.as_str())
            })
            .collect()
    }

    /// The port range, if `ports` is `"first-last"` with room for a call (two pairs).
    pub(crate) fn port_range(&self) -> Option<std::ops::RangeInclusive<u16>> {
        let (a, b) = self.ports.split_once('-')?;
        let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (a > 0 && relay::pairs(&(a..=b)).count() >= 2).then_some(a..=b)
    }
}

/// `[nat]`: clients behind NAT (their Contact is not where their REGISTER came from).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Nat {
    /// Seconds between the OPTIONS that keep each one's NAT mapping open (0: none).
    pub(crate) keepalive_interval: u64,
    /// Seconds without an answer after which its binding is removed.
    pub(crate) keepalive_timeout: u64,
}

impl Default for Nat {
    fn default() -> Self {
        Nat {
            keepalive_interval: 30,
            keepalive_timeout: 120,
        }
    }
}

/// `[stun]`: STUN Binding (RFC 5389), with which a phone behind NAT learns its public
/// address. The SIP UDP ports always answer it too.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Stun {
    /// UDP addresses that answer STUN alone. Unset: port 3478 on each address SIP listens
    /// on over UDP (one that is taken is a warning, not an error); `[]` for none.
    pub(crate) listen: Option<Vec<std::net::SocketAddr>>,
}

/// `[api]`: the management API (JSON over HTTP, bearer token).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Api {
    /// Address to listen on; loopback by default. `""` turns the API off.
    pub(crate) listen: String,
    /// The bearer token. Without one, the token in `token_file` is used, made at the first
    /// start (random, mode 0600).
    pub(crate) token: Option<String>,
    /// Where the token is kept for the CLI; relative paths are taken from the config file's
    /// folder.
    pub(crate) token_file: PathBuf,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            listen: "127.0.0.1:5080".into(),
            token: None,
            token_file: PathBuf::from("ferrosip.token"),
        }
    }
}

impl Api {
    /// The listen address, or None when the API is off.
    pub(crate) fn address(&self) -> Option<std::net::SocketAddr> {
        (!self.listen.is_empty())
            .then(|| self.listen.parse().ok())
            .flatten()
    }
}

/// `[security]`: limits per source, an IPv4 address or an IPv6 /64 (a host owns a /64 and
/// can rotate its addresses within it); trusted peers are exempt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Security {
    /// Messages (requests and responses) per second from one source; more are dropped.
    /// 0: no limit.
    pub(crate) flood_limit: u32,
    /// Failed authentications within `auth_window` seconds that ban a source. 0: never.
    pub(crate) auth_failures: u32,
    pub(crate) auth_window: u64,
    /// Seconds a banned source is ignored.
    pub(crate) ban: u64,
}

impl Default for Security {
    fn default() -> Self {
        let d = sip_proxy::GuardConfig::default();
        Security {
            flood_limit: d.flood_limit,
            auth_failures: d.auth_failures,
            auth_window: d.auth_window.as_secs(),
            ban: d.ban.as_secs(),
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Auth {
    /// Digest algorithms offered in challenges, the preferred first. MD5 alone by default:
    /// baresip, sipp and sipsak give up on a 401 that offers SHA-256 at all.
    #[serde(deserialize_with = "algorithms")]
    pub(crate) algorithms: Vec<auth::Algorithm>,
    /// Realms (domains) offered other algorithms, e.g. `"example.com" = ["SHA-256", "MD5"]`.
    pub(crate) realm_algorithms: std::collections::BTreeMap<String, Algorithms>,
    /// Peers whose requests need no authentication (`allow_trusted()` in the script):
    /// addresses or networks, `192.0.2.7`, `198.51.100.0/24`, `2001:db8::/32`.
    #[serde(deserialize_with = "networks")]
    pub(crate) trusted: Vec<ipnet::IpNet>,
    /// Seconds a nonce stays good; then `stale=true` asks the client to answer a new one.
    pub(crate) nonce_lifetime: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            algorithms: vec![auth::Algorithm::Md5],
            realm_algorithms: Default::default(),
            trusted: Vec::new(),
            nonce_lifetime: 300,
        }
    }
}

/// Addresses (a host network) and networks in CIDR notation.
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    use serde::de::Error;
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|t| {
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| D::Error::custom(format!("{t:?} is neither an address nor a network")))
        })
        .collect()
}

/// The algorithms of one realm (see [`algorithms`]).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Algorithms(
    #[serde(deserialize_with = "algorithms")] pub(crate) Vec<auth::Algorithm>,
);

/// `["SHA-256", "MD5"]`: algorithm tokens, at least one, none twice.
fn algorithms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<auth::Algorithm>, D::Error> {
    use serde::de::Error;
    let tokens = Vec::<String>::deserialize(d)?;
    let mut out = Vec::new();
    for t in &tokens {
        let a = auth::Algorithm::from_token(t).ok_or_else(|| {
            D::Error::custom(format!("unknown digest algorithm {t:?} (SHA-256, MD5)"))
        })?;
        if out.contains(&a) {
            return Err(D::Error::custom(format!("{t} named twice")));
        }
        out.push(a);
    }
    if out.is_empty() {
        return Err(D::Error::custom("at least one digest algorithm is needed"));
    }
    Ok(out)
}

/// `[routing]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Routing {
    /// The routing script; relative paths are taken from the config file's folder. Without
    /// one the built-in default script (`ferrosip.cfg`) runs.
    pub(crate) script: Option<PathBuf>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Server {
    /// Listen addresses, `udp:ADDR:PORT` / `tcp:ADDR:PORT`.
    pub(crate) listen: Vec<String>,
    /// Domains served besides our own addresses, host name and `localhost`.
    pub(crate) domains: Vec<String>,
    /// Address written in Via and Record-Route when listening on 0.0.0.0 or [::]
    /// (default: the host's primary address).
    pub(crate) advertise: Option<String>,
    /// The database: an SQLite file (`ferrosip.db`, `sqlite:/var/lib/ferrosip.db`), or
    /// `postgres://user:pass@host/db`, or `mysql://user:pass@host/db` (MariaDB too).
    pub(crate) database: String,
    /// Milliseconds the binding writer waits to commit REGISTERs together (group commit),
    /// while they come two or more per window; their 200 OKs wait as long. Fewer, each is
    /// committed as it comes. 0 commits each batch at once.
    pub(crate) commit_window_ms: u64,
    /// Most REGISTERs waiting for their bindings to be written; past it (a database too
    /// slow for the load) REGISTERs are answered 503 with Retry-After.
    pub(crate) max_pending_writes: usize,
    /// Most transactions kept at once (each a few KB); past it requests are answered without
    /// state and not relayed (503), so a flood cannot grow memory without bound.
    pub(crate) max_transactions: usize,
    /// Server / User-Agent header value.
    pub(crate) agent: String,
    /// Seconds a TCP connection may stay idle.
    pub(crate) tcp_idle_timeout: u64,
    /// TCP connections open at once, accepted and ours; more are closed at once (keep it
    /// below the open files limit, `ulimit -n`). 0: no limit.
    pub(crate) tcp_max_connections: usize,
    /// TCP connections open at once with one source (an IPv4 address, an IPv6 /64),
    /// accepted and ours. 0: no limit.
    pub(crate) tcp_max_connections_per_ip: usize,
    /// Threads receiving on each UDP address (SO_REUSEPORT); 0: one per CPU core. One
    /// handles thousands of calls a second, and costs less CPU per message than two.
    pub(crate) udp_workers: usize,
    /// The longest a busy UDP receive thread gathers datagrams before it takes them (once
    /// two or more come per window), instead of waking for each, in microseconds; under
    /// heavier load the window shortens to gather about 32. 0: wake for each.
    pub(crate) udp_coalesce_us: u64,
}

/// `[proxy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Proxy {
    /// Timer C in seconds.
    pub(crate) timer_c: u64,
}

/// `[registrar]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Registrar {
    pub(crate) min_expires: u32,
    pub(crate) max_expires: u32,
    pub(crate) default_expires: u32,
    pub(crate) max_contacts: usize,
    /// Bindings in all (0: no limit); past it REGISTERs get 503.
    pub(crate) max_bindings: usize,
    /// Bindings made from one source, an IPv4 address or IPv6 /64 (0: no limit; trusted
    /// peers are exempt); past it REGISTERs from there get 403.
    pub(crate) max_bindings_per_source: usize,
}

/// `[timers]`, in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Timers {
    pub(crate) t1: u64,
    pub(crate) t2: u64,
    pub(crate) t4: u64,
}

impl Server {
    /// How UDP addresses are received: `udp_workers` threads each (or one per core), and
    /// `udp_coalesce_us`.
    pub(crate) fn udp_receive(&self) -> transport::UdpReceive {
        transport::UdpReceive {
            threads: match self.udp_workers {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            },
            coalesce: std::time::Duration::from_micros(self.udp_coalesce_us),
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: vec!["udp:0.0.0.0:5060".into(), "tcp:0.0.0.0:5060".into()],
            domains: Vec::new(),
            advertise: None,
            database: "ferrosip.db".into(),
            commit_window_ms: 20,
            max_pending_writes: 10_000,
            max_transactions: 100_000,
            agent: concat!("ferrosip/", env!("CARGO_PKG_VERSION")).into(),
            tcp_idle_timeout: 300,
            tcp_max_connections: transport::TcpLimits::default().total,
            tcp_max_connections_per_ip: transport::TcpLimits::default().per_ip,
            udp_workers: 1,
            udp_coalesce_us: 10_000,
        }
    }
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy { timer_c: 180 }
    }
}

impl Default for Registrar {
    fn default() -> Self {
        let d = registrar::RegistrarConfig::default();
        Registrar {
            min_expires: d.min_expires,
            max_expires: d.max_expires,
            default_expires: d.default_expires,
            max_contacts: d.max_contacts,
            max_bindings: d.max_bindings,
            max_bindings_per_source: d.max_bindings_per_source,
        }
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: 500,
            t2: 4000,
            t4: 5000,
        }
    }
}

/// What replaced the `[proxy]` keys of earlier versions.
fn moved_hint(message: &str) -> &'static str {
    let moved = ["`mode`", "`record_route`", "`redirect_domains`"];
    if moved
        .iter()
        .any(|k| message.contains(&format!("unknown field {k}")))
    {
        " (routing decisions moved to the routing script: forward(), record_route(), redirect(); see docs/routing.md)"
    } else {
        ""
    }
}

/// The longest UDP coalescing window, in microseconds.
const MAX_UDP_COALESCE_US: u64 = 50_000;

impl Config {
    /// Reads and checks a file; errors name the file, line and key.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut cfg =
            Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Some(script) = &mut cfg.routing.script {
            if script.is_relative() {
                *script = dir.join(&*script);
            }
        }
        if cfg.api.token_file.is_relative() {
            cfg.api.token_file = dir.join(&cfg.api.token_file);
        }
        if let Some(file) = &mut cfg.accounting.json_lines {
            if file.is_relative() {
                *file = dir.join(&*file);
            }
        }
        let t = &mut cfg.tls;
        let named = [
            &mut t.certificate,
            &mut t.private_key,
            &mut t.ca,
            &mut t.client_ca,
        ];
        let domains = t
            .domains
            .iter_mut()
            .flat_map(|d| [&mut d.certificate, &mut d.private_key]);
        for file in named.into_iter().flatten().chain(domains) {
            if file.is_relative() {
                *file = dir.join(&*file);
            }
        }
        Ok(cfg)
    }

    /// Parses and checks TOML text.
    pub(crate) fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: {}{}", e.message(), moved_hint(e.message()))
            }
            None => e.message().to_owned(),
        })?;
        cfg.check(text)?;
        Ok(cfg)
    }

    /// Semantic checks serde cannot do, reported with the line of the key.
    fn check(&self, text: &str) -> Result<(), String> {
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or(String::new(), |n| format!("line {}: ", n + 1))
        };
        for l in &self.server.listen {
            l.parse::<Listen>()
                .map_err(|e| format!("{}server.listen: {e}", line_of("listen")))?;
        }
        if self.server.listen.is_empty() {
            return Err(format!(
                "{}server.listen: at least one address is needed",
                line_of("listen")
            ));
        }
        let t = &self.tls;
        if t.certificate.is_some() != t.private_key.is_some() {
            let (key, missing) = match t.certificate {
                Some(_) => ("certificate", "private_key"),
                None => ("private_key", "certificate"),
            };
            return Err(format!(
                "{}tls.{key}: needs tls.{missing} too",
                line_of(key)
            ));
        }
        if t.verify_clients != VerifyClients::No && t.client_ca.is_none() {
            return Err(format!(
                "{}tls.verify_clients: needs tls.client_ca, the CA of the clients' certificates",
                line_of("verify_clients")
            ));
        }
        let tls_listen = self.listens().into_iter().find(|l| l.protocol.is_secure());
        if let (Some(l), None) = (tls_listen, &t.certificate) {
            return Err(format!(
                "{}server.listen: {l} needs [tls] certificate and private_key",
                line_of("listen")
            ));
        }
        if let Err(bad) = self.dns.addresses() {
            return Err(format!(
                "{}dns.servers: {bad:?} is not an IP address (with or without a port)",
                line_of("servers")
            ));
        }
        if let Some(a) = &self.server.advertise {
            a.parse::<std::net::IpAddr>().map_err(|_| {
                format!(
                    "{}server.advertise: {a:?} is not an IP address",
                    line_of("advertise")
                )
            })?;
        }
        if self.server.udp_coalesce_us > MAX_UDP_COALESCE_US {
            return Err(format!(
                "{}server.udp_coalesce_us: {} is over {MAX_UDP_COALESCE_US} (50 ms: a window \
                 must stay far below T1, when clients send again)",
                line_of("udp_coalesce_us"),
                self.server.udp_coalesce_us
            ));
        }
        if !self.api.listen.is_empty() && self.api.address().is_none() {
            let start = text.lines().position(|l| l.trim() == "[api]").unwrap_or(0);
            let line = text
                .lines()
                .enumerate()
                .skip(start)
                .find(|(_, l)| l.trim_start().starts_with("listen"))
                .map_or(String::new(), |(n, _)| format!("line {}: ", n + 1));
            return Err(format!(
                "{line}api.listen: {:?} is not an address:port (\"\" turns the API off)",
                self.api.listen
            ));
        }
        let mut realms: Vec<(std::borrow::Cow<'_, str>, &str)> = Vec::new();
        for realm in self.auth.realm_algorithms.keys() {
            let canonical = sip_message::canonical_domain(realm);
            if let Some((_, first)) = realms.iter().find(|(c, _)| *c == canonical) {
                return Err(format!(
                    "{}auth.realm_algorithms: {first:?} and {realm:?} name one domain",
                    line_of(&format!("\"{realm}\""))
                ));
            }
            realms.push((canonical, realm));
        }
        let r = &self.registrar;
        if r.min_expires > r.max_expires {
            return Err(format!(
                "{}registrar.min_expires: larger than max_expires",
                line_of("min_expires")
            ));
        }
        let nat = &self.nat;
        if nat.keepalive_interval > 0 && nat.keepalive_timeout < nat.keepalive_interval {
            return Err(format!(
                "{}nat.keepalive_timeout: shorter than keepalive_interval",
                line_of("keepalive_timeout")
            ));
        }
        if self.relay.port_range().is_none() {
            return Err(format!(
                "{}relay.ports: {:?} is not \"first-last\" with room for two port pairs",
                line_of("ports"),
                self.relay.ports
            ));
        }
        if self.relay.realtime_priority > 99 {
            return Err(format!(
                "{}relay.realtime_priority: {} is not 0 (off) to 99",
                line_of("realtime_priority"),
                self.relay.realtime_priority
            ));
        }
        if let Err(bad) = self.relay.ng_relays() {
            return Err(format!(
                "{}relay.ng: {bad:?} is not \"udp:address:port\"",
                line_of("ng =")
            ));
        }
        if self.timers.t1 == 0 || self.timers.t2 < self.timers.t1 {
            return Err(format!("{}timers: need 0 < t1 <= t2", line_of("t1")));
        }
        Ok(())
    }

    /// The limits on open TCP connections.
    pub(crate) fn tcp_limits(&self) -> transport::TcpLimits {
        transport::TcpLimits {
            total: self.server.tcp_max_connections,
            per_ip: self.server.tcp_max_connections_per_ip,
        }
    }

    /// The listen addresses, parsed (checked at load).
    pub(crate) fn listens(&self) -> Vec<Listen> {
        self.server
            .listen
            .iter()
            .filter_map(|l| l.parse().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coalescing_window_past_50_ms_is_refused() {
        let e = Config::parse("[server]\nudp_coalesce_us = 50001\n").unwrap_err();
        assert!(
            e.starts_with("line 2: server.udp_coalesce_us: 50001 is over 50000"),
            "{e}"
        );
        let c = Config::parse("[server]\nudp_coalesce_us = 50000\n").unwrap();
        assert_eq!(c.server.udp_receive().coalesce.as_millis(), 50);
    }

    #[test]
    fn a_tls_listen_address_needs_a_certificate_and_a_key() {
        let e = Config::parse("[server]\nlisten = [\"tls:0.0.0.0:5061\"]\n").unwrap_err();
        assert!(
            e.starts_with("line 2: ") && e.contains("needs [tls]"),
            "{e}"
        );
        let e = Config::parse("[tls]\ncertificate = \"a.pem\"\n").unwrap_err();
        assert_eq!(e, "line 2: tls.certificate: needs tls.private_key too");
        let c = Config::parse(
            "[server]\nlisten = [\"tls:0.0.0.0:5061\"]\n[tls]\ncertificate = \"a.pem\"\nprivate_key = \"a.key\"\n",
        )
        .unwrap();
        assert_eq!(
            c.tls.files().map(|f| f.default.certificate),
            Some(PathBuf::from("a.pem"))
        );
        let e = Config::parse(
            "[tls]\ncertificate = \"a.pem\"\nprivate_key = \"a.key\"\nverify_clients = \"required\"\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("line 4: tls.verify_clients: needs tls.client_ca"),
            "{e}"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert_eq!(c.routing.script, None);
        let c = Config::parse("[routing]\nscript = \"r.cfg\"\n[proxy]\ntimer_c = 90\n").unwrap();
        assert_eq!(c.routing.script, Some(PathBuf::from("r.cfg")));
        assert_eq!(c.proxy.timer_c, 90);
        assert_eq!(
            Config::default().tcp_limits(),
            transport::TcpLimits::default()
        );
        let c =
            Config::parse("[server]\ntcp_max_connections = 50\ntcp_max_connections_per_ip = 5\n")
                .unwrap();
        let l = c.tcp_limits();
        assert_eq!((l.total, l.per_ip), (50, 5));
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = Config::parse("[server]\nlisten = [\"udp:1.2.3.4\"]\n").unwrap_err();
        assert!(e.starts_with("line 2: server.listen"), "{e}");
        let e = Config::parse("[server]\n\nlistn = []\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("listn"), "{e}");
        let e = Config::parse("[registrar]\nmin_expires = 7200\n").unwrap_err();
        assert!(e.starts_with("line 2: registrar.min_expires"), "{e}");
        let e = Config::parse("[timers]\nt1 = \"x\"\n").unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
        let e = Config::parse("[nat]\nkeepalive_timeout = 10\n").unwrap_err();
        assert!(e.starts_with("line 2: nat.keepalive_timeout"), "{e}");
        let e = Config::parse("[relay]\n\nports = \"40000-30000\"\n").unwrap_err();
        assert!(e.starts_with("line 3: relay.ports"), "{e}");
        let e =
            Config::parse("[dns]\n\nservers = [\"127.0.0.1:5353\", \"ns.example\"]\n").unwrap_err();
        assert!(e.starts_with("line 3: dns.servers"), "{e}");
        let c = Config::parse("[dns]\nservers = [\"192.0.2.53\", \"[::1]:5353\"]\n").unwrap();
        let servers = c.dns.addresses().unwrap();
        assert_eq!(servers[0].to_string(), "192.0.2.53:53");
        assert_eq!(servers[1].to_string(), "[::1]:5353");
        let e = Config::parse("[relay]\nrealtime_priority = 100\n").unwrap_err();
        assert!(e.starts_with("line 2: relay.realtime_priority"), "{e}");
        let e = Config::parse("[relay]\nwhen_exhausted = \"maybe\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = Config::parse("[stun]\n\nlisten = [\"3478\"]\n").unwrap_err();
        assert!(
            e.starts_with("line 3") && e.contains("socket address"),
            "{e}"
        );
        let c = Config::parse("[auth]\nalgorithms = [\"MD5\", \"SHA-256\"]\n").unwrap();
        assert_eq!(
            c.auth.algorithms,
            [auth::Algorithm::Md5, auth::Algorithm::Sha256]
        );
        assert_eq!(Config::default().auth.algorithms, [auth::Algorithm::Md5]);
        let c =
            Config::parse("[auth.realm_algorithms]\n\"Example.COM\" = [\"SHA-256\", \"MD5\"]\n")
                .unwrap();
        assert_eq!(
            c.auth.realm_algorithms["Example.COM"].0,
            [auth::Algorithm::Sha256, auth::Algorithm::Md5]
        );
        let e = Config::parse(
            "[auth.realm_algorithms]\n\"Example.com\" = [\"MD5\"]\n\"example.com.\" = [\"SHA-256\"]\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("line 3") && e.contains("name one domain"),
            "{e}"
        );
        let e = Config::parse("[auth.realm_algorithms]\n\"a.example\" = [\"MD4\"]\n").unwrap_err();
        assert!(e.starts_with("line 2") && e.contains("MD4"), "{e}");
        let e = Config::parse("[auth]\n\nalgorithms = [\"SHA-512\"]\n").unwrap_err();
        assert!(e.starts_with("line 3") && e.contains("SHA-512"), "{e}");
        let c = Config::parse("[auth]\ntrusted = [\"192.0.2.7\", \"2001:db8::/32\"]\n").unwrap();
        assert_eq!(c.auth.trusted.len(), 2);
        let e = Config::parse("[auth]\ntrusted = [\"192.0.2.0/33\"]\n").unwrap_err();
        assert!(e.starts_with("line 2") && e.contains("192.0.2.0/33"), "{e}");
        let e = Config::parse("[auth]\nalgorithms = []\n").unwrap_err();
        assert!(e.contains("at least one"), "{e}");
        let e =
            Config::parse("[server]\nlisten = []\n[api]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.starts_with("line 2: server.listen"), "{e}");
        let e = Config::parse("[api]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.starts_with("line 2: api.listen"), "{e}");
        assert_eq!(
            Config::parse("[api]\nlisten = \"\"\n")
                .unwrap()
                .api
                .address(),
            None
        );
        let e = Config::parse("[proxy]\nredirect_domains = []\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("routing script"), "{e}");
    }
}
