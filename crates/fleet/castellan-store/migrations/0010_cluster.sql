-- Castellan fleet store, schema 10: what must cross service instances that each run their own
-- MQTT broker on one database.
--
-- `presence`: which instance's broker holds each device's live session. Every instance
-- refreshes the rows of its own devices (`refreshed_at`, Unix milliseconds) and deletes them
-- when the device disconnects or the instance stops cleanly; a row not refreshed within the
-- presence TTL (a dead instance) is ignored.
--
-- `device_outbox`: messages for a device whose session is on another instance's broker. The
-- instance holding the session publishes them in `seq` order and deletes them; rows older than
-- the outbox TTL are purged, and each device keeps at most a capped number of rows.
--
-- `session_events`: "re-check this device's open session" (revocation, quarantine, policy
-- change), read by every instance after the last `seq` it saw, purged after a TTL.

CREATE TABLE presence (
    device_id    TEXT PRIMARY KEY,
    instance     TEXT NOT NULL,
    connected_at BIGINT NOT NULL,
    refreshed_at BIGINT NOT NULL
);
CREATE INDEX presence_instance ON presence (instance);

CREATE TABLE device_outbox (
    seq        {serial_pk},
    device_id  TEXT NOT NULL,
    topic      TEXT NOT NULL,
    payload    {blob} NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX device_outbox_device ON device_outbox (device_id, seq);

CREATE TABLE session_events (
    seq        {serial_pk},
    device_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    origin     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
