-- The users of each domain, with their secrets as HA1 per digest algorithm (never the
-- password).
CREATE TABLE IF NOT EXISTS subscriber (
    username   TEXT NOT NULL,
    domain     TEXT NOT NULL,
    ha1_md5    TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    PRIMARY KEY (username, domain)
);
