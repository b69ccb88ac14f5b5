-- Call detail records (`dlg_manage()`): one per answered dialog, one per call nobody
-- answered (a missed call of the callee). Times in milliseconds since the Unix epoch. The
-- text is cut to 512 characters before it is stored.
CREATE TABLE cdr (
    call_id     TEXT         NOT NULL,
    caller      TEXT         NOT NULL,
    caller_aor  VARCHAR(512) NOT NULL,
    dialled     TEXT         NOT NULL,
    callee_aor  VARCHAR(512) NOT NULL,
    reached     TEXT,
    started_ms  BIGINT       NOT NULL,
    answered_ms BIGINT,
    ended_ms    BIGINT       NOT NULL,
    status      BIGINT       NOT NULL,
    ending      VARCHAR(16)  NOT NULL,
    INDEX cdr_started (started_ms),
    INDEX cdr_caller (caller_aor, started_ms),
    INDEX cdr_callee (callee_aor, started_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
