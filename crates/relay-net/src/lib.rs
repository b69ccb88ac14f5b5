//! The media relay's IO over the sans-IO [`relay`] crate. Each of `threads` threads runs a
//! shard: its own [`relay::Relay`] over its own part of the port range, the sockets of its
//! sessions, and a task per socket that hands each packet to the shard's relay and sends it
//! on — all on that thread, so no packet takes a lock. A call's session lives in the shard
//! its Call-ID hashes to; offers, answers and deletes reach it over a channel.

mod shard;

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use relay::{SessionId, SessionPorts, SessionStats};
use tokio::sync::{mpsc, oneshot};

use crate::shard::Control;

/// Where and how the relay works.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The address to bind the media ports on.
    pub bind: IpAddr,
    /// The ports (30000–40000 by default), shared out between the threads.
    pub ports: RangeInclusive<u16>,
    /// A session with no packet for this long ends (60 s by default).
    pub timeout: Duration,
    /// Threads, each with a shard of the sessions (one per core by default).
    pub threads: usize,
}

/// A running relay; cheap to clone, and usable from any thread or runtime.
#[derive(Debug, Clone)]
pub struct MediaRelay {
    shards: Vec<mpsc::UnboundedSender<Control>>,
}

impl MediaRelay {
    /// Starts the threads.
    pub fn start(cfg: &RelayConfig) -> std::io::Result<MediaRelay> {
        let n = cfg.threads.max(1);
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::unbounded_channel();
            let ports = shard::ports_of(&cfg.ports, i, n);
            let (bind, timeout) = (cfg.bind, cfg.timeout);
            std::thread::Builder::new()
                .name(format!("ferrosip-relay-{i}"))
                .spawn(move || shard::run(bind, ports, timeout, rx))?;
            shards.push(tx);
        }
        Ok(MediaRelay { shards })
    }

    fn shard(&self, id: &SessionId) -> &mpsc::UnboundedSender<Control> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.call_id.hash(&mut h);
        &self.shards[(h.finish() % self.shards.len() as u64) as usize]
    }

    async fn ask<T>(
        &self,
        id: &SessionId,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.shard(id).send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// An offer (see [`relay::Relay::offer`]; `from`: where its signalling came from);
    /// `None` when the ports are exhausted or cannot be bound.
    pub async fn offer(
        &self,
        id: &SessionId,
        media: Vec<Option<SocketAddr>>,
        from: Option<IpAddr>,
    ) -> Option<SessionPorts> {
        let id2 = id.clone();
        self.ask(id, |reply| Control::Offer {
            id: id2,
            media,
            from,
            reply,
        })
        .await
        .flatten()
    }

    /// An answer (see [`relay::Relay::answer`]).
    pub async fn answer(
        &self,
        id: &SessionId,
        media: Vec<Option<SocketAddr>>,
        from: Option<IpAddr>,
    ) -> Option<SessionPorts> {
        let id2 = id.clone();
        self.ask(id, |reply| Control::Answer {
            id: id2,
            media,
            from,
            reply,
        })
        .await
        .flatten()
    }

    /// Ends a session; false when there was none.
    pub async fn delete(&self, id: &SessionId) -> bool {
        let id2 = id.clone();
        self.ask(id, |reply| Control::Delete { id: id2, reply })
            .await
            .unwrap_or(false)
    }

    /// The counters of a session: (offerer, answerer) per stream.
    pub async fn stats(&self, id: &SessionId) -> Option<SessionStats> {
        let id2 = id.clone();
        self.ask(id, |reply| Control::Stats { id: id2, reply })
            .await
            .flatten()
    }
}
