-- Castellan fleet store, schema 12: the signed commands to a device that wait for its answer
-- (a decommission's proof of erasure, a reboot-and-reattest's token) and the requests that wait
-- for a second operator's approval, so that a restart of the service (or another instance of
-- it) finds them again. The nonce is what the device's answer must be over; it is removed when
-- the answer is accepted (a replay finds none) or the deadline passes.

CREATE TABLE pending_commands (
    device_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    deadline   BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, kind)
);

CREATE TABLE command_requests (
    device_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, kind)
);
