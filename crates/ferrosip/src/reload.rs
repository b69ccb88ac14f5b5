//! Reloading a running server, on SIGHUP and through the API alike: its directory
//! (subscribers, domains, aliases) from the database, its routing script, then its TLS
//! certificates. Each reload is logged with what it loaded.

use std::path::PathBuf;
use std::sync::Arc;

use sip_proxy::Core;
use store::{Store, StoreError};

use crate::manage::{load_directory, Directory, Live};
use crate::metrics::Metrics;
use crate::script::load_script;

/// What a reload needs.
pub(crate) struct Reloader {
    pub(crate) live: Live,
    pub(crate) store: Store,
    pub(crate) metrics: Arc<Metrics>,
    /// The configured script; the built-in default without one.
    pub(crate) script: Option<PathBuf>,
    /// The TLS settings, and the files they are read from.
    pub(crate) tls: Option<(transport::Tls, transport::TlsFiles)>,
}

/// Why a reload failed.
pub(crate) enum Refused {
    /// The database failed; nothing was reloaded.
    Directory(StoreError),
    /// The script has errors; the old one keeps running (the directory was reloaded).
    Script(String),
    /// The certificates cannot be read; the old ones keep serving (the directory and the
    /// script were reloaded).
    Tls(String),
}

impl Reloader {
    /// Reloads the certificates, the directory and the script, each whatever became of the
    /// others (a renewed certificate is not held back by a script with errors); what was
    /// loaded, as logged, or the first refusal.
    pub(crate) async fn reload(&self) -> Result<String, Refused> {
        let tls = self.reload_tls();
        let core = &self.live.core;
        let directory = load_directory(core, &self.store).await.map_err(|e| {
            tracing::error!("subscribers, domains and aliases not reloaded: {e}");
            Refused::Directory(e)
        })?;
        log_directory(core, &directory, "directory reloaded");
        let name = self.script_name();
        let result = load_script(self.script.as_deref());
        self.metrics.reloaded(result.is_ok());
        match result {
            Ok(script) => {
                core.reload(script);
                tracing::info!(script = %name, "routing script reloaded");
            }
            Err(e) => {
                let e = format!("{e:#}");
                tracing::error!("routing script not reloaded, the old one keeps running:\n{e}");
                return Err(Refused::Script(e));
            }
        }
        let what = format!("reloaded {directory} and the routing script {name}");
        match tls? {
            true => Ok(what + " and the TLS certificates"),
            false => Ok(what),
        }
    }

    /// Reads the TLS certificates again, when there are any (true then).
    fn reload_tls(&self) -> Result<bool, Refused> {
        let Some((tls, files)) = &self.tls else {
            return Ok(false);
        };
        match tls.reload(files) {
            Ok(()) => {
                tracing::info!("TLS certificates reloaded");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificates not reloaded, the old ones keep serving");
                Err(Refused::Tls(e.to_string()))
            }
        }
    }

    /// Reloads on each SIGHUP, for as long as the server runs.
    pub(crate) async fn on_sighup(self) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            let _ = self.reload().await;
        }
    }

    fn script_name(&self) -> String {
        self.script
            .as_deref()
            .map_or("(the built-in default)".into(), |p| p.display().to_string())
    }
}

/// Logs the directory the server now holds, and warns of domains anyone may register in.
pub(crate) fn log_directory(core: &Core, directory: &Directory, what: &str) {
    tracing::info!(
        subscribers = directory.subscribers,
        domains = directory.domains,
        aliases = directory.aliases,
        hosted = ?core.config().hosted.list(),
        "{what}"
    );
    let open = core.open_domains();
    if !open.is_empty() {
        tracing::warn!(
            domains = ?open,
            "no subscribers yet: anyone may register in these domains (add one with `ferrosip user add`)"
        );
    }
}
