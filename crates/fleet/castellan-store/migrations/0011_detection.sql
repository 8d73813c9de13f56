-- Castellan fleet store, schema 11: the signed detection reports devices send
-- (`dev/<id>/up/detect/report`), verified with the device's attestation key before they are
-- stored. A device's report counter only moves forward (one row per counter, unique): a
-- replayed or older report is refused, and the numbers skipped before a report are kept as
-- `gap` (reports that were suppressed or lost: evidence in their own right). The raw report is
-- kept so that anyone can verify it again.

CREATE TABLE detection_reports (
    id           {serial_pk},
    device_id    TEXT NOT NULL,
    counter      BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    first_event  BIGINT NOT NULL,
    events       BIGINT NOT NULL,
    score_milli  BIGINT NOT NULL,
    alarm_milli  BIGINT NOT NULL,
    crossed      BIGINT NOT NULL,
    counters     TEXT NOT NULL,
    model_digest TEXT NOT NULL,
    gap          BIGINT NOT NULL,
    report       {blob} NOT NULL
);
CREATE UNIQUE INDEX detection_reports_counter ON detection_reports (device_id, counter);
