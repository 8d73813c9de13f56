-- Castellan fleet store, schema 1. Portable DDL for SQLite and PostgreSQL; {blob} and
-- {serial_pk} are replaced per engine (see migrate.rs). Integers are BIGINT, booleans BIGINT 0/1,
-- times Unix seconds, hashes and serials lowercase hex TEXT.

CREATE TABLE devices (
    id                 TEXT PRIMARY KEY,
    serial             TEXT NOT NULL UNIQUE,
    device_class       TEXT NOT NULL,
    idevid_der         {blob} NOT NULL,
    idevid_serial      TEXT NOT NULL,
    ldevid_serial      TEXT,
    lifecycle          BIGINT NOT NULL,
    attestation_status TEXT NOT NULL,
    attestation_reason TEXT,
    onboarded_at       BIGINT,
    last_seen          BIGINT,
    quarantined        BIGINT NOT NULL DEFAULT 0,
    firmware_version   TEXT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX devices_idevid_serial ON devices (idevid_serial);
CREATE INDEX devices_ldevid_serial ON devices (ldevid_serial);

CREATE TABLE device_tags (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
);

CREATE TABLE reference_measurements (
    device_id   TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    mtype       TEXT NOT NULL,
    digest_hex  TEXT NOT NULL,
    signer_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    PRIMARY KEY (device_id, idx)
);

CREATE TABLE telemetry (
    id        {serial_pk},
    device_id TEXT NOT NULL,
    at        BIGINT NOT NULL,
    payload   TEXT NOT NULL
);
CREATE INDEX telemetry_device ON telemetry (device_id, id);

CREATE TABLE revocations (
    serial     TEXT PRIMARY KEY,
    issuer     TEXT NOT NULL,
    reason     BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    device_id  TEXT
);

CREATE TABLE operators (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    disabled   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    operator   TEXT NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE nonces (
    nonce      TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    decision  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_hash ON audit_log (hash);
