//! The followed calls (`dlg_manage()`) in the server: each second their records go to the
//! metrics, the JSON lines file, the log when asked, and the store, together with the
//! changes to the dialogs in progress (written in order by one writer, retried when the
//! database fails); at start the dialogs the store kept are followed again, so that a
//! restart or a crash loses no call.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use dialog::{Cdr, Change};
use sip_proxy::{CallsTick, Core};
use store::Store;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::metrics::Metrics;

/// Most call records kept for a database that keeps failing; past it the oldest go
/// (counted in `ferrosip_call_records_not_stored_total`).
const MAX_UNWRITTEN: usize = 100_000;

/// A second's worth of calls for the store.
struct Batch {
    records: Vec<Cdr>,
    changes: Vec<Change>,
}

/// A syslog connection (RFC 3164 over a local socket).
type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// Sends lines to syslog from a thread of its own (a slow syslog daemon holds up nothing
/// else), connecting again once when a send fails (the daemon restarted).
fn syslog_thread(
    mut logger: Syslog,
    facility: String,
    path: std::path::PathBuf,
) -> std::sync::mpsc::Sender<String> {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in rx {
            if logger.info(&line).is_ok() {
                continue;
            }
            let again = open_syslog(&facility, &path).and_then(|mut l| {
                l.info(&line).map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(l)
            });
            match again {
                Ok(l) => logger = l,
                Err(e) => tracing::error!(error = %e, "a call record not sent to syslog"),
            }
        }
    });
    tx
}

/// Where the records of the followed calls go.
pub(crate) struct Accounting {
    json_lines: Option<std::fs::File>,
    /// Each record also to syslog, as a JSON object (through [`syslog_thread`]).
    syslog: Option<std::sync::mpsc::Sender<String>>,
    /// Records are logged too.
    log: bool,
    metrics: Arc<Metrics>,
    writer: UnboundedSender<Batch>,
    written: tokio::task::JoinHandle<()>,
}

impl Accounting {
    /// Opens the JSON lines file, if one is configured, and starts the writer.
    pub(crate) fn start(
        cfg: &crate::config::Accounting,
        store: &Store,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Accounting> {
        let json_lines = match cfg.json_lines.as_deref() {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| {
                        format!("accounting.json_lines: cannot open {}", path.display())
                    })?,
            ),
            None => None,
        };
        let syslog = match &cfg.syslog {
            Some(facility) => {
                let logger = open_syslog(facility, &cfg.syslog_socket)?;
                let path = cfg.syslog_socket.clone();
                Some(syslog_thread(logger, facility.clone(), path))
            }
            None => None,
        };
        let (writer, batches) = unbounded_channel();
        let written = tokio::spawn(write(store.clone(), metrics.clone(), batches));
        Ok(Accounting {
            json_lines,
            syslog,
            log: cfg.log,
            metrics,
            writer,
            written,
        })
    }

    /// What a second of calls left, but for the BYEs (the caller sends those): records
    /// logged, counted, appended and queued for the store with the dialogs' changes.
    pub(crate) fn take(&mut self, tick: CallsTick) {
        let CallsTick {
            records, changes, ..
        } = tick;
        for r in &records {
            if self.log {
                log_record(r);
            }
            self.metrics.call_recorded(r.missed());
        }
        if let Some(file) = self.json_lines.as_mut().filter(|_| !records.is_empty()) {
            append_json_lines(file, &records);
        }
        if let Some(syslog) = &self.syslog {
            for r in &records {
                let _ = syslog.send(json(r));
            }
        }
        if records.is_empty() && changes.is_empty() {
            return;
        }
        if self.writer.send(Batch { records, changes }).is_err() {
            tracing::error!("the call record writer has stopped");
        }
    }

    /// Takes the last records and waits (5 s at most) for the writer to store them all.
    pub(crate) async fn finish(mut self, core: &Core) {
        let mut last = core.last_calls(Instant::now());
        last.commands.clear();
        self.take(last);
        drop(self.writer);
        let wait = tokio::time::timeout(std::time::Duration::from_secs(5), self.written);
        if wait.await.is_err() {
            tracing::error!("call records still unwritten at exit");
        }
    }
}

/// Follows again the dialogs the store kept from before a restart.
pub(crate) async fn restore(core: &Core, store: &Store) -> anyhow::Result<()> {
    let saved = store
        .dialogs()
        .await
        .context("loading the calls in progress")?;
    if saved.is_empty() {
        return Ok(());
    }
    let (stored, taken) = (saved.len(), core.restore_calls(saved));
    tracing::info!(stored, taken, "calls in progress loaded");
    Ok(())
}

/// Writes the batches in order; a batch the database refuses waits for the next one and
/// is tried again with it.
async fn write(store: Store, metrics: Arc<Metrics>, mut batches: UnboundedReceiver<Batch>) {
    let mut pending = Batch {
        records: Vec::new(),
        changes: Vec::new(),
    };
    while let Some(b) = batches.recv().await {
        pending.records.extend(b.records);
        pending.changes.extend(b.changes);
        while let Ok(b) = batches.try_recv() {
            pending.records.extend(b.records);
            pending.changes.extend(b.changes);
        }
        match store.record_calls(&pending.records, &pending.changes).await {
            Ok(()) => {
                pending.records.clear();
                pending.changes.clear();
            }
            Err(e) => {
                let n = pending.records.len();
                tracing::error!(error = %e, records = n, "call records not stored yet");
                if n > MAX_UNWRITTEN {
                    metrics.calls_not_stored(n - MAX_UNWRITTEN);
                    pending.records.drain(..n - MAX_UNWRITTEN);
                }
                if pending.changes.len() > MAX_UNWRITTEN {
                    let over = pending.changes.len() - MAX_UNWRITTEN;
                    pending.changes.drain(..over);
                }
            }
        }
    }
    if !pending.records.is_empty() {
        metrics.calls_not_stored(pending.records.len());
        tracing::error!(records = pending.records.len(), "call records not stored");
    }
}

/// A call detail record, as a log line of its own (`ferrosip::cdr`).
fn log_record(r: &Cdr) {
    tracing::info!(
        target: "ferrosip::cdr",
        call_id = %r.call_id,
        caller = %r.caller,
        dialled = %r.dialled,
        reached = r.reached.as_deref().unwrap_or(""),
        started_ms = r.started_ms,
        answered_ms = r.answered_ms.unwrap_or(0),
        ended_ms = r.ended_ms,
        duration_ms = r.duration_ms(),
        status = r.status,
        ending = ?r.ending,
        missed = r.missed(),
        "call record"
    );
}

/// Connects to the syslog socket `path` with `facility` (`local0`…); the error names the
/// setting.
fn open_syslog(facility: &str, path: &std::path::Path) -> anyhow::Result<Syslog> {
    let facility = facility.parse().map_err(|()| {
        anyhow::anyhow!(
            "accounting.syslog: {facility:?} is no syslog facility (local0..local7, user, daemon…)"
        )
    })?;
    let formatter = syslog::Formatter3164 {
        facility,
        hostname: None,
        process: "ferrosip".into(),
        pid: std::process::id(),
    };
    syslog::unix_custom(formatter, path).map_err(|e| {
        anyhow::anyhow!(
            "accounting.syslog: cannot reach syslog at {}: {e}",
            path.display()
        )
    })
}

/// A call record as one JSON object (as `ferrosip cdr list --json` prints it).
fn json(r: &Cdr) -> String {
    let info = crate::manage::CdrInfo::from(r.clone());
    serde_json::to_string(&info).unwrap_or_default()
}

/// Appends call records to `file`, one JSON object per line.
fn append_json_lines(file: &mut std::fs::File, records: &[Cdr]) {
    use std::io::Write;
    let mut text = String::new();
    for r in records {
        text.push_str(&json(r));
        text.push('\n');
    }
    if let Err(e) = file.write_all(text.as_bytes()) {
        tracing::error!(error = %e, "call records not written to accounting.json_lines");
    }
}
