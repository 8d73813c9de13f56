-- Castellan fleet store, schema 9: leases for the work that must happen once in a fleet of
-- several service instances (campaign ticks, TUF timestamp re-signing, the analysis window).
-- A lease is held by one instance until `expires_at` (Unix milliseconds) and renewed before
-- then; each change of holder raises `epoch`, and every write made under a lease checks, in
-- its own transaction, that holder and epoch are still current (fencing). A lease given up
-- is kept with `expires_at` 0, so epochs only ever grow.

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
