//! `ferrosip serve`: the registrar and proxy on the configured transports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use registrar::{Location, RegistrarConfig};
use sip_message::Message;
use sip_proxy::{Command, Core, Destination, ProxyConfig, Resume, Written};
use sip_transaction::TimerConfig;
use store::Store;
use transport::{Handler, Listen, Source, Transports};

use crate::api::{self, ApiState};
use crate::cmd::accounting::Accounting;
use crate::cmd::group_commit::{GroupCommit, Next, MAX_BATCH};
use crate::cmd::presence_state::PresenceWriter;
use crate::config::Config;
use crate::manage::{load_directory, Live};
use crate::metrics::Metrics;
use crate::reload::{log_directory, Reloader};
use crate::resolve::Lookups;
use crate::script::load_script;

/// Command-line overrides of the configuration.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) listen: Vec<Listen>,
    pub(crate) database: Option<String>,
    pub(crate) script: Option<std::path::PathBuf>,
    /// The API's address, or `off`.
    pub(crate) api: Option<String>,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub(crate) fn run(config: Option<&Path>, overrides: Overrides) -> anyhow::Result<()> {
    let mut cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if !overrides.listen.is_empty() {
        cfg.server.listen = overrides.listen.iter().map(ToString::to_string).collect();
    }
    if let Some(db) = overrides.database {
        cfg.server.database = db;
    }
    if let Some(script) = overrides.script {
        cfg.routing.script = Some(script);
    }
    if let Some(api) = overrides.api {
        cfg.api.listen = if api == "off" { String::new() } else { api };
        if !cfg.api.listen.is_empty() && cfg.api.address().is_none() {
            anyhow::bail!(
                "--api: {:?} is not an address:port, nor off",
                cfg.api.listen
            );
        }
    }
    // This thread runs TCP, timers and the binding writer on a single-threaded runtime; UDP
    // sockets (SO_REUSEPORT) each have a thread of their own blocking in recv_from.
    // Measured: a multi-threaded tokio scheduler cost 73 µs of CPU per REGISTER against 41,
    // its cross-thread wake-ups dominating; blocking receive threads save the event loop's
    // epoll_wait and the extra recvfrom per datagram.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(cfg))
}

/// The host's primary address: the source address the kernel would pick for a public
/// destination. Connecting a UDP socket sends nothing.
pub(crate) fn primary_ip(v6: bool) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = if v6 {
        ("[::]:0".parse().ok()?, "[2001:db8::1]:9".parse().ok()?)
    } else {
        ("0.0.0.0:0".parse().ok()?, "192.0.2.1:9".parse().ok()?)
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(probe).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

pub(crate) fn proxy_config(
    cfg: &Config,
    bound: &[(transport::Protocol, SocketAddr)],
) -> anyhow::Result<ProxyConfig> {
    let advertise: Option<IpAddr> = cfg.server.advertise.as_deref().and_then(|a| a.parse().ok());
    let mut domains: Vec<String> = cfg
        .server
        .domains
        .iter()
        .map(|d| sip_message::canonical_domain(d).into_owned())
        .collect();
    domains.push("localhost".into());
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        domains.push(sip_message::canonical_domain(h.trim()).into_owned());
    }
    let mut advertised = Vec::new();
    for &(protocol, addr) in bound {
        let ip = if addr.ip().is_unspecified() {
            domains.push(if addr.is_ipv4() {
                "127.0.0.1".into()
            } else {
                "::1".into()
            });
            advertise
                .filter(|a| a.is_ipv4() == addr.is_ipv4())
                .or_else(|| primary_ip(addr.is_ipv6()))
                .unwrap_or(if addr.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                })
        } else {
            addr.ip()
        };
        domains.push(ip.to_string());
        advertised.push((protocol, SocketAddr::new(ip, addr.port())));
        if addr.ip().is_unspecified() && !ip.is_loopback() {
            // Clients on this host reach us on loopback too; treat that as us.
            let lo = if addr.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            };
            advertised.push((protocol, SocketAddr::new(lo, addr.port())));
        }
    }
    domains.sort();
    domains.dedup();
    let (mut branch_secret, mut nonce_secret, mut route_secret) = ([0u8; 16], [0u8; 32], [0u8; 16]);
    for secret in [
        &mut branch_secret[..],
        &mut nonce_secret[..],
        &mut route_secret[..],
    ] {
        getrandom::fill(secret).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    }
    Ok(ProxyConfig {
        domains,
        hosted: Default::default(),
        advertised,
        timer_c: Duration::from_secs(cfg.proxy.timer_c),
        timers: TimerConfig {
            t1: Duration::from_millis(cfg.timers.t1),
            t2: Duration::from_millis(cfg.timers.t2),
            t4: Duration::from_millis(cfg.timers.t4),
        },
        registrar: RegistrarConfig {
            min_expires: cfg.registrar.min_expires,
            max_expires: cfg.registrar.max_expires,
            default_expires: cfg.registrar.default_expires,
            max_contacts: cfg.registrar.max_contacts,
            max_bindings: cfg.registrar.max_bindings,
            max_bindings_per_source: cfg.registrar.max_bindings_per_source,
            // Keep-alives well within the idle timeout (120 s at most, RFC 5626's default).
            flow_timer: u32::try_from(cfg.server.tcp_idle_timeout / 2)
                .unwrap_or(u32::MAX)
                .clamp(1, 120),
        },
        agent: cfg.server.agent.clone(),
        digest_algorithms: cfg.auth.algorithms.clone(),
        realm_algorithms: cfg
            .auth
            .realm_algorithms
            .iter()
            .map(|(realm, a)| {
                (
                    sip_message::canonical_domain(realm).into_owned(),
                    a.0.clone(),
                )
            })
            .collect(),
        nonce_lifetime: Duration::from_secs(cfg.auth.nonce_lifetime),
        trusted: cfg.auth.trusted.clone(),
        guard: sip_proxy::GuardConfig {
            flood_limit: cfg.security.flood_limit,
            auth_failures: cfg.security.auth_failures,
            auth_window: Duration::from_secs(cfg.security.auth_window),
            ban: Duration::from_secs(cfg.security.ban),
        },
        max_pending_writes: cfg.server.max_pending_writes,
        max_transactions: cfg.server.max_transactions,
        branch_secret: sip_proxy::BranchSecret(branch_secret),
        nonce_secret: sip_proxy::NonceSecret(nonce_secret),
        media_optional: !cfg.relay.enabled
            || cfg.relay.when_exhausted == crate::config::WhenExhausted::Proceed,
        // Replaced by the database's at start (see `route_secret`).
        route_secret: sip_proxy::RouteSecret(route_secret),
        calls: cfg.calls.limits(),
        presence: cfg.presence.limits(),
        messages: cfg.messages.limits(),
    })
}

/// Registrar changes to write, and the REGISTER that waits for them.
struct Job {
    changes: Vec<registrar::Change>,
    then: Option<Resume>,
    /// Signalled once this job (and so every job before it) is written: shutdown waits on it.
    written: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Connects the core to the transports and the store.
struct Server {
    core: std::sync::OnceLock<Arc<Core>>,
    transports: std::sync::OnceLock<Transports>,
    persist: tokio::sync::mpsc::UnboundedSender<Job>,
    /// Writes of messages kept for users offline, in order.
    messages: tokio::sync::mpsc::UnboundedSender<sip_proxy::MessageWrite>,
    lookups: Arc<Lookups>,
    metrics: Arc<Metrics>,
    /// The main runtime: UDP messages are handled on receive threads outside it, and what
    /// they start (DNS lookups, TCP sends) runs here.
    runtime: tokio::runtime::Handle,
    /// The media relay, unless `[relay]` turns it off.
    media: Option<crate::media::Media>,
}

impl Server {
    /// Runs the core's commands in order: datagrams go out at once; binding writes go to
    /// the writer, which commits in batches (group commit) and then tells the core.
    fn execute(self: &Arc<Self>, commands: Vec<Command>) {
        for c in commands {
            match c {
                Command::Send { dest, data } => self.send(dest, data),
                Command::Persist { changes, then } => {
                    let job = Job {
                        changes,
                        then,
                        written: None,
                    };
                    if let Err(refused) = self.persist.send(job) {
                        tracing::error!("the location writer has stopped");
                        // The REGISTER that waits gets its 500 (and its slot back).
                        if let (Some(core), Some(then)) = (self.core.get(), refused.0.then) {
                            let failed = Written::Failed(&refused.0.changes);
                            self.execute(core.persisted(Instant::now(), then, failed));
                        }
                    }
                }
                Command::Resolve { hosts, then } => {
                    let Some(core) = self.core.get() else {
                        continue;
                    };
                    let server = self.clone();
                    let done = move |commands| server.execute(commands);
                    let wait = (hosts, then);
                    self.lookups.resolve(core, wait, &self.runtime, done);
                }
                Command::Media { request, then } => self.media(request, then),
                Command::Messages(write) => {
                    if self.messages.send(write).is_err() {
                        tracing::error!("the message writer has stopped");
                    }
                }
                Command::KeepOpen { dest, time } => {
                    if let Some(t) = self.transports.get() {
                        t.keep_open(dest.protocol, dest.addr, time);
                    }
                }
            }
        }
    }

    /// Gives a request to the media relay, and its answer to the core when a message waits
    /// for it (without a relay: at once, as unavailable).
    fn media(self: &Arc<Self>, request: relay::MediaRequest, then: Option<Resume>) {
        let Some(relay) = self.media.clone() else {
            if let (Some(core), Some(then)) = (self.core.get(), then) {
                let unavailable = Err(relay::MediaError::Unavailable);
                self.execute(core.media_done(Instant::now(), then, unavailable));
            }
            return;
        };
        let server = self.clone();
        self.runtime.spawn(async move {
            let result = relay.apply(&request).await;
            if let (Some(core), Some(then)) = (server.core.get(), then) {
                server.execute(core.media_done(Instant::now(), then, result));
            }
        });
    }

    /// Sends UDP at once; anything else in a task, telling the core when it could not be
    /// sent.
    fn send(self: &Arc<Self>, dest: Destination, data: bytes::Bytes) {
        let Some(transports) = self.transports.get() else {
            return;
        };
        self.metrics.sent(&data, dest.protocol);
        if transports.try_send_udp(dest.protocol, dest.addr, &data) {
            return;
        }
        let server = self.clone();
        self.runtime.spawn(async move {
            let Some(transports) = server.transports.get() else {
                return;
            };
            // Over TLS to a hop found by name, a connection that checked that name; none
            // when the name is no longer kept.
            let name = server.core.get().and_then(|core| core.name_of(&dest));
            let sent = match (dest.name, &name) {
                (Some(_), None) => Err("the name the hop was found by is no longer kept".into()),
                _ => {
                    let (protocol, addr, connection) = (dest.protocol, dest.addr, dest.connection);
                    let data = data.clone();
                    let sent = transports.send(protocol, addr, connection, name.as_deref(), data);
                    sent.await.map_err(|e| e.to_string())
                }
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "send failed");
                if let Some(core) = server.core.get() {
                    server.execute(core.send_failed(Instant::now(), dest, data));
                }
            }
        });
    }
}

/// Answers STUN on the addresses `[stun] listen` names (an error when one cannot be bound),
/// or by default on port 3478 of each UDP address SIP listens on (a warning then).
fn start_stun(cfg: &Config, locals: &[(transport::Protocol, SocketAddr)]) -> anyhow::Result<()> {
    if let Some(listen) = &cfg.stun.listen {
        for &a in listen {
            transport::listen_stun(a)
                .with_context(|| format!("stun.listen: cannot listen on {a}"))?;
        }
        return Ok(());
    }
    let mut defaults: Vec<SocketAddr> = locals
        .iter()
        .filter(|(p, _)| *p == transport::Protocol::Udp)
        .map(|(_, a)| SocketAddr::new(a.ip(), transport::STUN_PORT))
        .collect();
    defaults.sort();
    defaults.dedup();
    for a in defaults {
        if let Err(e) = transport::listen_stun(a) {
            tracing::warn!(addr = %a, error = %e, "STUN port unavailable: STUN is answered on the SIP UDP ports only (set [stun] listen)");
        }
    }
    Ok(())
}

/// The key of our Record-Route entries, kept in the database: the same after a restart and
/// for every server sharing it (`candidate` the first time).
async fn route_secret(
    store: &Store,
    candidate: sip_proxy::RouteSecret,
) -> anyhow::Result<sip_proxy::RouteSecret> {
    let hex: String = candidate.0.iter().map(|b| format!("{b:02x}")).collect();
    let stored = store
        .secret("record-route", &hex)
        .await
        .context("reading the Record-Route key")?;
    let bytes: Option<Vec<u8>> = (stored.len() == 32 && stored.is_ascii())
        .then(|| {
            (0..16)
                .map(|i| u8::from_str_radix(&stored[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
    let key: [u8; 16] = bytes
        .and_then(|b| b.try_into().ok())
        .context("the Record-Route key in the database is not 32 hex digits")?;
    Ok(sip_proxy::RouteSecret(key))
}

/// Tells the core the wall-clock time (it reads no clock of its own).
fn tell_time(core: &Core) {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    core.set_wall_clock(Instant::now(), unix);
}

/// Timers are served in ticks: SIP's timers are hundreds of milliseconds, and waking for each
/// transaction's deadline on its own cost a context switch per message under load.
const TIMER_TICK: Duration = Duration::from_millis(10);

/// How long one attempt to write a batch may take: the four attempts end well within the
/// 64·T1 a REGISTER waits for its write (a hung database connection must not hold them).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes registrar changes in batches: every job waiting is committed in one transaction,
/// then the responses that waited for it are sent.
async fn location_writer(
    server: Arc<Server>,
    store: Store,
    window: Duration,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
) {
    let mut batch = Vec::new();
    let mut backlog = false;
    let mut pace = GroupCommit::new(window);
    loop {
        // Quiet, the first job wakes the writer and is committed at once. Busy, it only
        // wakes at the end of each window, and the REGISTERs of the window share one
        // transaction: a wake-up per job's arrival costs more than the window's sleep.
        match pace.next(jobs.len(), backlog) {
            Next::Wait => {
                if jobs.recv_many(&mut batch, MAX_BATCH).await == 0 {
                    break;
                }
            }
            Next::Gather => tokio::time::sleep(window).await,
            Next::Take => {}
        }
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        pace.taken(batch.len(), Instant::now());
        if batch.is_empty() {
            continue;
        }
        backlog = !jobs.is_empty();
        // A failed transaction (a database restarting, a deadlock with another server) is
        // tried again; the answers wait meanwhile (UDP clients retransmit, and the
        // transactions absorb that). If it still fails, the REGISTERs are answered 500.
        let mut stored = false;
        for (attempt, pause) in [0, 100, 500, 2000].into_iter().enumerate() {
            if pause > 0 {
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            let attempt_of = store.apply(batch.iter().flat_map(|j| &j.changes));
            let result = match tokio::time::timeout(WRITE_TIMEOUT, attempt_of).await {
                Ok(result) => result.map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("no answer within {WRITE_TIMEOUT:?}")),
            };
            match result {
                Ok(()) => {
                    stored = true;
                    break;
                }
                Err(e) if attempt == 3 => {
                    tracing::error!(error = %e, "bindings not stored: their REGISTERs get 500")
                }
                Err(e) => tracing::warn!(error = %e, "cannot store bindings, trying again"),
            }
        }
        if let Some(core) = server.core.get() {
            // Failed changes are taken back newest first, so the oldest state wins.
            let mut order: Vec<&Job> = batch.iter().collect();
            if !stored {
                order.reverse();
            }
            for job in order {
                let Some(then) = job.then else { continue };
                let written = match stored {
                    true => Written::Stored,
                    false => Written::Failed(&job.changes),
                };
                server.execute(core.persisted(Instant::now(), then, written));
            }
        }
        for job in batch.drain(..) {
            if let Some(w) = job.written {
                let _ = w.send(());
            }
        }
    }
}

/// The transports hand every message to the core.
struct Dispatch(Arc<Server>);

impl Handler for Dispatch {
    fn on_message(&self, msg: Message, src: Source) {
        let Some(core) = self.0.core.get() else {
            return;
        };
        let dest = Destination::new(src.protocol, src.remote);
        self.0.metrics.received(&msg, src.protocol);
        let commands = if src.local.ip().is_unspecified() {
            core.handle_message(Instant::now(), msg, dest)
        } else {
            core.handle_message_at(Instant::now(), msg, dest, src.local)
        };
        self.0.execute(commands);
    }

    fn on_malformed(
        &self,
        data: &[u8],
        error: sip_message::ParseError,
        src: Source,
    ) -> Option<bytes::Bytes> {
        tracing::debug!(%src, %error, "malformed message");
        self.0.metrics.malformed(src.protocol);
        let (code, reason) = match error.kind {
            sip_message::ErrorKind::Version => (505, "Version Not Supported".to_owned()),
            sip_message::ErrorKind::TooLarge => (513, "Message Too Large".to_owned()),
            kind => (400, format!("Bad Request ({kind})")),
        };
        let answer = sip_message::response_to_unparsable(data, code, &reason)?;
        self.0.metrics.sent(&answer, src.protocol);
        Some(answer)
    }

    fn on_refused(&self, _src: Source) {
        self.0.metrics.tcp_refused();
    }

    fn on_closed(&self, src: Source) {
        if let Some(core) = self.0.core.get() {
            let commands = core.connection_closed(Instant::now(), src.protocol, src.remote);
            self.0.execute(commands);
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let script = load_script(cfg.routing.script.as_deref())?;
    let store = Store::open(&cfg.server.database).await?;
    let served = serve_with(cfg, script, &store).await;
    // On SQLite, the last connection to close folds the write-ahead log into the file.
    store.close().await;
    served
}

/// The server on an open store, until SIGTERM or Ctrl-C.
async fn serve_with(
    cfg: Config,
    script: Arc<sip_proxy::ProxyScript>,
    store: &Store,
) -> anyhow::Result<()> {
    let location = Arc::new(Location::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // A WebSocket client's binding is reached over its connection only, which a restart
    // has closed: it goes (the client registers again when it reconnects).
    let mut flows_gone = Vec::new();
    store
        .for_each_binding(|b| {
            if b.source_is_websocket() {
                flows_gone.push(b.removal());
            } else if b.expires_at > now {
                location.load([b]);
            }
        })
        .await
        .context("loading bindings")?;
    if !flows_gone.is_empty() {
        store
            .apply(&flows_gone)
            .await
            .context("removing the bindings of closed WebSocket connections")?;
    }
    tracing::info!(
        bindings = location.len(),
        websocket_gone = flows_gone.len(),
        "location table loaded"
    );

    let checkpoints = {
        let store = store.clone();
        tokio::spawn(async move {
            // Every 5 s: pages written many times in between are copied once.
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if let Err(e) = store.checkpoint().await {
                    tracing::warn!(error = %e, "checkpoint failed");
                }
            }
        })
    };
    let (persist, jobs) = tokio::sync::mpsc::unbounded_channel();
    let (messages, message_writes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(crate::cmd::offline::writer(store.clone(), message_writes));
    let server = Arc::new(Server {
        core: Default::default(),
        transports: Default::default(),
        persist,
        messages,
        lookups: Arc::new(Lookups::new(&cfg.dns.addresses().unwrap_or_default())),
        metrics: Arc::new(Metrics::new()),
        runtime: tokio::runtime::Handle::current(),
        media: crate::media::Media::start(&cfg, primary_ip).await?,
    });
    let window = Duration::from_millis(cfg.server.commit_window_ms);
    tokio::spawn(location_writer(server.clone(), store.clone(), window, jobs));
    let handler: Arc<dyn Handler> = Arc::new(Dispatch(server.clone()));
    let tls = match cfg.tls.files() {
        Some(files) => Some((transport::Tls::load(&files).context("[tls]")?, files)),
        None => None,
    };
    let wss = cfg
        .listens()
        .iter()
        .any(|l| l.protocol == transport::Protocol::Wss);
    if wss
        && matches!(&tls, Some((_, f)) if matches!(f.clients, transport::ClientCertificates::Required(_)))
    {
        tracing::warn!(
            "tls.verify_clients = \"required\" leaves wss: listeners open to clients without a \
             certificate (browsers have none); only tls: listeners require one"
        );
    }
    let transports = Transports::start(
        &cfg.listens(),
        handler,
        Duration::from_secs(cfg.server.tcp_idle_timeout),
        cfg.tcp_limits(),
        cfg.server.udp_receive(),
        tls.as_ref().map(|(t, _)| t.clone()),
    )
    .await?;
    start_stun(&cfg, &transports.local_addrs())?;
    let mut proxy = proxy_config(&cfg, &transports.local_addrs())?;
    proxy.route_secret = route_secret(store, proxy.route_secret).await?;
    let core = Arc::new(Core::with_script(proxy, location.clone(), script));
    tell_time(&core);
    let directory = load_directory(&core, store)
        .await
        .context("loading subscribers, domains and aliases")?;
    log_directory(&core, &directory, "directory loaded");
    // The calls in progress before the restart, followed again before any BYE can come.
    crate::cmd::accounting::restore(&core, store).await?;
    // The presence server's subscriptions and publications, before a refresh can come.
    crate::cmd::presence_state::restore(&core, store).await?;
    crate::cmd::offline::restore(&core, store).await?;
    let live = Live {
        core: core.clone(),
        location,
        execute: {
            let server = server.clone();
            Arc::new(move |commands| server.execute(commands))
        },
    };
    let reloader = || Reloader {
        live: live.clone(),
        store: store.clone(),
        metrics: server.metrics.clone(),
        script: cfg.routing.script.clone(),
        tls: tls.clone(),
    };
    let in_process = server.media.as_ref().and_then(|m| m.in_process().cloned());
    let api = start_api(&cfg, reloader(), in_process).await?;
    tracing::info!(domains = ?core.config().domains, "serving");
    let _ = server.core.set(core.clone());
    let _ = server.transports.set(transports);
    let calls = calls_each_second(&cfg, store, &server, &core)?;
    let timers = {
        let (server, core) = (server.clone(), core.clone());
        let keepalive = (cfg.nat.keepalive_interval > 0).then(|| {
            (
                Duration::from_secs(cfg.nat.keepalive_interval),
                Duration::from_secs(cfg.nat.keepalive_timeout),
            )
        });
        tokio::spawn(async move {
            let mut last_purge = Instant::now();
            let mut last_keepalive = Instant::now();
            loop {
                // Idle, it wakes every 100 ms (or T1, if shorter): a timer started meanwhile is
                // at least T1 away, so it is still served on time.
                let now = Instant::now();
                let longest = core.config().timers.t1.min(Duration::from_millis(100));
                let next = core
                    .next_timeout()
                    .unwrap_or(now + longest)
                    .clamp(now + TIMER_TICK.min(longest), now + longest);
                tokio::time::sleep_until(next.into()).await;
                server.execute(core.handle_timeouts(Instant::now()));
                if let Some((every, timeout)) = keepalive {
                    if last_keepalive.elapsed() >= every {
                        last_keepalive = Instant::now();
                        server.execute(core.keepalive(last_keepalive, timeout));
                    }
                }
                if last_purge.elapsed() > Duration::from_secs(10) {
                    last_purge = Instant::now();
                    tell_time(&core);
                    let changes = core.purge_expired(Instant::now());
                    server.execute(core.presence_location(Instant::now(), &changes));
                    if !changes.is_empty() {
                        server.execute(vec![Command::Persist {
                            changes,
                            then: None,
                        }]);
                    }
                }
            }
        })
    };
    let reloads = tokio::spawn(reloader().on_sighup());
    shutdown_signal().await;
    reloads.abort();
    if let Some(api) = api {
        api.abort();
    }
    tracing::info!("shutting down");
    timers.abort();
    let _ = calls.0.send(());
    if let Ok((accounting, presence)) = calls.1.await {
        accounting.finish(&core).await;
        presence.finish(&core).await;
    }
    // Every acknowledged REGISTER is already written; wait for those still queued.
    let (written, done) = tokio::sync::oneshot::channel();
    let flush = Job {
        changes: Vec::new(),
        then: None,
        written: Some(written),
    };
    if server.persist.send(flush).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
    }
    checkpoints.abort();
    Ok(())
}

/// Starts the management API when configured; its task.
async fn start_api(
    cfg: &Config,
    reloader: Reloader,
    media: Option<relay_net::MediaRelay>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = cfg.api.address() else {
        return Ok(None);
    };
    // The token file is there before anyone can connect.
    let token = api::token(cfg.api.token.as_deref(), &cfg.api.token_file)?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr} for the management API: {e} (another address in [api] \
             listen or --api ADDR, or none: --api off or [api] listen = \"\")"
        )
    })?;
    let state = Arc::new(ApiState {
        store: reloader.store.clone(),
        live: reloader.live.clone(),
        token,
        metrics: reloader.metrics.clone(),
        reloader,
        media,
    });
    tracing::info!(%addr, "management API listening");
    let app = api::router(state);
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "management API stopped");
        }
    })))
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The task of [`calls_each_second`]: its writers, when it stops.
type EachSecond = tokio::task::JoinHandle<(Accounting, PresenceWriter)>;

/// Each second, the followed calls' records and changes go to [`Accounting`], and the BYEs
/// of the calls past their longest duration are sent; the presence server's NOTIFYs of
/// the second are sent and its changes go to the store; until told to stop (then it gives
/// its writers back, for the last records).
fn calls_each_second(
    cfg: &Config,
    store: &Store,
    server: &Arc<Server>,
    core: &Arc<Core>,
) -> anyhow::Result<(tokio::sync::oneshot::Sender<()>, EachSecond)> {
    let mut accounting = Accounting::start(&cfg.accounting, store, server.metrics.clone())?;
    let presence = PresenceWriter::start(store);
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let (server, core) = (server.clone(), core.clone());
    let task = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = &mut stopped => break,
            }
            let mut tick = core.tick_calls(Instant::now());
            server.execute(std::mem::take(&mut tick.commands));
            accounting.take(tick);
            let mut tick = core.tick_presence(Instant::now());
            server.execute(std::mem::take(&mut tick.commands));
            presence.take(tick.changes);
            server.execute(core.deliver_messages(Instant::now()));
        }
        (accounting, presence)
    });
    Ok((stop, task))
}
