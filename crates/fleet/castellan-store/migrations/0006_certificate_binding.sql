-- Castellan fleet store, schema 6: the SHA-256 (lowercase hex) of the DER of the LDevID the
-- operational CA issued at the device's latest onboarding. The broker binds a device's session
-- to exactly that certificate (and the IDevID to the `idevid_der` recorded at the factory), not
-- to its CN and serial, which any CA the broker trusts could copy into a certificate of its own.
-- NULL for devices onboarded before: their LDevID is refused until they onboard again.

ALTER TABLE devices ADD COLUMN ldevid_sha256 TEXT;
