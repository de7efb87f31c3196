-- Critical values (危急值): one alert per recording whose analysis raised critical findings (the analysis
-- gates them by signal quality). It must be acknowledged by a doctor of the facility or its reader and is
-- escalated by the beat task while it is not.

CREATE TABLE ecg.alerts (
    id                uuid PRIMARY KEY,
    facility_id       uuid NOT NULL,
    recording_id      uuid NOT NULL UNIQUE REFERENCES ecg.recordings (id) ON DELETE CASCADE,
    finding           text NOT NULL,               -- code of the most severe finding (vt, asystole, ...)
    findings          jsonb NOT NULL,              -- every finding: [{code, message_zh, message_en, ...}]
    message_zh        text NOT NULL,
    message_en        text NOT NULL,
    priority          text NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged')),
    escalation_level  integer NOT NULL DEFAULT 0,
    escalated_at      timestamptz,
    acknowledged_at   timestamptz,
    acknowledged_by   uuid,
    acknowledged_name text,
    acknowledge_note  text,
    published_at      timestamptz,                 -- first real-time delivery (Redis pub/sub)
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'acknowledged') = (acknowledged_at IS NOT NULL))
);
CREATE INDEX alerts_open ON ecg.alerts (facility_id, created_at) WHERE status = 'open';

ALTER TABLE ecg.alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE ecg.alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY alerts_by_facility ON ecg.alerts
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));
