-- Call detail records (`dlg_manage()`): one per answered dialog, one per call nobody
-- answered (a missed call of the callee). Times in milliseconds since the Unix epoch.
CREATE TABLE cdr (
    call_id     TEXT   NOT NULL,
    caller      TEXT   NOT NULL,
    caller_aor  TEXT   COLLATE "C" NOT NULL,
    dialled     TEXT   NOT NULL,
    callee_aor  TEXT   COLLATE "C" NOT NULL,
    reached     TEXT,
    started_ms  BIGINT NOT NULL,
    answered_ms BIGINT,
    ended_ms    BIGINT NOT NULL,
    status      BIGINT NOT NULL,
    ending      TEXT   NOT NULL
);
CREATE INDEX cdr_started ON cdr (started_ms);
CREATE INDEX cdr_caller ON cdr (caller_aor, started_ms);
CREATE INDEX cdr_callee ON cdr (callee_aor, started_ms);
