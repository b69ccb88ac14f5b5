-- Secrets every server sharing the database shares: the key of its Record-Route entries.
CREATE TABLE IF NOT EXISTS secret (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
