-- Domain events of the imaging service, written in the same transaction as the change they describe,
-- relayed to the gateway's analytics by the imaging.relay_events task (common/events.py).
CREATE TABLE imaging.outbox (
    id           uuid PRIMARY KEY,
    event_type   text NOT NULL,
    facility_id  uuid,
    subject_type text,
    subject_id   text,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    relayed_at   timestamptz,
    attempts     integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_pending ON imaging.outbox (occurred_at) WHERE relayed_at IS NULL;
