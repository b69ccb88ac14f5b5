-- The presence server (`handle_subscribe()`, `handle_publish()`), kept so that a restart
-- loses no subscription, publication or rule. A subscription: its dialog (Call-ID, the
-- watcher's tag, the package and Event id; our tag, the watcher's Contact, route set and
-- next hop, the CSeqs), whom it watches and who, until when (milliseconds since the Unix
-- epoch) and how it stands (active, pending). A publication: its entity tag, package,
-- end and document. A rule: a user (owner) allows or blocks a watcher.
CREATE TABLE presence_subscription (
    call_id        TEXT   NOT NULL,
    from_tag       TEXT   NOT NULL,
    package        TEXT   NOT NULL,
    event_id       TEXT   NOT NULL,
    our_tag        TEXT   NOT NULL,
    presentity     TEXT   NOT NULL,
    presentity_uri TEXT   NOT NULL,
    watcher        TEXT   NOT NULL,
    watcher_uri    TEXT   NOT NULL,
    contact        TEXT   NOT NULL,
    route          TEXT   NOT NULL,
    hop            TEXT   NOT NULL,
    expires_ms     BIGINT NOT NULL,
    cseq           BIGINT NOT NULL,
    remote_cseq    BIGINT NOT NULL,
    status         TEXT   NOT NULL
);
CREATE TABLE presence_publication (
    presentity     TEXT   NOT NULL,
    etag           TEXT   NOT NULL,
    presentity_uri TEXT   NOT NULL,
    package        TEXT   NOT NULL,
    expires_ms     BIGINT NOT NULL,
    body           TEXT   NOT NULL
);
CREATE TABLE presence_rule (
    owner   TEXT NOT NULL,
    watcher TEXT NOT NULL,
    allow   BIGINT NOT NULL
);
CREATE INDEX presence_subscription_call ON presence_subscription (call_id);
CREATE INDEX presence_publication_of ON presence_publication (presentity);
CREATE INDEX presence_rule_of ON presence_rule (owner);
