-- The imaging archive's index: patients, studies, series and instances (DICOM information model).
-- Originals live byte for byte in object storage (imaging/<facility>/<study>/<series>/<sop>.dcm); these rows
-- keep the keys, and each instance's DICOM JSON (bulk data replaced by BulkDataURIs) so that QIDO-RS and
-- WADO-RS metadata are answered without reading a file.
--
-- facility_id on every level is the study's OWNER facility (the facility whose archive the study is in: the
-- one that sent its first instance). Every query is scoped by it and row-level security is the second wall.
-- An instance added by another facility that may see the study (its reading centre adding a report or a key
-- object) stays in the owner's study; the instance row keeps the sender in source_facility_id.
--
-- Indexes are designed for 1,000,000 instances (tens of thousands of studies per region): every QIDO key has
-- a btree with facility_id leading (facility_id = ANY(visible) is an index condition), text keys are
-- COLLATE "C" so that prefix wildcards (WANG*, 王*) become btree range scans. Under row-level security only
-- leakproof operators (=, <, >=, ANY ...) may be index conditions (LIKE, regex and array && are not), so the
-- service sends a prefix wildcard as a range plus the LIKE (services/imaging/matching.py). pg_trgm and GIN
-- indexes would serve infix wildcards and ModalitiesInStudy only to a role that bypasses RLS, so there are
-- none: those keys filter the rows of the caller's facilities that the other keys (or facility_id) select.
-- Names are matched on lower-cased copies written by the service (Python's Unicode lower(), so matching does
-- not depend on the database's locale).

CREATE TABLE imaging.patients (
    id            uuid PRIMARY KEY,
    facility_id   uuid NOT NULL,
    -- (PatientID, IssuerOfPatientID) within the facility; '~' + name + '|' + birth date when PatientID is empty
    patient_key   text COLLATE "C" NOT NULL,
    patient_id    text COLLATE "C" NOT NULL DEFAULT '',
    issuer        text COLLATE "C" NOT NULL DEFAULT '',
    patient_name  text NOT NULL DEFAULT '',
    birth_date    date,
    sex           text NOT NULL DEFAULT '',
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb,     -- Patient module as DICOM JSON (for C-FIND)
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (facility_id, patient_key)
);
CREATE INDEX patients_facility_patient_id ON imaging.patients (facility_id, patient_id);

CREATE TABLE imaging.studies (
    id                  uuid PRIMARY KEY,
    facility_id         uuid NOT NULL,                    -- owner facility
    patient_ref         uuid NOT NULL REFERENCES imaging.patients (id),
    study_instance_uid  text COLLATE "C" NOT NULL UNIQUE,
    patient_id          text COLLATE "C" NOT NULL DEFAULT '',
    patient_name        text NOT NULL DEFAULT '',         -- as in the file (all component groups)
    pn_alpha            text COLLATE "C" NOT NULL DEFAULT '',  -- lower-cased, normalised component groups
    pn_ideographic      text COLLATE "C" NOT NULL DEFAULT '',
    pn_phonetic         text COLLATE "C" NOT NULL DEFAULT '',
    pn_search           text NOT NULL DEFAULT '',          -- the three groups joined by '=' (fuzzy, infix)
    patient_birth_date  date,
    patient_sex         text NOT NULL DEFAULT '',
    study_date          date,
    study_time          time,
    accession_number    text COLLATE "C" NOT NULL DEFAULT '',
    study_id            text COLLATE "C" NOT NULL DEFAULT '',
    study_description   text NOT NULL DEFAULT '',
    description_search  text NOT NULL DEFAULT '',          -- lower-cased description
    referring_search    text NOT NULL DEFAULT '',          -- lower-cased referring physician, groups joined by '='
    modalities          text[] NOT NULL DEFAULT '{}',      -- ModalitiesInStudy
    num_series          integer NOT NULL DEFAULT 0,
    num_instances       integer NOT NULL DEFAULT 0,
    size_bytes          bigint NOT NULL DEFAULT 0,
    attributes          jsonb NOT NULL DEFAULT '{}'::jsonb, -- Patient and Study module attributes, DICOM JSON
    received_at         timestamptz NOT NULL DEFAULT now(), -- first instance
    updated_at          timestamptz NOT NULL DEFAULT now()  -- last instance
);
CREATE INDEX studies_facility_date ON imaging.studies (facility_id, study_date, study_time);
CREATE INDEX studies_facility_patient_id ON imaging.studies (facility_id, patient_id);
CREATE INDEX studies_facility_accession ON imaging.studies (facility_id, accession_number);
CREATE INDEX studies_facility_pn_alpha ON imaging.studies (facility_id, pn_alpha);
CREATE INDEX studies_facility_pn_ideographic ON imaging.studies (facility_id, pn_ideographic);
CREATE INDEX studies_facility_pn_phonetic ON imaging.studies (facility_id, pn_phonetic);
CREATE INDEX studies_facility_received ON imaging.studies (facility_id, received_at DESC);
-- QIDO's answer order: an unfiltered (or loosely filtered) search walks this and stops at the page's end.
CREATE INDEX studies_order ON imaging.studies (study_date DESC NULLS LAST, study_time DESC NULLS LAST,
    study_instance_uid);
CREATE INDEX studies_patient ON imaging.studies (patient_ref);

CREATE TABLE imaging.series (
    id                   uuid PRIMARY KEY,
    facility_id          uuid NOT NULL,                   -- the study's owner facility
    study_ref            uuid NOT NULL REFERENCES imaging.studies (id) ON DELETE CASCADE,
    series_instance_uid  text COLLATE "C" NOT NULL UNIQUE,
    modality             text COLLATE "C" NOT NULL DEFAULT '',
    series_number        integer,
    series_description   text NOT NULL DEFAULT '',
    performed_start_date date,                            -- PerformedProcedureStepStartDate
    num_instances        integer NOT NULL DEFAULT 0,
    size_bytes           bigint NOT NULL DEFAULT 0,
    attributes           jsonb NOT NULL DEFAULT '{}'::jsonb, -- Series (and equipment) module attributes
    received_at          timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX series_study ON imaging.series (study_ref, series_number);
CREATE INDEX series_facility_modality ON imaging.series (facility_id, modality);

CREATE TABLE imaging.instances (
    id                   uuid PRIMARY KEY,
    facility_id          uuid NOT NULL,                   -- the study's owner facility
    source_facility_id   uuid NOT NULL,                   -- the facility that sent this instance
    study_ref            uuid NOT NULL REFERENCES imaging.studies (id) ON DELETE CASCADE,
    series_ref           uuid NOT NULL REFERENCES imaging.series (id) ON DELETE CASCADE,
    sop_instance_uid     text COLLATE "C" NOT NULL UNIQUE,
    sop_class_uid        text COLLATE "C" NOT NULL,
    instance_number      integer,
    transfer_syntax_uid  text COLLATE "C" NOT NULL,
    number_of_frames     integer,                         -- NULL for instances without pixel data
    pixel_data_offset    bigint,                          -- native pixel data: where its value starts in the file
    pixel_data_length    bigint,
    object_key           text NOT NULL,
    size_bytes           bigint NOT NULL,
    sha256               text NOT NULL,
    metadata             jsonb NOT NULL,                  -- DICOM JSON; BulkDataURI values start with $DW$/
    origin               text NOT NULL CHECK (origin IN ('stow', 'dimse', 'web')),
    source_ae_title      text,                            -- DIMSE calling AE title
    received_by          uuid,                            -- the user (STOW, web); NULL for DIMSE
    received_at          timestamptz NOT NULL DEFAULT now(),
    replaced_at          timestamptz                      -- set when a later copy with other bytes replaced it
);
CREATE INDEX instances_series ON imaging.instances (series_ref, instance_number);
CREATE INDEX instances_study ON imaging.instances (study_ref);
CREATE INDEX instances_facility_sop_class ON imaging.instances (facility_id, sop_class_uid);
CREATE INDEX instances_facility_received ON imaging.instances (facility_id, received_at DESC);

-- Row-level security, the second wall: the same rule as platform.may_see_facility(facility_id), written so that
-- the caller's facilities are parsed once per query (an InitPlan), not once per row: with 1,000,000 rows the
-- per-row form costs ~6 us a row (300 ms for a full scan of 50,000 studies), this one nothing measurable.
ALTER TABLE imaging.patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.patients FORCE ROW LEVEL SECURITY;
CREATE POLICY patients_by_facility ON imaging.patients
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

ALTER TABLE imaging.studies ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.studies FORCE ROW LEVEL SECURITY;
CREATE POLICY studies_by_facility ON imaging.studies
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

ALTER TABLE imaging.series ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.series FORCE ROW LEVEL SECURITY;
CREATE POLICY series_by_facility ON imaging.series
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

ALTER TABLE imaging.instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.instances FORCE ROW LEVEL SECURITY;
CREATE POLICY instances_by_facility ON imaging.instances
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

-- Whether a Study Instance UID is archived at all, whoever owns it (a boolean, nothing else). UIDs are global:
-- STOW-RS to /studies/{study} of a study the caller may not see answers 404, exactly like a study that does
-- not exist, rather than starting a second copy. It reads as the platform (app.system) for that one check.
CREATE FUNCTION imaging.study_uid_taken(uid text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET app.system = 'on' SET search_path = pg_catalog, imaging AS $$
    SELECT EXISTS (SELECT 1 FROM imaging.studies WHERE study_instance_uid = uid)
$$;
