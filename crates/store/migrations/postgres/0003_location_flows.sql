-- The flows of one SIP Outbound instance share a Contact (RFC 5626): a binding is keyed by
-- its AOR, contact and reg-id (0 for none).
UPDATE location SET reg_id = 0
WHERE instance IS NULL OR reg_id IS NULL OR reg_id < 1 OR reg_id > 2147483647;
ALTER TABLE location
    ALTER COLUMN reg_id SET DEFAULT 0,
    ALTER COLUMN reg_id SET NOT NULL,
    DROP CONSTRAINT location_pkey,
    ADD PRIMARY KEY (aor, contact, reg_id);
