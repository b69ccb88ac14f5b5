//! `ferrosip relay`: the media relay alone, answering rtpengine's ng protocol, for a
//! Kamailio or OpenSIPS (its rtpengine module) or a ferrosip on another host.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;

/// Runs the relay until SIGTERM or Ctrl-C; `ng` replaces `[relay] ng_listen`.
pub(crate) fn run(config: Option<&Path>, ng: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.relay.enabled = true;
    let listen = ng.unwrap_or(cfg.relay.ng_listen);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let relay = crate::media::start(&cfg, crate::cmd::serve::primary_ip)?.context("the media relay did not start")?;
        let sock = tokio::net::UdpSocket::bind(listen)
            .await
            .with_context(|| format!("relay.ng_listen: cannot listen on {listen}"))?;
        let allow = cfg.relay.ng_allow.clone();
        tracing::info!(%listen, allow = ?allow, "answering rtpengine's ng protocol");
        let allowed = move |ip: std::net::IpAddr| {
            let ip = ip.to_canonical();
            allow.iter().any(|net| net.contains(&ip))
        };
        tokio::select! {
            served = relay_net::serve_ng(relay, sock, allowed) => served.context("the ng socket failed"),
            _ = crate::cmd::serve::shutdown_signal() => Ok(()),
        }
    })
}
