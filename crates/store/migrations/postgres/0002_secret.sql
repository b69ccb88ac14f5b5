-- Secrets every server sharing the database shares: the key of its Record-Route entries.
CREATE TABLE secret (
    name  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
