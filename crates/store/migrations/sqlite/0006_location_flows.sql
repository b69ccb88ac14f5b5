-- The flows of one SIP Outbound instance share a Contact (RFC 5626): a binding is keyed by
-- its AOR, contact and reg-id (0 for none). SQLite changes a key by making the table again.
CREATE TABLE location_flows (
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
);
INSERT INTO location_flows
SELECT aor, contact, q, expires_at, call_id, cseq, path, source, user_agent, instance,
       CASE WHEN instance IS NULL OR reg_id IS NULL OR reg_id < 1 OR reg_id > 2147483647
            THEN 0 ELSE reg_id END
FROM location;
DROP TABLE location;
ALTER TABLE location_flows RENAME TO location;
