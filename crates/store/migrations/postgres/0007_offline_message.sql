-- Messages kept for users who are offline (`m_store()`), until delivered or expired: the
-- number they came in order by, the recipient's address-of-record, the From, To and
-- Content-Type they came with, the body, and when they came and expire (milliseconds since
-- the Unix epoch).
CREATE TABLE offline_message (
    id           BIGINT  NOT NULL PRIMARY KEY,
    recipient    TEXT    NOT NULL,
    from_hdr     TEXT    NOT NULL,
    to_hdr       TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    body         BYTEA   NOT NULL,
    received_ms  BIGINT  NOT NULL,
    expires_ms   BIGINT  NOT NULL
);
CREATE INDEX offline_message_of ON offline_message (recipient);
