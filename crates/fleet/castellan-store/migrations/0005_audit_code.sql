-- Castellan fleet store, schema 5: the stable machine code of a refusal in the audit log
-- (`attestation.nonce_mismatch`, `release.digest_mismatch`), beside its human reason; NULL for
-- entries without one. An entry's hash covers the code when it has one, so entries written
-- before keep their hashes.

ALTER TABLE audit_log ADD COLUMN code TEXT;
