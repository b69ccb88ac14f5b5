//! The CLI's side of the management API: operations sent to a running server over HTTP.

use anyhow::{anyhow, Context};
use serde_json::{json, Value};

use super::{Op, Reply};

/// A running server's management API.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// `http://host:port`.
    base: String,
    token: String,
}

/// Percent-encodes one path segment (an address may hold `/`, `?`, `%`…).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?domain=…` when there is one.
fn domain_query(domain: &Option<String>) -> String {
    domain
        .as_deref()
        .map_or(String::new(), |d| format!("?domain={}", segment(d)))
}

impl Client {
    /// The API at `base` (`http://127.0.0.1:5080`), with this bearer token.
    pub(crate) fn new(base: &str, token: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// Sends a request; the JSON answer, or the API's error message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = ureq::request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .timeout(std::time::Duration::from_secs(30));
        let sent = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match sent {
            Ok(resp) => resp.into_json().context("reading the API's answer"),
            Err(ureq::Error::Status(code, resp)) => {
                let message = resp
                    .into_json::<Value>()
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("HTTP status {code}"));
                Err(anyhow!(message))
            }
            Err(e) => Err(anyhow!(
                "cannot reach the management API at {}: {e} (is `ferrosip serve` running?)",
                self.base
            )),
        }
    }

    /// Carries out an operation on the server.
    pub(crate) fn execute(&self, op: &Op) -> anyhow::Result<Reply> {
        let (method, path, body) = match op {
            Op::UserAdd { address, password } => (
                "POST",
                "/api/users".to_owned(),
                Some(json!({ "address": address, "password": password })),
            ),
            Op::UserPasswd { address, password } => (
                "PUT",
                format!("/api/users/{}/password", segment(address)),
                Some(json!({ "password": password })),
            ),
            Op::UserRm { address } => ("DELETE", format!("/api/users/{}", segment(address)), None),
            Op::UserList { domain } => ("GET", format!("/api/users{}", domain_query(domain)), None),
            Op::UserShow { address } => ("GET", format!("/api/users/{}", segment(address)), None),
            Op::DomainAdd { domain } => (
                "POST",
                "/api/domains".to_owned(),
                Some(json!({ "domain": domain })),
            ),
            Op::DomainRm { domain } => {
                ("DELETE", format!("/api/domains/{}", segment(domain)), None)
            }
            Op::DomainList => ("GET", "/api/domains".to_owned(), None),
            Op::AliasAdd { alias, target } => (
                "POST",
                "/api/aliases".to_owned(),
                Some(json!({ "alias": alias, "target": target })),
            ),
            Op::AliasRm { alias } => ("DELETE", format!("/api/aliases/{}", segment(alias)), None),
            Op::AliasList { domain } => {
                ("GET", format!("/api/aliases{}", domain_query(domain)), None)
            }
            Op::LocationShow { aor } => (
                "GET",
                aor.as_deref().map_or("/api/locations".to_owned(), |a| {
                    format!("/api/locations/{}", segment(a))
                }),
                None,
            ),
            Op::LocationRm { aor } => ("DELETE", format!("/api/locations/{}", segment(aor)), None),
            Op::Calls => ("GET", "/api/calls".to_owned(), None),
            Op::PresenceRule {
                owner,
                watcher,
                rule,
            } => (
                "POST",
                "/api/presence/rules".to_owned(),
                Some(json!({ "owner": owner, "watcher": watcher, "rule": rule })),
            ),
            Op::PresenceRules { owner } => (
                "GET",
                format!("/api/presence/rules/{}", segment(owner)),
                None,
            ),
            Op::CallEnd { call_id } => (
                "POST",
                "/api/calls/end".to_owned(),
                Some(json!({ "call_id": call_id })),
            ),
            Op::CdrList { user, since, limit } => {
                // (In a query, `+` reads as a space.)
                let user = user.as_deref().map_or(String::new(), |u| {
                    format!("&user={}", segment(u).replace('+', "%2B"))
                });
                let path = format!("/api/cdrs?since={since}&limit={limit}{user}");
                ("GET", path, None)
            }
        };
        let answer = self.call(method, &path, body)?;
        serde_json::from_value(answer).context("the API's answer has an unexpected shape")
    }

    /// Reloads the routing script and the directory; the script's errors when refused.
    pub(crate) fn reload(&self) -> anyhow::Result<Reply> {
        let answer = self.call("POST", "/api/reload", None)?;
        serde_json::from_value(answer).context("the API's answer has an unexpected shape")
    }

    /// The counters, in Prometheus text format.
    pub(crate) fn metrics(&self) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.base);
        ureq::get(&url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .timeout(std::time::Duration::from_secs(10))
            .call()
            .map_err(|e| {
                anyhow!("cannot read {url}: {e} (is `ferrosip serve` running with its API on?)")
            })?
            .into_string()
            .context("reading the counters")
    }
}
