//! One thread's share of the relay: its sessions, its sockets, its packets.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::rc::Rc;
use std::time::{Duration, Instant};

use relay::{PortPool, Relay, SessionId, SessionPorts, SessionStats, Side, StreamPorts, Totals};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// What the rest of the server asks of a shard.
#[derive(Debug)]
pub(crate) enum Control {
    /// An SDP of the party with tag `sender` (the other one's: `other`); a session is
    /// made for it when `create` and there is none.
    Update {
        call_id: String,
        sender: String,
        other: String,
        media: Vec<Option<SocketAddr>>,
        from: Option<IpAddr>,
        create: bool,
        reply: oneshot::Sender<Option<(Side, SessionPorts)>>,
    },
    /// Ends the session of the dialog between the parties with these tags.
    Delete {
        call_id: String,
        tags: (String, String),
        reply: oneshot::Sender<bool>,
    },
    /// The shard's counters.
    Totals { reply: oneshot::Sender<Totals> },
    /// The shard's sessions, with their counters.
    List {
        reply: oneshot::Sender<Vec<(SessionId, SessionStats)>>,
    },
}

/// Shard `i` of `n`'s ports: the pairs whose RTP port over 2 is `i` modulo `n`, in a
/// random order (a stranger cannot tell which port the next call gets, to spray it first).
pub(crate) fn ports_of(range: &RangeInclusive<u16>, i: usize, n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = relay::pairs(range)
        .filter(|p| usize::from(p / 2) % n == i)
        .collect();
    // Fisher–Yates, with std's per-process random hash keys as the source.
    let random = std::collections::hash_map::RandomState::new();
    for k in (1..ports.len()).rev() {
        let j = (std::hash::BuildHasher::hash_one(&random, k) % (k as u64 + 1)) as usize;
        ports.swap(k, j);
    }
    ports
}

/// A shard's state, owned by its thread.
struct State {
    relay: Relay,
    bind: IpAddr,
    /// The sockets of the ports in use (RTP and RTCP), and their receive tasks.
    sockets: HashMap<u16, (Rc<UdpSocket>, JoinHandle<()>)>,
    /// Sockets whose receive task was stopped but may not be gone yet (it holds the socket,
    /// bound until then): a port of theirs wanted again takes its socket back.
    closing: Vec<(u16, Rc<UdpSocket>, JoinHandle<()>)>,
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
            closing: Vec::new(),
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
        Control::Update {
            call_id,
            sender,
            other,
            media,
            from,
            create,
            reply,
        } => {
            let found = state.borrow().relay.side_of(&call_id, &sender, &other);
            let updated = match found {
                Some((id, Side::Answerer)) => {
                    let answered =
                        state
                            .borrow_mut()
                            .relay
                            .answer(Instant::now(), &id, &media, from, &sender);
                    // A stream its side added has new ports to bind.
                    if let Some(ports) = &answered {
                        if open(state, ports).is_err() {
                            tracing::warn!(call_id = %id.call_id, "media relay: a new stream's ports cannot be bound");
                        }
                    }
                    answered.map(|p| (Side::Answerer, p))
                }
                Some((id, Side::Offerer)) => offer(state, &id, &media, from),
                None if create => {
                    let id = SessionId {
                        call_id,
                        from_tag: sender,
                    };
                    offer(state, &id, &media, from)
                }
                None => None,
            };
            let _ = reply.send(updated);
        }
        Control::Delete {
            call_id,
            tags,
            reply,
        } => {
            let mut s = state.borrow_mut();
            let found = s.relay.delete_dialog(&call_id, &tags.0, &tags.1);
            s.close_unused();
            let _ = reply.send(found);
        }
        Control::Totals { reply } => {
            let _ = reply.send(state.borrow().relay.totals());
        }
        Control::List { reply } => {
            let _ = reply.send(state.borrow().relay.list());
        }
    }
}

/// An offer from the offerer's side of session `id` (made if new), its ports bound. A pair
/// another program holds a port of goes to the end of the pool and the offer is made again
/// with others, a bounded number of times (never a loop on "Address already in use"); a failed offer undoes only the streams it
/// added (a re-offer's call goes on). `None` when no ports are left or can be bound.
fn offer(
    state: &Rc<RefCell<State>>,
    id: &SessionId,
    media: &[Option<SocketAddr>],
    from: Option<IpAddr>,
) -> Option<(Side, SessionPorts)> {
    let before = state.borrow().relay.streams(id);
    for _ in 0..8 {
        let offered = state
            .borrow_mut()
            .relay
            .offer(Instant::now(), id, media, from);
        let Some(offered) = offered else { break };
        match open(state, &offered) {
            Ok(()) => return Some((Side::Offerer, offered)),
            Err(busy) => {
                let mut s = state.borrow_mut();
                s.relay.undo_offer(id, &before);
                s.close_unused();
                if let Unbound::Failed = busy {
                    break;
                }
            }
        }
    }
    let mut s = state.borrow_mut();
    s.relay.undo_offer(id, &before);
    s.close_unused();
    tracing::warn!(call_id = %id.call_id, available = s.relay.ports_available(), "media relay: no ports for the offer");
    None
}

/// Why ports could not be bound.
enum Unbound {
    /// Another program holds a port of the pair (Linux hands out ephemeral ports from
    /// 32768 up, inside the default range): the pair goes to the end of the pool, tried
    /// again when its turn comes round, and the offer takes others.
    Taken,
    /// Another failure, which another port would not cure.
    Failed,
}

/// Binds the sockets of `ports` (RTP and RTCP of each side) not bound yet, each with its
/// receive task.
fn open(state: &Rc<RefCell<State>>, ports: &[Option<StreamPorts>]) -> Result<(), Unbound> {
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
        if let Some(i) = s.closing.iter().position(|c| c.0 == port) {
            // Still ours: its socket serves again, with a receive task of its own.
            let (_, sock, _) = s.closing.swap_remove(i);
            let task = tokio::task::spawn_local(receive(state.clone(), sock.clone(), port));
            s.sockets.insert(port, (sock, task));
            continue;
        }
        let sock = std::net::UdpSocket::bind((s.bind, port))
            .and_then(|sock| sock.set_nonblocking(true).map(|()| sock))
            .and_then(UdpSocket::from_std);
        let sock = match sock {
            Ok(sock) => Rc::new(sock),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::debug!(port, error = %e, "media relay: the port is taken; another pair");
                return Err(Unbound::Taken);
            }
            Err(e) => {
                tracing::warn!(port, error = %e, "media relay: cannot bind the port");
                return Err(Unbound::Failed);
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
        let unused: Vec<u16> = self
            .sockets
            .keys()
            .copied()
            .filter(|&port| !relay.holds_port(port & !1))
            .collect();
        for port in unused {
            if let Some((sock, task)) = self.sockets.remove(&port) {
                task.abort();
                self.closing.push((port, sock, task));
            }
        }
        // A stopped task is gone: its socket closes with our last reference.
        self.closing.retain(|(_, _, task)| !task.is_finished());
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
                // An IPv4 party is reached from a dual-stack socket at its mapped address.
                let to = match (s.bind, f.to) {
                    (IpAddr::V6(_), SocketAddr::V4(v4)) => {
                        SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
                    }
                    (_, to) => to,
                };
                // UDP: a full send buffer drops the packet, as the network would.
                let _ = out.try_send_to(&buf[..n], to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shards_ports_are_its_share_in_a_random_order() {
        let range = 30000..=31999;
        let (a, b) = (super::ports_of(&range, 1, 2), super::ports_of(&range, 1, 2));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        let share: Vec<u16> = relay::pairs(&range).filter(|p| (p / 2) % 2 == 1).collect();
        assert_eq!(sorted, share);
        assert_ne!(a, b, "two shufflings of 500 pairs");
        assert_ne!(a, share, "not in order");
    }
}
