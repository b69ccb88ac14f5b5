-- The same tables as the SQLite migrations 0001 to 0004 make. Keys sort and compare by
-- byte ("C"), as in SQLite and in the MySQL schema.
CREATE TABLE location (
    aor        TEXT COLLATE "C" NOT NULL,
    contact    TEXT COLLATE "C" NOT NULL,
    q          BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    call_id    TEXT   NOT NULL,
    cseq       BIGINT NOT NULL,
    path       TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    user_agent TEXT,
    instance   TEXT,
    reg_id     BIGINT,
    PRIMARY KEY (aor, contact)
);
-- The users of each domain, with their secrets as HA1 per digest algorithm (never the
-- password).
CREATE TABLE subscriber (
    username   TEXT COLLATE "C" NOT NULL,
    domain     TEXT COLLATE "C" NOT NULL,
    ha1_md5    TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    PRIMARY KEY (username, domain)
);
-- The domains the server hosts.
CREATE TABLE domain (
    domain TEXT COLLATE "C" NOT NULL PRIMARY KEY
);
-- Extra addresses: alias_username@alias_domain stands for username@domain.
CREATE TABLE alias (
    alias_username TEXT COLLATE "C" NOT NULL,
    alias_domain   TEXT COLLATE "C" NOT NULL,
    username       TEXT COLLATE "C" NOT NULL,
    domain         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (alias_username, alias_domain)
);
