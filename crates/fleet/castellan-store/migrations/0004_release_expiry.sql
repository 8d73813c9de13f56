-- Castellan fleet store, schema 4: a release's expiry (Unix seconds, from its SUIT manifest's
-- castellan-expires parameter; NULL when it never expires). Campaigns of an expired release are
-- refused and running ones stop: devices that know the time refuse an expired manifest.

ALTER TABLE releases ADD COLUMN expires_at BIGINT;
