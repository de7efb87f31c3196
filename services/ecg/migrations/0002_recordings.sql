-- ECG recordings as uploaded by a township centre, and their automatic analysis.
-- Binary data (the original file(s) byte-for-byte, the compact int16 signal) lives in object storage under
-- ecg/<facility>/<recording>/; the rows keep the keys. Every row carries its owning facility_id; the
-- service scopes every query by it and row-level security is the second wall.

CREATE TABLE ecg.recordings (
    id                  uuid PRIMARY KEY,
    facility_id         uuid NOT NULL,
    patient_id          uuid,                       -- health_mgmt patient register (checked over its API)
    uploaded_by         uuid NOT NULL,
    priority            text NOT NULL DEFAULT 'routine' CHECK (priority IN ('routine', 'urgent', 'stat')),
    clinical_note       text,
    status              text NOT NULL DEFAULT 'new'
                        CHECK (status IN ('new', 'analysing', 'ready', 'in_review', 'signed', 'failed')),
    critical            boolean NOT NULL DEFAULT false,
    source_format       text NOT NULL,
    original_files      jsonb NOT NULL,              -- [{name, key, size, sha256, content_type}]
    signal_key          text NOT NULL,
    signal_layout       jsonb NOT NULL,              -- {dtype, offset, samples, leads, gain_mv[]}
    fs                  double precision NOT NULL CHECK (fs > 0),
    lead_names          text[] NOT NULL,
    n_samples           bigint NOT NULL CHECK (n_samples > 0),
    duration_s          double precision NOT NULL,
    start_time          timestamptz,
    device              jsonb NOT NULL DEFAULT '{}'::jsonb,
    device_measurements jsonb NOT NULL DEFAULT '{}'::jsonb,
    file_patient        jsonb NOT NULL DEFAULT '{}'::jsonb,   -- age/sex the file states (no names)
    warnings            jsonb NOT NULL DEFAULT '[]'::jsonb,
    analysis_error      text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    analysis_started_at timestamptz,
    analysed_at         timestamptz,
    signed_at           timestamptz
);
CREATE INDEX recordings_facility_received ON ecg.recordings (facility_id, received_at DESC);
CREATE INDEX recordings_stalled ON ecg.recordings (status, received_at) WHERE status IN ('new', 'analysing');
CREATE INDEX recordings_open_work ON ecg.recordings (critical DESC, priority, received_at)
    WHERE status <> 'signed';

ALTER TABLE ecg.recordings ENABLE ROW LEVEL SECURITY;
ALTER TABLE ecg.recordings FORCE ROW LEVEL SECURITY;
CREATE POLICY recordings_by_facility ON ecg.recordings
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));

-- One machine reading per recording (the task is idempotent: a redelivery finds the row and stops).
CREATE TABLE ecg.analyses (
    recording_id    uuid PRIMARY KEY REFERENCES ecg.recordings (id) ON DELETE CASCADE,
    facility_id     uuid NOT NULL,
    analysis        jsonb NOT NULL,
    findings        jsonb NOT NULL DEFAULT '[]'::jsonb,  -- critical findings the analysis raised
    engine          text NOT NULL,
    elapsed_ms      double precision,
    created_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE ecg.analyses ENABLE ROW LEVEL SECURITY;
ALTER TABLE ecg.analyses FORCE ROW LEVEL SECURITY;
CREATE POLICY analyses_by_facility ON ecg.analyses
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));
