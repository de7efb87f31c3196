-- The patient register of a facility (township centres register; served readers may look).
-- Rows are scoped by facility_id in every query and, as a second wall, by row-level security.

CREATE TABLE health_mgmt.patients (
    id           uuid PRIMARY KEY,
    facility_id  uuid NOT NULL,
    id_number    text,                      -- 居民身份证号 (GB 11643), validated by the service
    name         text NOT NULL,
    sex          text NOT NULL CHECK (sex IN ('male', 'female', 'unknown')),
    birth_date   date,
    phone        text,
    address      text,
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    version      integer NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX patients_facility_id_number ON health_mgmt.patients (facility_id, id_number)
    WHERE id_number IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX patients_facility_name ON health_mgmt.patients (facility_id, name);
CREATE INDEX patients_facility_created ON health_mgmt.patients (facility_id, created_at DESC);

ALTER TABLE health_mgmt.patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE health_mgmt.patients FORCE ROW LEVEL SECURITY;
CREATE POLICY patients_by_facility ON health_mgmt.patients
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));
