//! Lookups for the core (`Command::Resolve`, RFC 3263 in [`crate::locate`]): one per
//! lookup however many requests wait for it, and a cap on the lookups in flight. A request
//! whose lookup was refused goes on at once, and the core answers it 503.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sip_proxy::{Command, Core, Lookup, Resume};

/// Most lookups at once; more are refused (a flood of requests to names nobody serves
/// must not grow without bound).
const MAX_LOOKUPS: usize = 256;

/// A request waiting for the names it needs.
struct Waiter {
    remaining: AtomicUsize,
    then: Resume,
}

/// The lookups in flight, with who waits for each.
pub(crate) struct Lookups {
    resolver: hickory_resolver::TokioResolver,
    waiting: Mutex<HashMap<Lookup, Vec<Arc<Waiter>>>>,
}

impl Lookups {
    /// Lookups asking `servers` (IP and port), or the system's resolvers when there are
    /// none.
    pub(crate) fn new(servers: &[SocketAddr]) -> Lookups {
        Lookups {
            resolver: resolver(servers),
            waiting: Mutex::default(),
        }
    }

    /// Looks `hosts` up (each once, whoever else waits for it) and calls `done` with the
    /// commands of the core once the last of them is known. Lookups are spawned on `runtime`; those over the
    /// cap are refused at once.
    pub(crate) fn resolve(
        self: &Arc<Self>,
        core: &Arc<Core>,
        (hosts, then): (Vec<Lookup>, Resume),
        runtime: &tokio::runtime::Handle,
        done: impl Fn(Vec<Command>) + Clone + Send + 'static,
    ) {
        let waiter = Arc::new(Waiter {
            remaining: AtomicUsize::new(hosts.len()),
            then,
        });
        let mut refused = 0;
        for host in hosts {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(list) = waiting.get_mut(&host) {
                list.push(waiter.clone());
                continue;
            }
            if waiting.len() >= MAX_LOOKUPS {
                tracing::warn!(host = %host.host, "too many DNS lookups in flight: refused");
                refused += 1;
                continue;
            }
            waiting.insert(host.clone(), vec![waiter.clone()]);
            drop(waiting);
            let (this, core, done) = (self.clone(), core.clone(), done.clone());
            runtime.spawn(async move { this.look_up(&core, host, done).await });
        }
        if refused > 0 && waiter.remaining.fetch_sub(refused, Ordering::AcqRel) == refused {
            done(core.resume(Instant::now(), waiter.then));
        }
    }

    async fn look_up(&self, core: &Core, host: Lookup, done: impl Fn(Vec<Command>)) {
        let (found, ttl) = crate::locate::locate(&self.resolver, &host).await;
        core.dns_answer(Instant::now(), &host, found, ttl);
        let waiters = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&host)
            .unwrap_or_default();
        for w in waiters {
            if w.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                done(core.resume(Instant::now(), w.then));
            }
        }
    }
}

/// A resolver asking `servers` over UDP and TCP, or the system's (`/etc/resolv.conf`,
/// `/etc/hosts`) when there are none; without a usable resolv.conf, the hosts file alone.
fn resolver(servers: &[SocketAddr]) -> hickory_resolver::TokioResolver {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::name_server::TokioConnectionProvider;
    use hickory_resolver::proto::xfer::Protocol;
    // Both families (hickory's default, IPv4 then IPv6, asks for AAAA only without A): the
    // core keeps those it has an interface for, and a dual-stack peer is reached over
    // either.
    let both = |mut b: hickory_resolver::ResolverBuilder<TokioConnectionProvider>| {
        b.options_mut().ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        b.build()
    };
    let config = if servers.is_empty() {
        match hickory_resolver::TokioResolver::builder_tokio() {
            Ok(b) => return both(b),
            Err(e) => {
                tracing::warn!(error = %e, "no system DNS configuration: only /etc/hosts resolves");
                ResolverConfig::new()
            }
        }
    } else {
        let mut config = ResolverConfig::new();
        for &server in servers {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                config.add_name_server(NameServerConfig::new(server, protocol));
            }
        }
        config
    };
    both(hickory_resolver::TokioResolver::builder_with_config(
        config,
        TokioConnectionProvider::default(),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use sip_message::{Message, Protocol};
    use sip_proxy::Destination;

    use super::*;

    /// A core that relays for 192.0.2.1, a trusted peer.
    fn core() -> Arc<Core> {
        let mut cfg =
            crate::cmd::serve::proxy_config(&crate::config::Config::default(), &[]).unwrap();
        cfg.trusted = vec!["192.0.2.1/32".parse().unwrap()];
        Arc::new(Core::new(cfg, Arc::new(registrar::Location::new())))
    }

    /// A request parked until `gw{n}.example` is known.
    fn waiting_request(core: &Core, n: usize) -> Resume {
        let text = format!(
            "OPTIONS sip:x@gw{n}.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKw{n}\r\n\
From: <sip:a@192.0.2.1>;tag=a\r\nTo: <sip:x@gw{n}.example>\r\nCall-ID: w{n}\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let msg = Message::parse(text.into_bytes()).unwrap();
        let src = Destination::new(Protocol::Udp, "192.0.2.1:5060".parse().unwrap());
        core.handle_message(Instant::now(), msg, src)
            .into_iter()
            .find_map(|c| match c {
                Command::Resolve { then, .. } => Some(then),
                _ => None,
            })
            .expect("a lookup")
    }

    #[test]
    fn a_name_is_looked_up_once_for_all_who_wait_and_the_cap_refuses_more() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (core, lookups) = (core(), Arc::new(Lookups::new(&[])));
        let name = |host: &str| Lookup {
            host: host.into(),
            port: Some(5060),
            transport: None,
            secure: false,
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let done = {
            let calls = calls.clone();
            move |_: Vec<Command>| {
                calls.fetch_add(1, Ordering::SeqCst);
            }
        };
        // Three requests wait for one name: one lookup (spawned, not run yet).
        for n in 0..3 {
            let then = waiting_request(&core, n);
            let hosts = vec![name("localhost")];
            lookups.resolve(&core, (hosts, then), rt.handle(), done.clone());
        }
        assert_eq!(lookups.waiting.lock().unwrap()[&name("localhost")].len(), 3);
        // With the cap full, a new name is refused and its request goes on at once.
        for i in 1..MAX_LOOKUPS {
            lookups
                .waiting
                .lock()
                .unwrap()
                .insert(name(&format!("busy{i}")), Vec::new());
        }
        let then = waiting_request(&core, 9);
        let other = vec![name("other.example")];
        lookups.resolve(&core, (other, then), rt.handle(), done.clone());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "refused, resumed at once");
        // The three are resumed once the lookup ends.
        rt.block_on(async {
            for _ in 0..200 {
                if calls.load(Ordering::SeqCst) == 4 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(!lookups
            .waiting
            .lock()
            .unwrap()
            .contains_key(&name("localhost")));
    }
}
