-- The domains the server hosts.
CREATE TABLE IF NOT EXISTS domain (
    domain TEXT NOT NULL PRIMARY KEY
);
-- Extra addresses: alias_username@alias_domain stands for username@domain.
CREATE TABLE IF NOT EXISTS alias (
    alias_username TEXT NOT NULL,
    alias_domain   TEXT NOT NULL,
    username       TEXT NOT NULL,
    domain         TEXT NOT NULL,
    PRIMARY KEY (alias_username, alias_domain)
);
-- The domains of subscribers added before this table existed are hosted.
INSERT OR IGNORE INTO domain (domain) SELECT DISTINCT domain FROM subscriber;
