-- No query reads bindings by expiry (expired ones are found in memory and deleted by key),
-- and the index cost a B-tree insert and WAL pages on every REGISTER.
DROP INDEX IF EXISTS location_expires;
