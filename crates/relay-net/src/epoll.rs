//! The portable backend: a tokio runtime on the shard's thread, with a task per socket
//! that hands each packet to the shard and sends it on. Used where io_uring is not
//! available (an old kernel, a container that forbids it) or not wanted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::shard::{self, Control, Shard, Sockets};

/// A port's socket, with its receive task once spawned.
type Open = (Rc<UdpSocket>, Option<JoinHandle<()>>);

/// The sockets of the ports in use, each with its receive task once spawned.
#[derive(Default)]
pub(crate) struct TaskSockets {
    /// Looked up per packet: hashed fast, the ports are ours.
    open: HashMap<u16, Open, ahash::RandomState>,
    /// Sockets whose receive task was stopped but may not be gone yet (it holds the socket,
    /// bound until then): a port of theirs wanted again takes its socket back.
    closing: Vec<(u16, Rc<UdpSocket>, JoinHandle<()>)>,
}

impl Sockets for TaskSockets {
    fn has(&self, port: u16) -> bool {
        self.open.contains_key(&port)
    }

    fn open(&mut self, bind: IpAddr, port: u16) -> std::io::Result<()> {
        let sock = match self.closing.iter().position(|c| c.0 == port) {
            Some(i) => self.closing.swap_remove(i).1,
            None => Rc::new(UdpSocket::from_std(shard::bind(bind, port)?)?),
        };
        // Its task is spawned once the shard is free ([`spawn_pending`]).
        self.open.insert(port, (sock, None));
        Ok(())
    }

    fn retain(&mut self, keep: impl Fn(u16) -> bool) {
        let unused: Vec<u16> = self.open.keys().copied().filter(|&p| !keep(p)).collect();
        for port in unused {
            // A socket with no task yet closes here; one with a task once it stops.
            if let Some((sock, Some(task))) = self.open.remove(&port) {
                task.abort();
                self.closing.push((port, sock, task));
            }
        }
        // A stopped task is gone: its socket closes with our last reference.
        self.closing.retain(|(_, _, task)| !task.is_finished());
    }

    fn send_now(&mut self, port: u16, data: &[u8], to: SocketAddr) {
        if let Some((sock, _)) = self.open.get(&port) {
            let _ = sock.try_send_to(data, to);
        }
    }
}

type State = Rc<RefCell<Shard<TaskSockets>>>;

/// Runs a shard until its channel closes.
pub(crate) fn run(
    bind: IpAddr,
    ports: Vec<u16>,
    limits: shard::Limits,
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
        let state = Rc::new(RefCell::new(Shard::new(
            bind,
            ports,
            limits,
            TaskSockets::default(),
        )));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut legs = tokio::time::interval(shard::LEG_TICK);
        legs.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => {
                        state.borrow_mut().control(msg);
                        spawn_pending(&state);
                    }
                    None => break,
                },
                _ = tick.tick() => state.borrow_mut().tick(),
                _ = legs.tick() => {
                    let s = &mut *state.borrow_mut();
                    if s.has_legs() {
                        s.timers(Instant::now());
                    }
                }
            }
        }
    });
}

/// Gives each new socket its receive task.
fn spawn_pending(state: &State) {
    let s = &mut *state.borrow_mut();
    for (&port, (sock, task)) in s.sockets.open.iter_mut() {
        if task.is_none() {
            *task = Some(tokio::task::spawn_local(receive(
                state.clone(),
                sock.clone(),
                port,
            )));
        }
    }
}

/// Receives on one port and relays each packet, until the port is closed.
async fn receive(state: State, sock: Rc<UdpSocket>, port: u16) {
    // One byte more than a packet may have: a bigger one is seen, and dropped.
    let mut buf = [0u8; shard::MAX_PACKET + 1];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok((n, _)) if n > shard::MAX_PACKET => continue,
            Ok(r) => r,
            Err(_) => continue,
        };
        let s = &mut *state.borrow_mut();
        if let Some((from, to)) = s.forward(Instant::now(), port, src, &buf[..n]) {
            if let Some((out, _)) = s.sockets.open.get(&from) {
                // UDP: a full send buffer drops the packet, as the network would.
                let data = s.relay.rewritten().unwrap_or(&buf[..n]);
                let _ = out.try_send_to(data, to);
            }
        }
    }
}
