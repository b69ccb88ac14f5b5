-- Whether a binding's REGISTER named in its top Via the address and port it came from: then
-- a Contact on another port of that address is where the client listens, not a NAT's port.
-- Rows from before are taken as not naming it (their Contact decides NAT, as it did).
ALTER TABLE location ADD COLUMN via_at_source BIGINT NOT NULL DEFAULT 0;
