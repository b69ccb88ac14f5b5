//! The management API: JSON over HTTP (axum), each request with the bearer token. The
//! endpoints are listed in docs/api.md.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use store::Store;

use crate::manage::{self, ErrorKind, Live, Op, OpError, Reply};
use crate::metrics::{Metrics, Snapshot};
use crate::reload::{Refused, Reloader};

/// What the handlers share.
pub(crate) struct ApiState {
    pub(crate) store: Store,
    pub(crate) live: Live,
    pub(crate) token: String,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) reloader: Reloader,
    /// The in-process media relay, when it runs.
    pub(crate) media: Option<relay_net::MediaRelay>,
}

type Shared = State<Arc<ApiState>>;

/// The API's routes.
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/users", get(user_list).post(user_add))
        .route("/api/users/{address}", get(user_show).delete(user_rm))
        .route("/api/users/{address}/password", put(user_passwd))
        .route("/api/domains", get(domain_list).post(domain_add))
        .route("/api/domains/{domain}", axum::routing::delete(domain_rm))
        .route("/api/aliases", get(alias_list).post(alias_add))
        .route("/api/aliases/{alias}", axum::routing::delete(alias_rm))
        .route("/api/locations", get(location_all))
        .route(
            "/api/locations/{aor}",
            get(location_one).delete(location_rm),
        )
        .route("/api/cdrs", get(cdr_list))
        .route("/api/calls", get(calls))
        .route("/api/calls/end", post(call_end))
        .route("/api/presence/rules", post(presence_rule))
        .route("/api/presence/rules/{owner}", get(presence_rules))
        .route("/api/reload", post(reload))
        .route("/api/relay", get(relay_sessions))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

/// Equal in time whatever the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(s): Shared, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|t| same(t.trim().as_bytes(), s.token.as_bytes())) {
        return next.run(req).await;
    }
    let mut resp = error(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        let status = match self.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, &self.message)
    }
}

/// Runs an operation inside the server; `created` answers 201 on success.
async fn run(s: &ApiState, op: Op, created: bool) -> Response {
    match manage::execute(&s.store, Some(&s.live), op).await {
        Ok(reply) if created => (StatusCode::CREATED, Json(reply)).into_response(),
        Ok(reply) => Json(reply).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct DomainFilter {
    domain: Option<String>,
}

#[derive(Deserialize)]
struct NewUser {
    address: String,
    password: String,
}

#[derive(Deserialize)]
struct Password {
    password: String,
}

#[derive(Deserialize)]
struct NewDomain {
    domain: String,
}

#[derive(Deserialize)]
struct NewAlias {
    alias: String,
    target: String,
}

async fn user_list(State(s): Shared, Query(q): Query<DomainFilter>) -> Response {
    run(&s, Op::UserList { domain: q.domain }, false).await
}

async fn user_add(State(s): Shared, Json(u): Json<NewUser>) -> Response {
    let op = Op::UserAdd {
        address: u.address,
        password: u.password,
    };
    run(&s, op, true).await
}

async fn user_show(State(s): Shared, Path(address): Path<String>) -> Response {
    run(&s, Op::UserShow { address }, false).await
}

async fn user_rm(State(s): Shared, Path(address): Path<String>) -> Response {
    run(&s, Op::UserRm { address }, false).await
}

async fn user_passwd(
    State(s): Shared,
    Path(address): Path<String>,
    Json(p): Json<Password>,
) -> Response {
    let op = Op::UserPasswd {
        address,
        password: p.password,
    };
    run(&s, op, false).await
}

async fn domain_list(State(s): Shared) -> Response {
    run(&s, Op::DomainList, false).await
}

async fn domain_add(State(s): Shared, Json(d): Json<NewDomain>) -> Response {
    run(&s, Op::DomainAdd { domain: d.domain }, true).await
}

async fn domain_rm(State(s): Shared, Path(domain): Path<String>) -> Response {
    run(&s, Op::DomainRm { domain }, false).await
}

async fn alias_list(State(s): Shared, Query(q): Query<DomainFilter>) -> Response {
    run(&s, Op::AliasList { domain: q.domain }, false).await
}

async fn alias_add(State(s): Shared, Json(a): Json<NewAlias>) -> Response {
    let op = Op::AliasAdd {
        alias: a.alias,
        target: a.target,
    };
    run(&s, op, true).await
}

async fn alias_rm(State(s): Shared, Path(alias): Path<String>) -> Response {
    run(&s, Op::AliasRm { alias }, false).await
}

/// `GET /api/cdrs?user=&since=&limit=`: call records, newest first.
#[derive(Deserialize)]
struct CdrFilter {
    user: Option<String>,
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
}

async fn cdr_list(State(s): Shared, Query(q): Query<CdrFilter>) -> Response {
    let limit = q.limit.unwrap_or(crate::cmd::manage::CDR_LIMIT).min(10_000);
    let op = Op::CdrList {
        user: q.user,
        since: q.since,
        limit,
    };
    run(&s, op, false).await
}

/// `GET /api/calls`: the calls in progress the script follows.
async fn calls(State(s): Shared) -> Response {
    run(&s, Op::Calls, false).await
}

#[derive(Deserialize)]
struct CallId {
    call_id: String,
}

/// `POST /api/calls/end`: ends an answered call (a BYE to each side).
async fn call_end(State(s): Shared, Json(c): Json<CallId>) -> Response {
    run(&s, Op::CallEnd { call_id: c.call_id }, false).await
}

#[derive(Deserialize)]
struct RuleSet {
    owner: String,
    watcher: String,
    /// `allow`, `block`, or null to forget the rule.
    rule: Option<String>,
}

/// `POST /api/presence/rules`: a user allows or blocks a watcher of its presence (or its
/// rule is forgotten): stored, and the watcher's subscriptions follow at once.
async fn presence_rule(State(s): Shared, Json(r): Json<RuleSet>) -> Response {
    let op = Op::PresenceRule {
        owner: r.owner,
        watcher: r.watcher,
        rule: r.rule,
    };
    run(&s, op, false).await
}

/// `GET /api/presence/rules/{owner}`: a user's presence rules.
async fn presence_rules(State(s): Shared, Path(owner): Path<String>) -> Response {
    run(&s, Op::PresenceRules { owner }, false).await
}

async fn location_all(State(s): Shared) -> Response {
    run(&s, Op::LocationShow { aor: None }, false).await
}

async fn location_one(State(s): Shared, Path(aor): Path<String>) -> Response {
    run(&s, Op::LocationShow { aor: Some(aor) }, false).await
}

async fn location_rm(State(s): Shared, Path(aor): Path<String>) -> Response {
    run(&s, Op::LocationRm { aor }, false).await
}

/// Reloads the directory, the script and the TLS certificates (a script with errors, or
/// certificates that cannot be read, are refused: 422 with why).
async fn reload(State(s): Shared) -> Response {
    match s.reloader.reload().await {
        Ok(message) => Json(Reply::Done { message }).into_response(),
        Err(Refused::Directory(e)) => OpError::from(e).into_response(),
        Err(Refused::Script(e)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("the routing script has errors; the old one keeps running:\n{e}"),
        ),
        Err(Refused::Tls(e)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("the TLS certificates cannot be read; the old ones keep serving: {e}"),
        ),
    }
}

/// The media relay's totals and its sessions, each stream's counters per side.
async fn relay_sessions(State(s): Shared) -> Response {
    let Some(media) = &s.media else {
        return error(
            StatusCode::NOT_FOUND,
            "the media relay is off ([relay] enabled)",
        );
    };
    let t = media.totals().await;
    let side = |x: &relay::Stats| {
        serde_json::json!({
            "packets": x.packets,
            "bytes": x.bytes,
            "rtcp_packets": x.rtcp_packets,
            "rtcp_bytes": x.rtcp_bytes,
            "lost": x.lost,
            "dropped": x.dropped,
            "idle_ms": x.last.map(|l| l.elapsed().as_millis() as u64),
        })
    };
    let sessions: Vec<serde_json::Value> = media
        .sessions()
        .await
        .iter()
        .map(|(id, streams)| {
            let streams: Vec<serde_json::Value> = streams
                .iter()
                .map(|s| match s {
                    Some((o, a)) => serde_json::json!({"offerer": side(o), "answerer": side(a)}),
                    None => serde_json::Value::Null,
                })
                .collect();
            serde_json::json!({"call_id": id.call_id, "from_tag": id.from_tag, "streams": streams})
        })
        .collect();
    Json(serde_json::json!({
        "sessions": t.sessions,
        "ports_free": t.ports_free,
        "packets": t.packets,
        "bytes": t.bytes,
        "dropped": t.dropped,
        "lost": t.lost,
        "kernel_packets": t.kernel_packets,
        "calls": sessions,
    }))
    .into_response()
}

async fn metrics(State(s): Shared) -> Response {
    let relay = match &s.media {
        Some(m) => Some(m.totals().await),
        None => None,
    };
    let core = &s.live.core;
    let text = s.metrics.render(Snapshot {
        auth_failures: core.auth_failures(),
        transactions: core.active_transactions(),
        contacts: s.live.location.len(),
        subscribers: core.subscriber_count(),
        presence: {
            let (subs, pubs) = core.presence_counts();
            [subs, pubs, core.messages_kept()]
        },
        relay,
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The bearer token: the configured one, else the one in `file`, else a new random one
/// written there (mode 0600) for the CLI to read.
pub(crate) fn token(configured: Option<&str>, file: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(t) = configured {
        return Ok(t.to_owned());
    }
    if let Ok(t) = std::fs::read_to_string(file) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_owned());
        }
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| f.write_all(format!("{t}\n").as_bytes()))
        .with_context(|| format!("writing the API token to {}", file.display()))?;
    Ok(t)
}
