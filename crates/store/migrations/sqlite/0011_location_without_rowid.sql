-- The location table keyed by its primary key alone (WITHOUT ROWID): a rowid table kept
-- the rows in one B-tree and the key in another, so each REGISTER dirtied pages of both,
-- and every commit wrote both to the WAL.
CREATE TABLE location_keyed (
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
    reg_id     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (aor, contact, reg_id)
) WITHOUT ROWID;
INSERT INTO location_keyed SELECT * FROM location;
DROP TABLE location;
ALTER TABLE location_keyed RENAME TO location;
