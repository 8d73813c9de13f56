-- Castellan fleet store, schema 14: presence is fresh when its instance's heartbeat is.
--
-- Before, every instance refreshed `presence.refreshed_at` of all of its devices each
-- cluster_poll: one UPDATE touching every row of the fleet every second. Now each instance
-- upserts one row here each cluster_poll, and a presence row counts while its instance's
-- heartbeat is fresh. `presence.refreshed_at` keeps the time the row was written.

CREATE TABLE instance_heartbeats (
    instance     TEXT PRIMARY KEY,
    refreshed_at BIGINT NOT NULL
);
