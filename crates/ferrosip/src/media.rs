//! The in-process media relay: started as `[relay]` says, and given the core's
//! [`Command::Media`](sip_proxy::Command::Media) requests.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use relay_net::{MediaRelay, RelayConfig};

use crate::config::Config;

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
