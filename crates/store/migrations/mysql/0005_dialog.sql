-- The answered dialogs of the calls in progress (`dlg_manage()`): written when answered or
-- changed, removed when they end, read back at start so that a restart or a crash loses
-- no call record. Each side: its Contact, the route set towards it, its next hop and its
-- highest CSeq (for the server's own BYE); its session timer (RFC 4028) and the profiles
-- its call counts under (`dlg_limit()`, one per line). Times in milliseconds since the Unix
-- epoch.
CREATE TABLE dialog (
    call_id        TEXT   NOT NULL,
    from_tag       TEXT   NOT NULL,
    to_tag         TEXT   NOT NULL,
    caller         TEXT   NOT NULL,
    dialled        TEXT   NOT NULL,
    started_ms     BIGINT NOT NULL,
    answered_ms    BIGINT NOT NULL,
    caller_contact TEXT   NOT NULL,
    caller_route   TEXT   NOT NULL,
    caller_hop     TEXT   NOT NULL,
    caller_cseq    BIGINT NOT NULL,
    callee_contact TEXT   NOT NULL,
    callee_route   TEXT   NOT NULL,
    callee_hop     TEXT   NOT NULL,
    callee_cseq    BIGINT NOT NULL,
    session_ms     BIGINT,
    refreshed_ms   BIGINT NOT NULL,
    profiles       TEXT NOT NULL,
    INDEX dialog_call (call_id(191))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
