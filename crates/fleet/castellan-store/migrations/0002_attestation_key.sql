-- Castellan fleet store, schema 2: the attestation public key (IAK, SEC1) recorded at the factory
-- beside the IDevID; onboarding tokens must verify with it. NULL for devices registered before.

ALTER TABLE devices ADD COLUMN iak_public_key {blob};
