-- One definition of the event outbox that every service schema owns (common/events.py writes and relays it).
-- A service's migration calls: SELECT platform.create_outbox('<schema>');

CREATE OR REPLACE FUNCTION platform.create_outbox(target_schema text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %1$I.outbox (
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
        CREATE INDEX IF NOT EXISTS outbox_pending ON %1$I.outbox (occurred_at) WHERE relayed_at IS NULL;
    $ddl$, target_schema);
END
$$;
