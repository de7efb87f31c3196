-- Critical-finding alerts (影像危急值): one per report whose reader flagged a critical finding, for the
-- requesting facility (the study's owner, facility_id). Delivered in real time (Redis pub/sub, WebSocket
-- /api/imaging/alerts/ws), acknowledged by a doctor of the requesting facility, escalated by the beat task
-- while nobody has. The note is the reader's words about the finding (clinical content, like the report).

CREATE TABLE imaging.critical_alerts (
    id                   uuid PRIMARY KEY,
    facility_id          uuid NOT NULL,                -- the requesting facility (study owner)
    study_ref            uuid NOT NULL REFERENCES imaging.studies (id),
    report_id            uuid NOT NULL UNIQUE REFERENCES imaging.reports (id),
    study_instance_uid   text NOT NULL,
    reading_facility_id  uuid NOT NULL,
    reader_name          text NOT NULL,
    modality             text NOT NULL DEFAULT '',
    priority             text NOT NULL,
    note                 text NOT NULL DEFAULT '',
    signed               boolean NOT NULL DEFAULT false, -- raised at signing (else when the flag was saved)
    message_zh           text NOT NULL,
    message_en           text NOT NULL,
    status               text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged')),
    escalation_level     integer NOT NULL DEFAULT 0,
    escalated_at         timestamptz,
    acknowledged_at      timestamptz,
    acknowledged_by      uuid,
    acknowledged_name    text,
    acknowledge_note     text,
    published_at         timestamptz,                  -- first real-time delivery
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'acknowledged') = (acknowledged_at IS NOT NULL))
);
CREATE INDEX critical_alerts_open ON imaging.critical_alerts (facility_id, created_at) WHERE status = 'open';

ALTER TABLE imaging.critical_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.critical_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY critical_alerts_by_facility ON imaging.critical_alerts
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
