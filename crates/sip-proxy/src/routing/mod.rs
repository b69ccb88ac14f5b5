//! The proxy's side of the routing language: the context a script runs on, and the
//! functions and variables the proxy's modules register (sl, tm, rr, registrar, textops).

mod auth;
mod dialog;
mod location;
mod messages;
mod nathelper;
mod rr;
mod sl;
mod subscribe;

pub(crate) use subscribe::presence_aor;
mod textops;
mod tm;
mod vars;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use registrar::Binding;
use script::{Avps, Diagnostics, Env, Host, Registry, RouteId, Script};
use sip_message::{Message, Protocol};

use crate::context::Prepared;
use crate::core::Core;
use crate::route::RouteEdit;
use crate::suspend::RelayState;
use crate::target::Destination;
use crate::Command;

/// The default routing script (`ferrosip.cfg` at the top of the source tree).
const DEFAULT_SCRIPT: &str = include_str!("../../../../ferrosip.cfg");

/// A compiled routing script for the proxy.
pub type ProxyScript = Script<ProxyEnv>;

/// The proxy's [`Env`]: scripts run on a [`RouteCtx`].
#[derive(Debug)]
pub struct ProxyEnv;

impl Env for ProxyEnv {
    type Ctx<'a> = RouteCtx<'a>;
}

/// Every function and variable the proxy offers scripts.
fn registry() -> &'static Registry<ProxyEnv> {
    static REGISTRY: OnceLock<Registry<ProxyEnv>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::new();
        vars::register(&mut r);
        auth::register(&mut r);
        sl::register(&mut r);
        tm::register(&mut r);
        rr::register(&mut r);
        location::register(&mut r);
        messages::register(&mut r);
        nathelper::register(&mut r);
        dialog::register(&mut r);
        subscribe::register(&mut r);
        textops::register(&mut r);
        r
    })
}

/// Checks and compiles a routing script; errors name `file`, line and column.
pub fn compile(file: &str, source: &str) -> Result<ProxyScript, Diagnostics> {
    Script::compile(file, source, registry())
}

/// [`compile`] for a script that may include files: `load` reads one, given its path
/// (relative paths are joined to the including file's folder).
pub fn compile_with(
    file: &str,
    source: &str,
    load: &dyn Fn(&Path) -> io::Result<String>,
) -> Result<ProxyScript, Diagnostics> {
    Script::compile_with(file, source, registry(), load)
}

/// The default script, compiled.
pub fn default_script() -> Arc<ProxyScript> {
    Arc::new(compile("ferrosip.cfg", DEFAULT_SCRIPT).expect("the default script compiles"))
}

/// Which kind of route is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Request,
    Reply,
    Failure,
    Branch,
}

/// A transaction's script state: flags, AVPs and the routes armed for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxScript {
    pub(crate) flags: u64,
    pub(crate) avps: Avps,
    pub(crate) on_failure: Option<RouteId>,
    pub(crate) on_branch: Option<RouteId>,
    pub(crate) on_reply: Option<RouteId>,
}

/// Changes the script asked for, applied when the request is forwarded (Kamailio's lumps).
#[derive(Debug, Clone, Default)]
pub(crate) struct Edits {
    /// Route processing (`loose_route`, `remove_hf("Route")`).
    pub(crate) route: RouteEdit,
    /// `record_route()`: the interface the request came in on (transport and advertised
    /// address), for the Record-Route entries each branch gets.
    pub(crate) record_route: Option<(Protocol, SocketAddr)>,
    /// Header fields to add, `Name: value`.
    pub(crate) append: Vec<String>,
    /// Names of header fields to remove.
    pub(crate) remove: Vec<String>,
    /// Max-Forwards to write when the request has none (`mf_process_maxfwd_header`).
    pub(crate) max_forwards: Option<u8>,
    /// `fix_nated_contact()`: the first Contact's host and port become this (the source).
    pub(crate) contact: Option<SocketAddr>,
    /// `rtp_relay()`: the transaction's SDP goes through the media relay.
    pub(crate) media: bool,
    /// `dlg_manage()`: the call's dialogs are followed, and recorded when it ends.
    pub(crate) dialog: bool,
    /// `dlg_limit()`: the profiles the call counts under.
    pub(crate) profiles: Vec<String>,
    /// The body the media relay gave back, for the request.
    pub(crate) body: Option<bytes::Bytes>,
}

/// Where the request goes: the Request-URI (with the binding it came from, after
/// `lookup`), the destination URI, and further contacts to fork to.
#[derive(Debug, Clone, Default)]
pub(crate) struct DestSet {
    /// A new Request-URI (`None`: the request's own).
    pub(crate) ruri: Option<String>,
    /// The binding `ruri` was taken from.
    pub(crate) binding: Option<Binding>,
    /// `$du`.
    pub(crate) du: Option<String>,
    /// More contacts from `lookup`.
    pub(crate) branches: Vec<Binding>,
}

/// A transaction's routing state, kept with it for its failure, branch and reply routes.
#[derive(Debug, Clone)]
pub(crate) struct TxRouting {
    pub(crate) script: Arc<ProxyScript>,
    pub(crate) tx: TxScript,
    pub(crate) edits: Edits,
    /// The Request-URI the request was relayed with (`$ru` in a failure route).
    pub(crate) ruri: Option<String>,
    /// Where the request came from and arrived (`$si`, `$Ri` in a failure route).
    pub(crate) src: Destination,
    pub(crate) local: SocketAddr,
}

/// What a failure, branch or reply route decided, for the code that ran it.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Branch groups `t_relay` prepared in a failure route.
    pub(crate) groups: Vec<Vec<Prepared>>,
    /// `t_reply` in a failure route: the final answer.
    pub(crate) reply: Option<(u16, bytes::Bytes)>,
    /// `t_relay` in a failure route waits for these names to be looked up.
    pub(crate) parked: Option<(Vec<crate::Lookup>, Box<RelayState>)>,
}

/// The context of a failure route: the context it runs for and the best reply so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailureInfo<'a> {
    pub(crate) id: u64,
    /// The index the next branch gets.
    pub(crate) next_branch: usize,
    pub(crate) status: u16,
    pub(crate) reason: &'a str,
    /// The caller cancelled the request (`t_is_canceled()`).
    pub(crate) canceled: bool,
    /// The best reply is a timeout of ours (`t_branch_timeout()`).
    pub(crate) timed_out: bool,
}

/// What a script works on while it runs: one message and what it has decided so far.
#[derive(Debug)]
pub struct RouteCtx<'a> {
    pub(crate) core: &'a Core,
    pub(crate) script: &'a Arc<ProxyScript>,
    pub(crate) now: Instant,
    pub(crate) phase: Phase,
    /// The request (request, failure and branch routes) or the reply (reply routes).
    pub(crate) msg: &'a Message,
    /// In a reply route, the transaction's request while the proxy keeps it.
    pub(crate) request: Option<&'a Message>,
    /// The id of the request's context (its server transaction), in a request route.
    pub(crate) txn: Option<u64>,
    /// This run goes on after a DNS answer: a name still unknown does not resolve.
    pub(crate) resumed: bool,
    /// This run goes on after the media relay answered: the request is not asked again.
    pub(crate) media_asked: bool,
    /// Where the message came from, and the local address it arrived at.
    pub(crate) src: Destination,
    pub(crate) local: SocketAddr,
    pub(crate) tx: TxScript,
    pub(crate) edits: Edits,
    pub(crate) set: DestSet,
    pub(crate) failure: Option<FailureInfo<'a>>,
    pub(crate) effects: Effects,
    /// The request was relayed or answered in this run: not a second time.
    pub(crate) stateful: bool,
    /// `$au`: who `www_authorize` / `proxy_authorize` authenticated, and in which header.
    pub(crate) auth_user: Option<String>,
    pub(crate) auth_header: Option<sip_message::HeaderName>,
    /// The last check found right credentials with an expired nonce: challenge `stale=true`.
    pub(crate) auth_stale: bool,
    pub(crate) out: &'a mut Vec<Command>,
    /// The message's To tag, parsed once.
    to_tag: std::cell::OnceCell<Option<&'a str>>,
}

impl<'a> RouteCtx<'a> {
    /// The To tag of the message, as the parser reads it (`has_totag()`, and whether
    /// `loose_route()` checks a key): parsed once.
    pub(crate) fn to_tag(&self) -> Option<&'a str> {
        *self
            .to_tag
            .get_or_init(|| self.msg.to().ok().and_then(|t| t.tag()))
    }

    /// A context for `msg`, with nothing decided yet.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        core: &'a Core,
        script: &'a Arc<ProxyScript>,
        now: Instant,
        phase: Phase,
        msg: &'a Message,
        src: Destination,
        local: SocketAddr,
        out: &'a mut Vec<Command>,
    ) -> RouteCtx<'a> {
        RouteCtx {
            core,
            script,
            now,
            phase,
            msg,
            request: None,
            txn: None,
            resumed: false,
            media_asked: false,
            src,
            local,
            tx: TxScript::default(),
            edits: Edits::default(),
            set: DestSet::default(),
            failure: None,
            effects: Effects::default(),
            stateful: false,
            auth_user: None,
            auth_header: None,
            auth_stale: false,
            out,
            to_tag: std::cell::OnceCell::new(),
        }
    }

    /// The request this run is about (in a reply route, the transaction's, if kept).
    pub(crate) fn request(&self) -> Option<&'a Message> {
        match self.phase {
            Phase::Reply => self.request,
            _ => Some(self.msg),
        }
    }

    /// The Request-URI as the script sees it now.
    pub(crate) fn ruri(&self) -> Option<&str> {
        match &self.set.ruri {
            Some(u) => Some(u),
            None => self.request().and_then(Message::request_uri_str),
        }
    }

    /// `uri` parsed; the Request-URI the message was parsed with when `uri` is its text
    /// (the script hands it back as a string), so it is not parsed again.
    pub(crate) fn uri<'s>(&'s self, uri: &'s str) -> Option<sip_message::Uri<'s>> {
        match self.request() {
            Some(m) if m.request_uri_str().is_some_and(|r| std::ptr::eq(r, uri)) => m.request_uri(),
            _ => sip_message::Uri::parse(uri).ok(),
        }
    }

    /// The Request-URI as the script sees it now, parsed.
    pub(crate) fn ruri_parsed(&self) -> Option<sip_message::Uri<'_>> {
        self.ruri().and_then(|u| self.uri(u))
    }

    /// The transaction's routing state to keep with it, when anything needs it later.
    pub(crate) fn tx_routing(&self) -> Option<Box<TxRouting>> {
        let t = &self.tx;
        let needed = t.on_failure.is_some()
            || t.on_branch.is_some()
            || t.on_reply.is_some()
            || self.script.has_reply_route();
        needed.then(|| {
            Box::new(TxRouting {
                script: self.script.clone(),
                tx: self.tx.clone(),
                edits: self.edits.clone(),
                ruri: self.set.ruri.clone(),
                src: self.src,
                local: self.local,
            })
        })
    }
}

impl Host for RouteCtx<'_> {
    fn avps(&mut self) -> &mut Avps {
        &mut self.tx.avps
    }

    fn avps_ref(&self) -> &Avps {
        &self.tx.avps
    }

    fn flags(&mut self) -> &mut u64 {
        &mut self.tx.flags
    }

    fn flags_ref(&self) -> u64 {
        self.tx.flags
    }

    fn is_myself(&self, uri: &str) -> bool {
        match self.uri(uri) {
            Some(u) => self.core.is_myself_uri(&u),
            None => self.core.config().is_local_domain(uri),
        }
    }
}
