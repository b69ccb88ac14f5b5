-- The same tables as the SQLite migrations 0001 to 0004 make. utf8mb4_bin: names and URIs
-- compare case-sensitively, byte by byte, as in SQLite. Keys are VARCHARs (InnoDB indexes
-- no TEXT) whose sum stays within InnoDB's 3072-byte key at 4 bytes a character; a longer
-- value is refused ("Data too long"), never cut.
CREATE TABLE location (
    aor        VARCHAR(255) NOT NULL,
    contact    VARCHAR(512) NOT NULL,
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
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- The users of each domain, with their secrets as HA1 per digest algorithm (never the
-- password).
CREATE TABLE subscriber (
    username   VARCHAR(255) NOT NULL,
    domain     VARCHAR(255) NOT NULL,
    ha1_md5    TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    PRIMARY KEY (username, domain)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- The domains the server hosts.
CREATE TABLE domain (
    domain VARCHAR(255) NOT NULL PRIMARY KEY
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- Extra addresses: alias_username@alias_domain stands for username@domain.
CREATE TABLE alias (
    alias_username VARCHAR(255) NOT NULL,
    alias_domain   VARCHAR(255) NOT NULL,
    username       VARCHAR(255) NOT NULL,
    domain         VARCHAR(255) NOT NULL,
    PRIMARY KEY (alias_username, alias_domain)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
