-- Secrets every server sharing the database shares: the key of its Record-Route entries.
CREATE TABLE secret (
    name  VARCHAR(64) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
