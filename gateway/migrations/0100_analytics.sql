-- Usage analytics: domain events relayed from every service's outbox (common/events.py), one row per
-- (source service, event id). Redelivery is normal (the relay is at-least-once): the unique constraint
-- makes the intake idempotent. Rows hold ids, codes and flags for the bureau's aggregates, never a
-- patient's identity. Access is scoped in gateway/analytics/service.py (facility subtree of the caller).

CREATE TABLE gateway.analytics_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]{1,31}$'),
    event_id     uuid NOT NULL,
    event_type   text NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    facility_id  uuid,
    subject_type text,
    subject_id   text,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analytics_events_source_event UNIQUE (source, event_id)
);
CREATE INDEX analytics_events_type_time ON gateway.analytics_events (event_type, occurred_at);
CREATE INDEX analytics_events_facility_time ON gateway.analytics_events (facility_id, occurred_at);
