-- DIMSE peers (modalities, workstations, other archives) registered per facility: the listener
-- (services/imaging/dimse.py) refuses an association whose calling AE title is not here and active, and
-- acts for the AE's facility only (its C-STOREs are that facility's studies; its C-FIND / C-GET / C-MOVE
-- see that facility's studies). host/port are where C-MOVE sends to when the AE is a move destination.
-- Demo AEs for the township centres are added by the listener at start outside production
-- (services/imaging/dimse_registry.py, ensure_demo_aes), not by this migration.

CREATE TABLE imaging.ae_titles (
    ae_title     text COLLATE "C" PRIMARY KEY
                 CHECK (length(ae_title) BETWEEN 1 AND 16 AND ae_title !~ '[^ -~]' AND strpos(ae_title, chr(92)) = 0
                        AND ae_title = btrim(ae_title)),
    facility_id  uuid NOT NULL,
    host         text,
    port         integer CHECK (port BETWEEN 1 AND 65535),
    description  text NOT NULL DEFAULT '',
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((host IS NULL) = (port IS NULL))
);
CREATE INDEX ae_titles_facility ON imaging.ae_titles (facility_id);

ALTER TABLE imaging.ae_titles ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.ae_titles FORCE ROW LEVEL SECURITY;
CREATE POLICY ae_titles_by_facility ON imaging.ae_titles
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
