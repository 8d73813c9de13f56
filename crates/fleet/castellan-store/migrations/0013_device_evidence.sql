-- Castellan fleet store, schema 13: what the console's device page shows beyond the registry.
--
-- `attestation_claims`: the claims of the last attestation token of each device that verified
-- with its IAK (onboarding or post-update), as decoded JSON, with the appraisal's verdict. A
-- token whose signature does not verify leaves no row: its claims are not the device's word.
--
-- `devices.ldevid_der`: the DER of the LDevID the operational CA issued at the device's latest
-- onboarding (schema 6 kept only its SHA-256), so its issuer chain and expiry can be shown.
-- NULL for devices onboarded before.

CREATE TABLE attestation_claims (
    device_id   TEXT PRIMARY KEY,
    appraised_at BIGINT NOT NULL,
    context     TEXT NOT NULL,
    claims      TEXT NOT NULL,
    passed      BIGINT NOT NULL,
    reason      TEXT
);

ALTER TABLE devices ADD COLUMN ldevid_der {blob};

-- A device's session re-checks, newest first, for its page.
CREATE INDEX session_events_device ON session_events (device_id, seq);
