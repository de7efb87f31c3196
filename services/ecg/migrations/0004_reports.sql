-- The reader's report: a draft while in review, immutable once signed (content hash of report + signer +
-- time stored), addenda afterwards. The trigger below is the second wall behind the service's 409.

CREATE TABLE ecg.reports (
    id              uuid PRIMARY KEY,
    recording_id    uuid NOT NULL UNIQUE REFERENCES ecg.recordings (id) ON DELETE CASCADE,
    facility_id     uuid NOT NULL,
    reader_id       uuid NOT NULL,
    reader_name     text NOT NULL,
    measurements    jsonb NOT NULL DEFAULT '{}'::jsonb,
    statements      jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{code, zh, en, source: machine|reader}]
    conclusion      text NOT NULL DEFAULT '',
    version         integer NOT NULL DEFAULT 1,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    signed_at       timestamptz,
    signed_by       uuid,
    signer_name     text,
    content_hash    text,
    turnaround_minutes double precision,
    on_time         boolean,
    pdf_key         text,
    dicom_key       text,
    rendered_version integer NOT NULL DEFAULT 0,         -- addenda count the stored PDF includes + 1
    CHECK ((signed_at IS NULL) = (content_hash IS NULL))
);

CREATE TABLE ecg.report_addenda (
    id            uuid PRIMARY KEY,
    report_id     uuid NOT NULL REFERENCES ecg.reports (id) ON DELETE CASCADE,
    facility_id   uuid NOT NULL,
    author_id     uuid NOT NULL,
    author_name   text NOT NULL,
    text          text NOT NULL,
    content_hash  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_addenda_report ON ecg.report_addenda (report_id, created_at);

CREATE FUNCTION ecg.keep_signed_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.signed_at IS NOT NULL THEN
            RAISE EXCEPTION 'a signed ECG report cannot be deleted' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.signed_at IS NOT NULL AND (
        NEW.measurements IS DISTINCT FROM OLD.measurements OR NEW.statements IS DISTINCT FROM OLD.statements
        OR NEW.conclusion IS DISTINCT FROM OLD.conclusion OR NEW.signed_at IS DISTINCT FROM OLD.signed_at
        OR NEW.signed_by IS DISTINCT FROM OLD.signed_by OR NEW.signer_name IS DISTINCT FROM OLD.signer_name
        OR NEW.content_hash IS DISTINCT FROM OLD.content_hash OR NEW.reader_id IS DISTINCT FROM OLD.reader_id
        OR NEW.recording_id IS DISTINCT FROM OLD.recording_id OR NEW.facility_id IS DISTINCT FROM OLD.facility_id
    ) THEN
        RAISE EXCEPTION 'a signed ECG report is immutable (report %)', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reports_signed_immutable BEFORE UPDATE OR DELETE ON ecg.reports
    FOR EACH ROW EXECUTE FUNCTION ecg.keep_signed_report();

ALTER TABLE ecg.reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE ecg.reports FORCE ROW LEVEL SECURITY;
CREATE POLICY reports_by_facility ON ecg.reports
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));

ALTER TABLE ecg.report_addenda ENABLE ROW LEVEL SECURITY;
ALTER TABLE ecg.report_addenda FORCE ROW LEVEL SECURITY;
CREATE POLICY report_addenda_by_facility ON ecg.report_addenda
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));
