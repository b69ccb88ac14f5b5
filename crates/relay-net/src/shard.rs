//! One thread's share of the relay: its sessions, its sockets, its packets.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::rc::Rc;
use std::time::{Duration, Instant};

use relay::{PortPool, Relay, SessionId, SessionPorts, SessionStats, StreamPorts};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// What the rest of the server asks of a shard.
#[derive(Debug)]
pub(crate) enum Control {
    Offer {
        id: SessionId,
        media: Vec<Option<SocketAddr>>,
        from: Option<IpAddr>,
        reply: oneshot::Sender<Option<SessionPorts>>,
    },
    Answer {
        id: SessionId,
        media: Vec<Option<SocketAddr>>,
        from: Option<IpAddr>,
        reply: oneshot::Sender<Option<SessionPorts>>,
    },
    Delete {
        id: SessionId,
        reply: oneshot::Sender<bool>,
    },
    Stats {
        id: SessionId,
        reply: oneshot::Sender<Option<SessionStats>>,
    },
}

/// Shard `i` of `n`'s ports: the pairs whose RTP port over 2 is `i` modulo `n`.
pub(crate) fn ports_of(range: &RangeInclusive<u16>, i: usize, n: usize) -> Vec<u16> {
    relay::pairs(range)
        .filter(|p| usize::from(p / 2) % n == i)
        .collect()
}

/// A shard's state, owned by its thread.
struct State {
    relay: Relay,
    bind: IpAddr,
    /// The sockets of the ports in use (RTP and RTCP), and their receive tasks.
    sockets: HashMap<u16, (Rc<UdpSocket>, JoinHandle<()>)>,
}

/// Runs a shard until its channel closes.
pub(crate) fn run(
    bind: IpAddr,
    ports: Vec<u16>,
    timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Control>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return tracing::error!(error = %e, "media relay thread failed to start"),
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let state = Rc::new(RefCell::new(State {
            relay: Relay::new(PortPool::from_ports(ports), timeout),
            bind,
            sockets: HashMap::new(),
        }));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => control(&state, msg),
                    None => break,
                },
                _ = tick.tick() => {
                    let mut s = state.borrow_mut();
                    for id in s.relay.expire(Instant::now()) {
                        tracing::info!(call_id = %id.call_id, "media timeout: relay session ended");
                    }
                    s.close_unused();
                }
            }
        }
    });
}

fn control(state: &Rc<RefCell<State>>, msg: Control) {
    match msg {
        Control::Offer {
            id,
            media,
            from,
            reply,
        } => {
            // A port another program holds is retired and the offer made again, a bounded
            // number of times (never a loop on "Address already in use").
            let mut ports = None;
            // What a failed offer undoes: only the streams it added (a re-offer's call goes on).
            let before = state.borrow().relay.streams(&id);
            for _ in 0..8 {
                let offered = state
                    .borrow_mut()
                    .relay
                    .offer(Instant::now(), &id, &media, from);
                let Some(offered) = offered else { break };
                match open(state, &offered) {
                    Ok(()) => {
                        ports = Some(offered);
                        break;
                    }
                    Err(busy) => {
                        let mut s = state.borrow_mut();
                        s.relay.undo_offer(&id, &before);
                        s.close_unused();
                        match busy {
                            Some(port) => s.relay.retire_port(port),
                            None => break,
                        }
                    }
                }
            }
            if ports.is_none() {
                let mut s = state.borrow_mut();
                s.relay.undo_offer(&id, &before);
                s.close_unused();
                tracing::warn!(call_id = %id.call_id, available = s.relay.ports_available(), "media relay: no ports for the offer");
            }
            let _ = reply.send(ports);
        }
        Control::Answer {
            id,
            media,
            from,
            reply,
        } => {
            let _ = reply.send(state.borrow_mut().relay.answer(&id, &media, from));
        }
        Control::Delete { id, reply } => {
            let mut s = state.borrow_mut();
            let found = s.relay.delete(&id);
            s.close_unused();
            let _ = reply.send(found);
        }
        Control::Stats { id, reply } => {
            let _ = reply.send(state.borrow().relay.stats(&id));
        }
    }
}

/// Binds the sockets of `ports` (RTP and RTCP of each side) not bound yet, each with its
/// receive task. The error: the RTP port of a pair another program holds, or `None` for
/// another failure (which another port would not cure).
fn open(state: &Rc<RefCell<State>>, ports: &[Option<StreamPorts>]) -> Result<(), Option<u16>> {
    let wanted = ports
        .iter()
        .flatten()
        .flat_map(|p| [p.for_offerer, p.for_answerer])
        .flat_map(|p| [p, p + 1]);
    for port in wanted {
        let mut s = state.borrow_mut();
        if s.sockets.contains_key(&port) {
            continue;
        }
        let sock = std::net::UdpSocket::bind((s.bind, port))
            .and_then(|sock| sock.set_nonblocking(true).map(|()| sock))
            .and_then(UdpSocket::from_std);
        let sock = match sock {
            Ok(sock) => Rc::new(sock),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!(port, error = %e, "media relay: the port is taken; not used again");
                return Err(Some(port & !1));
            }
            Err(e) => {
                tracing::warn!(port, error = %e, "media relay: cannot bind the port");
                return Err(None);
            }
        };
        let task = tokio::task::spawn_local(receive(state.clone(), sock.clone(), port));
        s.sockets.insert(port, (sock, task));
    }
    Ok(())
}

impl State {
    /// Closes the sockets of ports no session holds any more.
    fn close_unused(&mut self) {
        let relay = &self.relay;
        self.sockets.retain(|&port, (_, task)| {
            let used = relay.holds_port(port & !1);
            if !used {
                task.abort();
            }
            used
        });
    }
}

/// Receives on one port and relays each packet, until the port is closed.
async fn receive(state: Rc<RefCell<State>>, sock: Rc<UdpSocket>, port: u16) {
    let mut buf = [0u8; 2048];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(_) => continue,
        };
        let s = &mut *state.borrow_mut();
        if let Ok(f) = s.relay.on_packet(Instant::now(), port, src, &buf[..n]) {
            if let Some((out, _)) = s.sockets.get(&f.from) {
                // UDP: a full send buffer drops the packet, as the network would.
                let _ = out.try_send_to(&buf[..n], f.to);
            }
        }
    }
}
