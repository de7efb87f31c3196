-- Reading: the worklist state of a study (priority, status, assignee), the radiologist's report (a draft
-- while in progress, immutable once signed: SHA-256 over content + signer + time), addenda, and the register
-- of readers (specialists seen by the reading API, so that work is assigned to a named one).
--
-- facility_id is the study's OWNER (the requesting facility); reading_facility_id the reading centre that
-- reads it. Row-level security is the archive's rule (the owner, or the reading centre serving it), written
-- with the caller's facilities in an InitPlan as in 0002.

CREATE TABLE imaging.reading_items (
    study_ref            uuid PRIMARY KEY REFERENCES imaging.studies (id) ON DELETE CASCADE,
    facility_id          uuid NOT NULL,
    priority             text NOT NULL DEFAULT 'routine' CHECK (priority IN ('stat', 'urgent', 'routine')),
    status               text NOT NULL DEFAULT 'new'
                         CHECK (status IN ('new', 'assigned', 'in_progress', 'reported', 'signed')),
    clinical_question    text NOT NULL DEFAULT '',
    assignee_id          uuid,
    assignee_name        text,
    assigned_at          timestamptz,
    assigned_by          uuid,
    reading_facility_id  uuid,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reading_items_facility_status ON imaging.reading_items (facility_id, status);
CREATE INDEX reading_items_assignee ON imaging.reading_items (assignee_id) WHERE assignee_id IS NOT NULL;

CREATE TABLE imaging.readers (
    user_id      uuid PRIMARY KEY,
    facility_id  uuid NOT NULL,
    name         text NOT NULL,
    last_seen    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX readers_facility ON imaging.readers (facility_id);

CREATE TABLE imaging.reports (
    id                   uuid PRIMARY KEY,
    study_ref            uuid NOT NULL UNIQUE REFERENCES imaging.studies (id),
    facility_id          uuid NOT NULL,                  -- the study's owner (requesting facility)
    reading_facility_id  uuid NOT NULL,
    modality             text NOT NULL DEFAULT '',
    template             text NOT NULL,
    reader_id            uuid NOT NULL,
    reader_name          text NOT NULL,
    findings             text NOT NULL DEFAULT '',
    impression           text NOT NULL DEFAULT '',
    critical             boolean NOT NULL DEFAULT false,
    critical_note        text NOT NULL DEFAULT '',
    critical_raised_at   timestamptz,
    version              integer NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    signed_at            timestamptz,
    signed_by            uuid,
    signer_name          text,
    content_hash         text,
    turnaround_minutes   double precision,
    on_time              boolean,
    report_series_uid    text,                           -- the DICOM report's series in the study
    pdf_key              text,
    dicom_sop_uid        text,
    rendered_version     integer NOT NULL DEFAULT 0,     -- addenda count the stored PDF includes + 1
    CHECK ((signed_at IS NULL) = (content_hash IS NULL))
);
CREATE INDEX reports_facility ON imaging.reports (facility_id);

CREATE TABLE imaging.report_addenda (
    id            uuid PRIMARY KEY,
    report_id     uuid NOT NULL REFERENCES imaging.reports (id),
    facility_id   uuid NOT NULL,
    author_id     uuid NOT NULL,
    author_name   text NOT NULL,
    text          text NOT NULL,
    content_hash  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_addenda_report ON imaging.report_addenda (report_id, created_at);

-- The second wall behind the service's 409: a signed report's content, signer, time and hash never change and
-- it is never deleted; addenda are append-only.
CREATE FUNCTION imaging.keep_signed_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.signed_at IS NOT NULL THEN
            RAISE EXCEPTION 'a signed imaging report cannot be deleted' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.signed_at IS NOT NULL AND (
        NEW.findings IS DISTINCT FROM OLD.findings OR NEW.impression IS DISTINCT FROM OLD.impression
        OR NEW.critical IS DISTINCT FROM OLD.critical OR NEW.critical_note IS DISTINCT FROM OLD.critical_note
        OR NEW.signed_at IS DISTINCT FROM OLD.signed_at OR NEW.signed_by IS DISTINCT FROM OLD.signed_by
        OR NEW.signer_name IS DISTINCT FROM OLD.signer_name OR NEW.content_hash IS DISTINCT FROM OLD.content_hash
        OR NEW.reader_id IS DISTINCT FROM OLD.reader_id OR NEW.study_ref IS DISTINCT FROM OLD.study_ref
        OR NEW.facility_id IS DISTINCT FROM OLD.facility_id OR NEW.version IS DISTINCT FROM OLD.version
        OR NEW.turnaround_minutes IS DISTINCT FROM OLD.turnaround_minutes OR NEW.on_time IS DISTINCT FROM OLD.on_time
    ) THEN
        RAISE EXCEPTION 'a signed imaging report is immutable (report %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reports_signed_immutable BEFORE UPDATE OR DELETE ON imaging.reports
    FOR EACH ROW EXECUTE FUNCTION imaging.keep_signed_report();

CREATE FUNCTION imaging.keep_addenda() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'report addenda are append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER report_addenda_append_only BEFORE UPDATE OR DELETE ON imaging.report_addenda
    FOR EACH ROW EXECUTE FUNCTION imaging.keep_addenda();

ALTER TABLE imaging.reading_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.reading_items FORCE ROW LEVEL SECURITY;
CREATE POLICY reading_items_by_facility ON imaging.reading_items
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

ALTER TABLE imaging.readers ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.readers FORCE ROW LEVEL SECURITY;
CREATE POLICY readers_by_facility ON imaging.readers
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

ALTER TABLE imaging.reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.reports FORCE ROW LEVEL SECURITY;
CREATE POLICY reports_by_facility ON imaging.reports
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

ALTER TABLE imaging.report_addenda ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.report_addenda FORCE ROW LEVEL SECURITY;
CREATE POLICY report_addenda_by_facility ON imaging.report_addenda
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
