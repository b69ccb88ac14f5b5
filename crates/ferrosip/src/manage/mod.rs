//! Management operations: the same ones for the CLI working on the database and for the
//! API inside a running server (which also updates what the server holds in memory).

mod client;
mod live;
mod ops;

pub(crate) use client::Client;
pub(crate) use live::{load_directory, Directory, Live};
pub(crate) use ops::{execute, split};

use serde::{Deserialize, Serialize};

/// One operation, as the CLI and the API name it.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    UserAdd {
        address: String,
        password: String,
    },
    UserPasswd {
        address: String,
        password: String,
    },
    UserRm {
        address: String,
    },
    UserList {
        domain: Option<String>,
    },
    UserShow {
        address: String,
    },
    DomainAdd {
        domain: String,
    },
    DomainRm {
        domain: String,
    },
    DomainList,
    AliasAdd {
        alias: String,
        target: String,
    },
    AliasRm {
        alias: String,
    },
    AliasList {
        domain: Option<String>,
    },
    LocationShow {
        aor: Option<String>,
    },
    LocationRm {
        aor: String,
    },
    /// Call records: of calls `user` made or got (or all), started at or after `since`
    /// (Unix seconds), newest first, `limit` at most.
    CdrList {
        user: Option<String>,
        since: u64,
        limit: usize,
    },
    /// The running server's calls in progress (those its script follows).
    Calls,
    /// Ends the running server's answered call of this Call-ID: a BYE to each side.
    CallEnd {
        call_id: String,
    },
    /// Sets `owner`'s presence rule for `watcher` (`allow`, `block`; none: forgets it).
    PresenceRule {
        owner: String,
        watcher: String,
        rule: Option<String>,
    },
    /// `owner`'s presence rules.
    PresenceRules {
        owner: String,
    },
}

impl Op {
    /// Whether the operation adds something (and so may create the database).
    pub(crate) fn adds(&self) -> bool {
        matches!(
            self,
            Op::UserAdd { .. } | Op::DomainAdd { .. } | Op::AliasAdd { .. }
        )
    }

    /// What the CLI says when a list or a show finds nothing.
    pub(crate) fn none_found(&self) -> String {
        let within = |domain: &Option<String>| {
            domain
                .as_ref()
                .map_or(String::new(), |d| format!(" in {d}"))
        };
        match self {
            Op::UserList { domain } => format!("no subscribers{}", within(domain)),
            Op::DomainList => "no domains".into(),
            Op::AliasList { domain } => format!("no aliases{}", within(domain)),
            Op::LocationShow { aor: Some(aor) } => format!("no contacts for {aor}"),
            Op::LocationShow { aor: None } => "no contacts".into(),
            Op::CdrList { .. } => "no call records".into(),
            Op::Calls => "no calls in progress".into(),
            _ => "nothing found".into(),
        }
    }
}

/// A subscriber as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserInfo {
    pub(crate) user: String,
    pub(crate) domain: String,
}

/// An alias and the address it stands for, both `user@domain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AliasInfo {
    pub(crate) alias: String,
    pub(crate) target: String,
}

/// A registered contact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContactInfo {
    pub(crate) aor: String,
    pub(crate) contact: String,
    /// q in thousandths.
    pub(crate) q: u16,
    pub(crate) expires_in: u64,
    pub(crate) source: String,
    pub(crate) user_agent: Option<String>,
}

/// A call detail record as shown (times in Unix milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CdrInfo {
    pub(crate) call_id: String,
    pub(crate) caller: String,
    pub(crate) dialled: String,
    pub(crate) reached: Option<String>,
    pub(crate) started_ms: u64,
    pub(crate) answered_ms: Option<u64>,
    pub(crate) ended_ms: u64,
    pub(crate) duration_ms: u64,
    pub(crate) status: u16,
    /// `caller`, `callee` or `server` (who hung up), `expired` (no BYE seen within the
    /// longest time a call is followed), or `unanswered`.
    pub(crate) ending: String,
    pub(crate) missed: bool,
}

impl From<dialog::Cdr> for CdrInfo {
    fn from(r: dialog::Cdr) -> CdrInfo {
        let ending = match r.ending {
            dialog::Ending::CallerHungUp => "caller",
            dialog::Ending::CalleeHungUp => "callee",
            dialog::Ending::EndedByServer => "server",
            dialog::Ending::Expired => "expired",
            dialog::Ending::NotAnswered => "unanswered",
        };
        CdrInfo {
            duration_ms: r.duration_ms(),
            missed: r.missed(),
            ending: ending.into(),
            call_id: r.call_id,
            caller: r.caller,
            dialled: r.dialled,
            reached: r.reached,
            started_ms: r.started_ms,
            answered_ms: r.answered_ms,
            ended_ms: r.ended_ms,
            status: r.status,
        }
    }
}

/// A call in progress as shown (times in Unix milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CallInfo {
    pub(crate) call_id: String,
    pub(crate) caller: String,
    pub(crate) dialled: String,
    pub(crate) started_ms: u64,
    /// When answered; none while it rings.
    pub(crate) answered_ms: Option<u64>,
}

impl From<dialog::ActiveCall> for CallInfo {
    fn from(c: dialog::ActiveCall) -> CallInfo {
        CallInfo {
            call_id: c.call_id,
            caller: c.caller,
            dialled: c.dialled,
            started_ms: c.started_ms,
            answered_ms: c.answered_ms,
        }
    }
}

/// A user's presence rule for a watcher, as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RuleInfo {
    pub(crate) owner: String,
    pub(crate) watcher: String,
    /// `allow` or `block`.
    pub(crate) rule: String,
}

/// What an operation returns (as JSON, each shape its own). The client reads the JSON back
/// trying the variants in order: lists first, since serde also reads a struct from an array.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    Domains(Vec<String>),
    Users(Vec<UserInfo>),
    Aliases(Vec<AliasInfo>),
    Contacts(Vec<ContactInfo>),
    Cdrs(Vec<CdrInfo>),
    Calls(Vec<CallInfo>),
    Rules(Vec<RuleInfo>),
    Done { message: String },
    User(UserInfo),
}

/// Why an operation failed; the kind gives the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Bad input (400).
    Invalid,
    /// No such thing (404).
    NotFound,
    /// It exists already, or is still in use (409).
    Conflict,
    /// The database failed (500).
    Internal,
}

/// A failed operation.
#[derive(Debug, Clone)]
pub(crate) struct OpError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl OpError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

impl From<store::StoreError> for OpError {
    fn from(e: store::StoreError) -> OpError {
        OpError::new(ErrorKind::Internal, e.to_string())
    }
}

impl Reply {
    /// An empty list.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Reply::Domains(l) => l.is_empty(),
            Reply::Users(l) => l.is_empty(),
            Reply::Aliases(l) => l.is_empty(),
            Reply::Contacts(l) => l.is_empty(),
            Reply::Cdrs(l) => l.is_empty(),
            Reply::Calls(l) => l.is_empty(),
            Reply::Rules(l) => l.is_empty(),
            Reply::Done { .. } | Reply::User(_) => false,
        }
    }

    /// Prints the reply as JSON lines (a list: one line per item).
    pub(crate) fn print_json_lines(&self) {
        let items = match serde_json::to_value(self) {
            Ok(serde_json::Value::Array(items)) => items,
            Ok(one) => vec![one],
            Err(_) => Vec::new(),
        };
        for item in items {
            println!("{item}");
        }
    }

    /// Prints the reply as the CLI shows it.
    pub(crate) fn print(&self) {
        match self {
            Reply::Rules(rules) => {
                for r in rules {
                    println!("{}\t{}\t{}", r.owner, r.watcher, r.rule);
                }
            }
            Reply::Calls(calls) => {
                for c in calls {
                    let state = match c.answered_ms {
                        Some(a) => format!("talking since {}", a / 1000),
                        None => "ringing".into(),
                    };
                    let started = c.started_ms / 1000;
                    println!("{started}\t{} -> {}\t{state}\t{}", c.caller, c.dialled, c.call_id);
                }
            }
            Reply::Cdrs(records) => {
                for r in records {
                    let talk = match r.answered_ms {
                        Some(_) => format!("{}.{:03} s", r.duration_ms / 1000, r.duration_ms % 1000),
                        None => "missed".into(),
                    };
                    println!(
                        "{}	{} -> {}	{}	{}	{}	{}",
                        r.started_ms / 1000,
                        r.caller,
                        r.dialled,
                        r.status,
                        talk,
                        r.ending,
                        r.call_id
                    );
                }
            }
            Reply::Done { message } => println!("{message}"),
            Reply::User(u) => println!(
                "user:       {}\ndomain:     {}\nalgorithms: SHA-256, MD5 (HA1 stored, not the password)",
                u.user, u.domain
            ),
            Reply::Users(users) => {
                for u in users {
                    println!("{}@{}", u.user, u.domain);
                }
            }
            Reply::Domains(domains) => {
                for d in domains {
                    println!("{d}");
                }
            }
            Reply::Aliases(aliases) => {
                for a in aliases {
                    println!("{} -> {}", a.alias, a.target);
                }
            }
            Reply::Contacts(contacts) => {
                for c in contacts {
                    println!(
                        "{}\t{}\tq={}.{:03}\texpires in {} s\tfrom {}{}",
                        c.aor,
                        c.contact,
                        c.q / 1000,
                        c.q % 1000,
                        c.expires_in,
                        c.source,
                        c.user_agent
                            .as_ref()
                            .map_or(String::new(), |ua| format!("\t{ua}"))
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_reads_back_as_itself() {
        let user = || UserInfo {
            user: "a".into(),
            domain: "d".into(),
        };
        let replies = [
            Reply::Domains(vec!["d".into()]),
            Reply::Users(vec![user()]),
            Reply::Aliases(vec![AliasInfo {
                alias: "x@d".into(),
                target: "a@d".into(),
            }]),
            Reply::Contacts(vec![ContactInfo {
                aor: "sip:a@d".into(),
                contact: "sip:a@h".into(),
                q: 1000,
                expires_in: 60,
                source: "udp:h:5060".into(),
                user_agent: None,
            }]),
            Reply::Done {
                message: "m".into(),
            },
            Reply::User(user()),
        ];
        for r in replies {
            let json = serde_json::to_value(&r).unwrap();
            let back: Reply = serde_json::from_value(json).unwrap();
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&r),
                "{r:?}"
            );
        }
    }
}
