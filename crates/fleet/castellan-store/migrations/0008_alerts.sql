-- Castellan fleet store, schema 8: what the fleet's analysis raises and what it may do about
-- it. An alert names a device (a device that deviates from its peers) or only a cohort (a
-- release whose devices all moved), carries its evidence as JSON, and moves from open to
-- acknowledged to resolved; it is never deleted. A device healed from its alert (the good
-- release installed and attested) stays quarantined on probation until `probation_until`. A response policy per device class says
-- whether a high alert quarantines the device by itself, and how many times an hour at most.

CREATE TABLE alerts (
    id           TEXT PRIMARY KEY,
    device_id    TEXT,
    device_class TEXT NOT NULL,
    release      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    state        TEXT NOT NULL,
    summary      TEXT NOT NULL,
    evidence     TEXT NOT NULL,
    raised_at    BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT,
    probation_until BIGINT
);
CREATE INDEX alerts_state ON alerts (state, raised_at);
CREATE INDEX alerts_device ON alerts (device_id, state);

CREATE TABLE response_policies (
    device_class             TEXT PRIMARY KEY,
    auto_quarantine          BIGINT NOT NULL,
    max_quarantines_per_hour BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    updated_by               TEXT NOT NULL
);
