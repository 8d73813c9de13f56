-- Castellan fleet store, schema 7: the operator console. An operator may have a password (an
-- Argon2id PHC string; the store never sees the password) and a count of failed logins with
-- the time its lockout ends, and optionally a TOTP second factor. Console sessions are stored by the SHA-256 of their id (the id
-- itself lives only in the browser's cookie) with their CSRF token, absolute expiry and last use.

CREATE TABLE operator_passwords (
    operator      TEXT PRIMARY KEY REFERENCES operators (name) ON DELETE CASCADE,
    phc           TEXT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    updated_at    BIGINT NOT NULL,
    -- The optional second factor: the TOTP secret (base32) and the last time step accepted
    -- (a code is accepted once).
    totp_secret    TEXT,
    totp_last_step BIGINT
);

CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    operator   TEXT NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The last request of the session (to the minute): an idle session ends.
    last_seen  BIGINT NOT NULL
);
CREATE INDEX console_sessions_operator ON console_sessions (operator);

-- The console's device list sorts and filters on the server: each sort column has an index
-- that ends with the id (the tie-breaker), so a page is an index walk at any fleet size.
CREATE INDEX devices_class_id ON devices (device_class, id);
CREATE INDEX devices_firmware_id ON devices (firmware_version, id);
CREATE INDEX devices_last_seen_id ON devices (last_seen, id);
CREATE INDEX revocations_device ON revocations (device_id);
