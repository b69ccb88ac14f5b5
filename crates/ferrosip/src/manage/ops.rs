//! Carrying out an operation on the database, and on the running server's memory when
//! there is one.

use auth::Secrets;
use registrar::{Binding, Change};
use sip_message::Uri;
use store::{Alias, Store, Subscriber};

use super::{
    AliasInfo, CallInfo, CdrInfo, ContactInfo, ErrorKind, Live, Op, OpError, Reply, RuleInfo,
    UserInfo,
};

/// `user@domain`, both parts non-empty and without spaces; the domain in its canonical
/// form (lower case, no trailing dot, IPv6 without brackets).
pub(crate) fn split(address: &str) -> Result<(String, String), OpError> {
    match address.rsplit_once('@') {
        Some((u, d)) if !u.is_empty() && !address.contains(char::is_whitespace) => {
            Ok((u.to_owned(), domain_name(d)?))
        }
        _ => Err(OpError::new(
            ErrorKind::Invalid,
            format!("{address:?} is not user@domain"),
        )),
    }
}

/// `user@domain` of a new subscriber or alias: the user part must be SIP user syntax
/// (RFC 3261 §25.1: unreserved, escaped and `&=+$,;?/`), so that phones can name it.
fn split_new(address: &str) -> Result<(String, String), OpError> {
    let (user, domain) = split(address)?;
    let b = user.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let ok = match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                i += 2;
                hex
            }
            c => c.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&c),
        };
        if !ok {
            return Err(OpError::new(
                ErrorKind::Invalid,
                format!(
                    "{user:?} is not a SIP user name (letters, digits, -_.!~*'()&=+$,;?/ and %XX)"
                ),
            ));
        }
        i += 1;
    }
    Ok((user, domain))
}

/// The canonical address-of-record of `user@domain` or a SIP URI.
fn canonical(aor: &str) -> Result<String, OpError> {
    let not_aor = || {
        OpError::new(
            ErrorKind::Invalid,
            format!("{aor:?} is not an address-of-record (user@domain)"),
        )
    };
    let text = if aor.starts_with("sip:") || aor.starts_with("sips:") {
        aor.to_owned()
    } else {
        let (user, domain) = split(aor).map_err(|_| not_aor())?;
        format!("sip:{user}@{}", sip_message::domain_in_uri(&domain))
    };
    Uri::parse(&text)
        .ok()
        .as_ref()
        .and_then(registrar::aor_of)
        .ok_or_else(not_aor)
}

/// The address-of-record presence rules are kept under: `sip:user@domain`, whatever the
/// scheme given.
fn presence_aor(aor: &str) -> Result<String, OpError> {
    canonical(aor).map(presence::key_of)
}

fn not_found(what: &str) -> OpError {
    OpError::new(ErrorKind::NotFound, what)
}

fn done(message: String) -> Result<Reply, OpError> {
    Ok(Reply::Done { message })
}

/// Adds `domain` to the hosted ones if it is not; says so in the message.
async fn host(store: &Store, domain: &str) -> Result<String, OpError> {
    Ok(if store.add_domain(domain).await? {
        format!(" (domain {domain} added)")
    } else {
        String::new()
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn contact_info(b: Binding, now: u64) -> ContactInfo {
    ContactInfo {
        expires_in: b.expires_at.saturating_sub(now),
        aor: b.aor,
        contact: b.contact,
        q: b.q,
        source: b.source,
        user_agent: b.user_agent,
    }
}

/// Carries out `op` on `store`; with `live`, also on the running server (its directory is
/// reloaded after a change, and contacts are those it holds).
pub(crate) async fn execute(store: &Store, live: Option<&Live>, op: Op) -> Result<Reply, OpError> {
    let changes_directory = !matches!(
        op,
        Op::UserList { .. }
            | Op::UserShow { .. }
            | Op::DomainList
            | Op::AliasList { .. }
            | Op::LocationShow { .. }
            | Op::LocationRm { .. }
            | Op::CdrList { .. }
            | Op::Calls
            | Op::CallEnd { .. }
            | Op::PresenceRule { .. }
            | Op::PresenceRules { .. }
    );
    let reply = run(store, live, op).await?;
    if let (true, Some(live)) = (changes_directory, live) {
        live.reload_directory(store).await?;
    }
    Ok(reply)
}

async fn run(store: &Store, live: Option<&Live>, op: Op) -> Result<Reply, OpError> {
    match op {
        Op::PresenceRule {
            owner,
            watcher,
            rule,
        } => {
            let (owner, watcher) = (presence_aor(&owner)?, presence_aor(&watcher)?);
            let parsed = match rule.as_deref() {
                Some("allow") => Some(presence::Rule::Allow),
                Some("block") => Some(presence::Rule::Block),
                None => None,
                Some(other) => {
                    return Err(OpError::new(
                        ErrorKind::Invalid,
                        format!("{other:?} is no rule: allow or block"),
                    ))
                }
            };
            store.set_presence_rule(&owner, &watcher, parsed).await?;
            if let Some(l) = live {
                let now = std::time::Instant::now();
                (l.execute)(l.core.set_presence_rule(now, &owner, &watcher, parsed));
            }
            let what = rule.map_or("forgets".to_owned(), |r| format!("{r}s"));
            done(format!("{owner} {what} {watcher}"))
        }
        Op::PresenceRules { owner } => {
            let owner = presence_aor(&owner)?;
            let rules = store.presence_rules().await?;
            Ok(Reply::Rules(
                rules
                    .into_iter()
                    .filter(|(o, _, _)| *o == owner)
                    .map(|(owner, watcher, rule)| RuleInfo {
                        owner,
                        watcher,
                        rule: match rule {
                            presence::Rule::Allow => "allow".into(),
                            presence::Rule::Block => "block".into(),
                        },
                    })
                    .collect(),
            ))
        }
        Op::Calls => match live {
            Some(l) => Ok(Reply::Calls(
                l.core
                    .active_calls()
                    .into_iter()
                    .map(CallInfo::from)
                    .collect(),
            )),
            None => Err(OpError::new(
                ErrorKind::Invalid,
                "the calls in progress are the running server's: ask it with --api",
            )),
        },
        Op::CallEnd { call_id } => {
            let Some(l) = live else {
                return Err(OpError::new(
                    ErrorKind::Invalid,
                    "a call is ended by the running server: ask it with --api",
                ));
            };
            match l.core.end_call(std::time::Instant::now(), &call_id) {
                Some(byes) => {
                    (l.execute)(byes);
                    done(format!("ended call {call_id}: a BYE to each side"))
                }
                None => Err(OpError::new(
                    ErrorKind::NotFound,
                    format!("no answered call in progress has Call-ID {call_id:?}"),
                )),
            }
        }
        Op::CdrList { user, since, limit } => {
            let user = user.as_deref().map(canonical).transpose()?;
            let since_ms = since.saturating_mul(1000);
            let records = store.cdrs(user.as_deref(), since_ms, limit).await?;
            Ok(Reply::Cdrs(
                records.into_iter().map(CdrInfo::from).collect(),
            ))
        }
        Op::UserAdd { address, password } => {
            let (user, domain) = split_new(&address)?;
            let s = Subscriber {
                secrets: Secrets::from_password(&user, &domain, &password),
                username: user,
                domain,
            };
            if !store.add_subscriber(&s).await? {
                return Err(OpError::new(
                    ErrorKind::Conflict,
                    format!(
                        "{address} exists already (`ferrosip user passwd` changes its password)"
                    ),
                ));
            }
            let hosted = host(store, &s.domain).await?;
            done(format!("added {}@{}{hosted}", s.username, s.domain))
        }
        Op::UserPasswd { address, password } => {
            let (user, domain) = split(&address)?;
            let secrets = Secrets::from_password(&user, &domain, &password);
            if !store.set_secrets(&user, &domain, &secrets).await? {
                return Err(not_found(&format!("no subscriber {address}")));
            }
            done(format!("password of {user}@{domain} changed"))
        }
        Op::UserRm { address } => {
            let (user, domain) = split(&address)?;
            if !store.remove_subscriber(&user, &domain).await? {
                return Err(not_found(&format!("no subscriber {address}")));
            }
            done(format!("removed {user}@{domain}"))
        }
        Op::UserList { domain } => Ok(Reply::Users(
            store
                .subscribers(domain.as_deref())
                .await?
                .into_iter()
                .map(|s| UserInfo {
                    user: s.username,
                    domain: s.domain,
                })
                .collect(),
        )),
        Op::UserShow { address } => {
            let (user, domain) = split(&address)?;
            store
                .subscriber(&user, &domain)
                .await?
                .map(|s| {
                    Reply::User(UserInfo {
                        user: s.username,
                        domain: s.domain,
                    })
                })
                .ok_or_else(|| not_found(&format!("no subscriber {address}")))
        }
        Op::DomainAdd { domain } => {
            let domain = domain_name(&domain)?;
            if !store.add_domain(&domain).await? {
                return Err(OpError::new(
                    ErrorKind::Conflict,
                    format!("{domain} is hosted already"),
                ));
            }
            done(format!("added domain {domain}"))
        }
        Op::DomainRm { domain } => {
            let domain = domain_name(&domain)?;
            let users = store.subscriber_count(&domain).await?;
            let aliases = store.aliases(Some(&domain)).await?.len();
            if users + aliases as u64 > 0 {
                return Err(OpError::new(
                    ErrorKind::Conflict,
                    format!("{domain} still has {users} subscriber(s) and {aliases} alias(es): remove them first"),
                ));
            }
            if !store.remove_domain(&domain).await? {
                return Err(not_found(&format!("no domain {domain}")));
            }
            done(format!("removed domain {domain}"))
        }
        Op::DomainList => Ok(Reply::Domains(store.domains().await?)),
        Op::AliasAdd { alias, target } => {
            let (user, domain) = split_new(&alias)?;
            let (target_username, target_domain) = split(&target)?;
            if store.subscriber(&user, &domain).await?.is_some() {
                return Err(OpError::new(
                    ErrorKind::Conflict,
                    format!("{user}@{domain} is a subscriber's own address"),
                ));
            }
            let a = Alias {
                username: user,
                domain,
                target_username,
                target_domain,
            };
            if !store.add_alias(&a).await? {
                return Err(OpError::new(
                    ErrorKind::Conflict,
                    format!("{alias} is an alias already"),
                ));
            }
            let hosted = host(store, &a.domain).await?;
            done(format!(
                "added alias {}@{} -> {}@{}{hosted}",
                a.username, a.domain, a.target_username, a.target_domain
            ))
        }
        Op::AliasRm { alias } => {
            let (user, domain) = split(&alias)?;
            if !store.remove_alias(&user, &domain).await? {
                return Err(not_found(&format!("no alias {alias}")));
            }
            done(format!("removed alias {user}@{domain}"))
        }
        Op::AliasList { domain } => Ok(Reply::Aliases(
            store
                .aliases(domain.as_deref())
                .await?
                .into_iter()
                .map(|a| AliasInfo {
                    alias: format!("{}@{}", a.username, a.domain),
                    target: format!("{}@{}", a.target_username, a.target_domain),
                })
                .collect(),
        )),
        Op::LocationShow { aor } => {
            let aor = aor.as_deref().map(canonical).transpose()?;
            let now = unix_now();
            let all = match live {
                Some(l) => l.location.all(now),
                None => store.load_all().await?,
            };
            let mut bindings: Vec<_> = all
                .into_iter()
                .filter(|b| b.expires_at > now && aor.as_ref().is_none_or(|a| &b.aor == a))
                .collect();
            bindings.sort_by(|a, b| a.aor.cmp(&b.aor).then(b.q.cmp(&a.q)));
            Ok(Reply::Contacts(
                bindings.into_iter().map(|b| contact_info(b, now)).collect(),
            ))
        }
        Op::LocationRm { aor } => {
            let aor = canonical(&aor)?;
            let changes: Vec<Change> = match live {
                Some(l) => l.location.remove_aor(&aor),
                None => store
                    .load_all()
                    .await?
                    .into_iter()
                    .filter(|b| b.aor == aor)
                    .map(|b| b.removal())
                    .collect(),
            };
            if changes.is_empty() {
                return Err(not_found(&format!("{aor} has no contacts")));
            }
            let n = changes.len();
            store.apply(&changes).await?;
            done(format!("removed {n} contact(s) of {aor}"))
        }
    }
}

/// A domain as stored: its canonical form (lower case, no trailing dot, IPv6 without
/// brackets), which must be a host name or an IP address.
fn domain_name(domain: &str) -> Result<String, OpError> {
    let canonical = sip_message::canonical_domain(domain);
    if sip_message::Host::parse(&sip_message::domain_in_uri(&canonical)).is_err() {
        return Err(OpError::new(
            ErrorKind::Invalid,
            format!("{domain:?} is not a domain name or IP address"),
        ));
    }
    Ok(canonical.into_owned())
}
