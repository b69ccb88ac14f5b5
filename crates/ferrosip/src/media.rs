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
        primary: Option<IpAddr>,
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

/// Starts the relay, unless `[relay] enabled = false`; `primary` is the host's primary
/// IPv4 address. The address SDP names is `[relay] announce`, else the bind address, else
/// `[server] advertise`, else the first SIP listen address that is not a wildcard nor
/// loopback, else `primary`.
pub(crate) fn start(cfg: &Config, primary: Option<IpAddr>) -> anyhow::Result<Option<MediaRelay>> {
    let r = &cfg.relay;
    if !r.enabled {
        return Ok(None);
    }
    let ports = r
        .port_range()
        .ok_or_else(|| anyhow::anyhow!("relay.ports: {:?} is not a usable range", r.ports))?;
    let family = |a: &IpAddr| a.is_ipv4() == r.bind.is_ipv4();
    let advertise = cfg.server.advertise.as_deref().and_then(|a| a.parse().ok());
    let listen = cfg
        .listens()
        .into_iter()
        .map(|l| l.addr.ip())
        .find(|ip| !ip.is_unspecified() && !ip.is_loopback() && family(ip));
    let announce = r
        .announce
        .or((!r.bind.is_unspecified()).then_some(r.bind))
        .or(advertise.filter(family))
        .or(listen)
        .or(primary.filter(family))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let threads = match r.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let relay = MediaRelay::start(&RelayConfig {
        bind: r.bind,
        announce,
        ports: ports.clone(),
        timeout: Duration::from_secs(r.timeout),
        threads,
    })?;
    tracing::info!(bind = %r.bind, %announce, ports = ?ports, threads, "media relay started");
    Ok(Some(relay))
}
