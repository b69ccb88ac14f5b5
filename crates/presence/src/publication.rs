//! PUBLISH (RFC 3903): a device or a voicemail system sets a presentity's state under an
//! entity tag it refreshes, modifies or removes with SIP-If-Match.

use crate::bodies::is_message_summary;
use crate::notifier::Notifier;
use crate::pidf;
use crate::presentity::{Presentity, Publication};
use crate::saved::{Change, StoredPublication};
use crate::subscription::{Notify, Refused};
use crate::Package;

/// A PUBLISH, as the notifier reads it.
#[derive(Debug, Clone, Copy)]
pub struct PublishRequest<'a> {
    /// Whose state: `user@domain`.
    pub presentity: &'a str,
    /// Its URI as named.
    pub presentity_uri: &'a str,
    /// Which package.
    pub package: Package,
    /// SIP-If-Match: the entity tag of the publication it changes.
    pub if_match: Option<&'a str>,
    /// Its Expires (none: the longest).
    pub expires_s: Option<u32>,
    /// Its Content-Type (without parameters) and body, when it has one.
    pub body: Option<(&'a str, &'a [u8])>,
    /// Whether a device of the presentity is registered (when nobody watched it yet).
    pub registered: bool,
}

/// A publication taken: its new entity tag (SIP-ETag) and Expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The entity tag for its next refresh, change or removal.
    pub etag: String,
    /// The Expires granted (0: removed).
    pub expires_s: u32,
}

impl Notifier {
    /// A PUBLISH at `now_ms`: its new entity tag, and the NOTIFYs of the change in `out`;
    /// or why it is refused (400 no or bad document, 412 unknown entity tag, 415 wrong type,
    /// 423 too brief, 489 a package nobody publishes, 503 full).
    pub fn publish(
        &mut self,
        now_ms: u64,
        req: PublishRequest<'_>,
        out: &mut Vec<Notify>,
    ) -> Result<Published, Refused> {
        if !req.package.publishable() {
            return Err(Refused::new(489, "Bad Event"));
        }
        let expires = self.granted(req.expires_s)?;
        let body = match req.body {
            Some(b) => Some(self.read_body(req.package, b)?),
            None => None,
        };
        let expires_ms = now_ms + u64::from(expires) * 1000;
        let Some(tag) = req.if_match else {
            // A new publication: it needs a document.
            let Some((body, doc)) = body else {
                return Err(Refused::new(400, "Bad Request (no body)"));
            };
            if expires == 0 {
                return Ok(Published {
                    etag: self.new_etag(),
                    expires_s: 0,
                });
            }
            if self.publications >= self.cfg.max_publications {
                return Err(Refused::new(503, "Service Unavailable"));
            }
            let etag = self.new_etag();
            let publication = Publication {
                package: req.package,
                etag: etag.clone(),
                expires_ms,
                body,
                doc,
            };
            self.add_publication(
                req.presentity,
                req.presentity_uri,
                req.registered,
                publication,
            );
            self.changed(now_ms, req.presentity, req.package, out);
            return Ok(Published {
                etag,
                expires_s: expires,
            });
        };
        let found = self.presentities.get_mut(req.presentity).and_then(|p| {
            let i = p
                .pubs
                .iter()
                .position(|x| x.etag == tag && x.package == req.package)?;
            Some((p, i))
        });
        let Some((p, i)) = found else {
            return Err(Refused::new(412, "Conditional Request Failed"));
        };
        if expires == 0 {
            let gone = p.pubs.remove(i);
            self.publications -= 1;
            self.changes.push(Change::PublicationGone {
                presentity: req.presentity.to_owned(),
                etag: gone.etag,
            });
            self.drop_if_unused(req.presentity);
            self.changed(now_ms, req.presentity, req.package, out);
            return Ok(Published {
                etag: tag.to_owned(),
                expires_s: 0,
            });
        }
        let etag = self.new_etag();
        let p = self
            .presentities
            .get_mut(req.presentity)
            .expect("found above");
        let mut publication = p.pubs.remove(i);
        let old = std::mem::replace(&mut publication.etag, etag.clone());
        publication.expires_ms = expires_ms;
        let modified = body.is_some();
        if let Some((body, doc)) = body {
            publication.body = body;
            publication.doc = doc;
        }
        self.changes.push(Change::PublicationGone {
            presentity: req.presentity.to_owned(),
            etag: old,
        });
        self.changes.push(Change::Publication(Box::new(stored(
            req.presentity,
            &p.uri,
            &publication,
        ))));
        p.pubs.push(publication);
        if modified {
            self.changed(now_ms, req.presentity, req.package, out);
        }
        Ok(Published {
            etag,
            expires_s: expires,
        })
    }

    /// A published body checked for its package: its text and (presence) its document.
    fn read_body(
        &self,
        package: Package,
        (content_type, body): (&str, &[u8]),
    ) -> Result<(String, Option<pidf::Document>), Refused> {
        if body.len() > self.cfg.max_body {
            return Err(Refused::new(413, "Request Entity Too Large"));
        }
        if !content_type.eq_ignore_ascii_case(package.content_type()) {
            return Err(Refused::new(415, "Unsupported Media Type"));
        }
        // (No NUL nor other control character: XML has none, a database text column
        // refuses some.)
        if body
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f)
        {
            return Err(Refused::new(400, "Bad Request (control characters)"));
        }
        match package {
            Package::Presence => {
                let doc =
                    pidf::read(body).map_err(|_| Refused::new(400, "Bad Request (bad PIDF)"))?;
                Ok((String::from_utf8_lossy(body).into_owned(), Some(doc)))
            }
            _ if is_message_summary(body) => Ok((String::from_utf8_lossy(body).into_owned(), None)),
            _ => Err(Refused::new(400, "Bad Request (bad message summary)")),
        }
    }

    /// Adds a publication of `presentity` (the oldest of its package goes when it has as
    /// many as it may).
    pub(crate) fn add_publication(
        &mut self,
        presentity: &str,
        uri: &str,
        registered: bool,
        publication: Publication,
    ) {
        let max_devices = self.cfg.max_devices;
        let p = self
            .presentities
            .entry(presentity.to_owned())
            .or_insert_with(|| Presentity::new(uri, registered));
        let same = p
            .pubs
            .iter()
            .filter(|x| x.package == publication.package)
            .count();
        if same >= max_devices {
            if let Some(i) = p.pubs.iter().position(|x| x.package == publication.package) {
                let gone = p.pubs.remove(i);
                self.publications -= 1;
                self.changes.push(Change::PublicationGone {
                    presentity: presentity.to_owned(),
                    etag: gone.etag,
                });
            }
        }
        self.changes.push(Change::Publication(Box::new(stored(
            presentity,
            &p.uri,
            &publication,
        ))));
        p.pubs.push(publication);
        self.publications += 1;
    }

    /// Removes the publications past their end: their watchers learn it.
    pub(crate) fn expire_publications(&mut self, now_ms: u64, out: &mut Vec<Notify>) {
        let mut touched = Vec::new();
        for (aor, p) in &mut self.presentities {
            let before = p.pubs.len();
            let mut packages = Vec::new();
            p.pubs.retain(|x| {
                let keep = x.expires_ms > now_ms;
                if !keep {
                    packages.push(x.package);
                    self.changes.push(Change::PublicationGone {
                        presentity: aor.clone(),
                        etag: x.etag.clone(),
                    });
                }
                keep
            });
            self.publications -= before - p.pubs.len();
            for package in packages {
                touched.push((aor.clone(), package));
            }
        }
        for (aor, package) in touched {
            self.changed(now_ms, &aor, package, out);
            self.drop_if_unused(&aor);
        }
    }

    /// Forgets `presentity` when nobody watches it and it publishes nothing.
    pub(crate) fn drop_if_unused(&mut self, presentity: &str) {
        if self
            .presentities
            .get(presentity)
            .is_some_and(Presentity::is_unused)
        {
            self.presentities.remove(presentity);
        }
    }

    fn new_etag(&mut self) -> String {
        self.etags += 1;
        format!("{:x}.{:x}", self.etag_seed, self.etags)
    }
}

/// A publication as the store keeps it.
fn stored(presentity: &str, uri: &str, p: &Publication) -> StoredPublication {
    StoredPublication {
        presentity: presentity.to_owned(),
        presentity_uri: uri.to_owned(),
        package: p.package,
        etag: p.etag.clone(),
        expires_ms: p.expires_ms,
        body: p.body.clone(),
    }
}
