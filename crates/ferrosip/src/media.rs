//! The media relay the core's [`Command::Media`](sip_proxy::Command::Media) requests go
//! to: the in-process one, started as `[relay]` says, or external ones over ng
//! (`[relay] ng`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use std::sync::Arc;

use relay::{MediaError, MediaRequest};
use relay_net::{MediaRelay, RelayConfig};

use crate::config::Config;
use crate::ng_client::NgRelays;

/// Where media requests go.
#[derive(Clone)]
pub(crate) enum Media {
    /// The in-process relay.
    InProcess(MediaRelay),
    /// External relays over ng.
    Ng(Arc<NgRelays>),
}

impl Media {
    /// The relay `[relay]` asks for: external ones when `ng` names any, else the in-process
    /// one unless `enabled = false`.
    pub(crate) async fn start(
        cfg: &Config,
        primary: impl Fn(bool) -> Option<IpAddr>,
    ) -> anyhow::Result<Option<Media>> {
        let ng = cfg
            .relay
            .ng_relays()
            .map_err(|bad| anyhow::anyhow!("relay.ng: {bad:?} is not udp:address:port"))?;
        if !ng.is_empty() && cfg.relay.enabled {
            tracing::info!(relays = ?ng, "media through external relays (ng)");
            return Ok(Some(Media::Ng(NgRelays::start(ng).await?)));
        }
        Ok(start(cfg, primary)?.map(Media::InProcess))
    }

    /// Gives a request to the relay; its answer.
    pub(crate) async fn apply(&self, req: &MediaRequest) -> Result<Vec<u8>, MediaError> {
        match self {
            Media::InProcess(r) => r.apply(req).await,
            Media::Ng(r) => r.apply(req).await,
        }
    }

    /// The in-process relay, if that is the one (its counters are ours to show).
    pub(crate) fn in_process(&self) -> Option<&MediaRelay> {
        match self {
            Media::InProcess(r) => Some(r),
            Media::Ng(_) => None,
        }
    }
}

/// Starts the relay, unless `[relay] enabled = false`; `primary` gives the host's primary
/// address of a family (IPv6: `true`). The address SDP names to IPv4 parties is `[relay]
/// announce`, else the bind address, else `[server] advertise`, else the first SIP listen
/// address that is no wildcard nor loopback, else the primary one; likewise for IPv6
/// parties (`announce6`) when the relay is bound to IPv6 (`::` takes both families).
pub(crate) fn start(
    cfg: &Config,
    primary: impl Fn(bool) -> Option<IpAddr>,
) -> anyhow::Result<Option<MediaRelay>> {
    let r = &cfg.relay;
    if !r.enabled {
        return Ok(None);
    }
    // `::` (the default) on a host without IPv6: IPv4 only.
    let bind = match r.bind {
        IpAddr::V6(v6) if v6.is_unspecified() && std::net::UdpSocket::bind("[::]:0").is_err() => {
            tracing::info!("no IPv6 on this host: the relay binds 0.0.0.0");
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
        b => b,
    };
    let ports = r
        .port_range()
        .ok_or_else(|| anyhow::anyhow!("relay.ports: {:?} is not a usable range", r.ports))?;
    let advertise: Option<IpAddr> = cfg.server.advertise.as_deref().and_then(|a| a.parse().ok());
    let listens: Vec<IpAddr> = cfg.listens().into_iter().map(|l| l.addr.ip()).collect();
    let pick = |v6: bool, configured: Option<IpAddr>| {
        let family = |a: &IpAddr| a.is_ipv6() == v6;
        configured
            .or(Some(bind).filter(|b| !b.is_unspecified() && family(b)))
            .or(advertise.filter(family))
            .or(listens
                .iter()
                .copied()
                .find(|ip| !ip.is_unspecified() && !ip.is_loopback() && family(ip)))
            .or(primary(v6).filter(family))
    };
    let announce = pick(false, r.announce).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let announce6 = match bind.is_ipv6() {
        true => pick(true, r.announce6),
        false => None,
    };
    let threads = match r.threads {
        // 16 at most: the default pool's 2 500 streams need 2 or 3 cores, and each thread
        // gets at least 16 of a source's ringing streams (the limit would grow past 256).
        0 => std::thread::available_parallelism().map_or(1, |n| usize::from(n).min(16)),
        n => n,
    };
    let relay = MediaRelay::start(&RelayConfig {
        bind,
        announce,
        announce6,
        ports: ports.clone(),
        timeout: Duration::from_secs(r.timeout),
        threads,
        io_uring: r.io_uring,
        realtime_priority: r.realtime_priority,
        max_ringing_per_source: r.max_ringing_per_source,
        trusted: cfg.auth.trusted.clone(),
        kernel: r.kernel_forwarding,
    })?;
    let io_uring = relay.uses_io_uring();
    tracing::info!(%bind, %announce, ?announce6, ports = ?ports, threads, io_uring, "media relay started");
    Ok(Some(relay))
}
