CREATE TABLE IF NOT EXISTS location (
    aor        TEXT    NOT NULL,
    contact    TEXT    NOT NULL,
    q          INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    call_id    TEXT    NOT NULL,
    cseq       INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    user_agent TEXT,
    instance   TEXT,
    reg_id     INTEGER,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX IF NOT EXISTS location_expires ON location (expires_at);
