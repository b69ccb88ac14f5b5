-- The flows of one SIP Outbound instance share a Contact (RFC 5626): a binding is keyed by
-- its AOR, contact and reg-id (0 for none). An INT, as a reg-id is at most 2^31-1: InnoDB
-- keys hold 3072 bytes, and the two text columns take 3068 of them.
UPDATE location SET reg_id = 0
WHERE instance IS NULL OR reg_id IS NULL OR reg_id < 1 OR reg_id > 2147483647;
ALTER TABLE location
    MODIFY reg_id INT NOT NULL DEFAULT 0,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (aor, contact, reg_id);
