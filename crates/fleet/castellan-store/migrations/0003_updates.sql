-- Castellan fleet store, schema 3: over-the-air updates. The release trust anchor (one row),
-- releases (signed image + SUIT envelope and what was verified about them), campaigns (the
-- request's settings as an opaque JSON spec, state, current wave, threshold baseline) and the
-- devices of each campaign (wave, state, progress, post-update nonce, download token hash).
-- Everything the campaign engine needs to resume after a restart is here.

CREATE TABLE release_key (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    public_key {blob} NOT NULL,
    set_at     BIGINT NOT NULL,
    set_by     TEXT NOT NULL
);

CREATE TABLE releases (
    id                  TEXT PRIMARY KEY,
    device_class        TEXT NOT NULL,
    version             TEXT NOT NULL,
    sequence            BIGINT NOT NULL,
    image               {blob} NOT NULL,
    manifest            {blob} NOT NULL,
    image_size          BIGINT NOT NULL,
    image_sha256        TEXT NOT NULL,
    measurement_type    TEXT NOT NULL,
    measurement_digest  TEXT NOT NULL,
    measurement_version TEXT NOT NULL,
    signer_id           TEXT NOT NULL,
    security_counter    BIGINT NOT NULL,
    notes               TEXT,
    created_at          BIGINT NOT NULL,
    created_by          TEXT NOT NULL,
    UNIQUE (device_class, sequence)
);

CREATE TABLE campaigns (
    id               TEXT PRIMARY KEY,
    release_id       TEXT NOT NULL REFERENCES releases (id),
    device_class     TEXT NOT NULL,
    spec             TEXT NOT NULL,
    state            TEXT NOT NULL,
    wave             BIGINT NOT NULL DEFAULT 0,
    reason           TEXT,
    rollback_of      TEXT,
    baseline_failed  BIGINT NOT NULL DEFAULT 0,
    baseline_updated BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX campaigns_state ON campaigns (state);

CREATE TABLE campaign_devices (
    campaign_id         TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    device_id           TEXT NOT NULL,
    wave                BIGINT NOT NULL,
    state               TEXT NOT NULL,
    progress_offset     BIGINT NOT NULL DEFAULT 0,
    reason              TEXT,
    offered_at          BIGINT,
    updated_at          BIGINT NOT NULL,
    nonce               TEXT,
    download_token_hash TEXT,
    PRIMARY KEY (campaign_id, device_id)
);
CREATE INDEX campaign_devices_device ON campaign_devices (device_id);
CREATE INDEX campaign_devices_token ON campaign_devices (download_token_hash);
