-- The reading centre's duty roster (值班表) and who a critical value is assigned to.
--
-- ecg.duty_shifts: one row per shift of a reader (specialist) at the reading facility (facility_id). A user
-- cannot be on two shifts at once (the exclusion constraint, answered as 409 by the service).
-- ecg.reading_centres: which facilities a reading facility reads for, learned from the gateway-signed access
-- tokens of its own staff (the ``serves`` claim) whenever they use the roster or the alert feed. At alert
-- time (a Celery task with no user token) it answers "whose roster covers this recording's facility".
-- ecg.alerts gains assigned_to / assigned_names: the on-duty reader(s) when the alert was raised (and those
-- on duty when it escalated); empty means nobody was on duty (the alert is "unassigned").

CREATE EXTENSION IF NOT EXISTS btree_gist;  -- uuid equality in the exclusion constraint (a trusted extension)

CREATE TABLE ecg.duty_shifts (
    id              uuid PRIMARY KEY,
    facility_id     uuid NOT NULL,                 -- the reading facility the reader is on duty for
    user_id         uuid NOT NULL,
    display_name    text NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    created_by      uuid NOT NULL,
    created_by_name text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CONSTRAINT duty_shifts_no_overlap EXCLUDE USING gist (user_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
);
CREATE INDEX duty_shifts_facility_time ON ecg.duty_shifts (facility_id, ends_at, starts_at);

ALTER TABLE ecg.duty_shifts ENABLE ROW LEVEL SECURITY;
ALTER TABLE ecg.duty_shifts FORCE ROW LEVEL SECURITY;
CREATE POLICY duty_shifts_by_facility ON ecg.duty_shifts
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));

CREATE TABLE ecg.reading_centres (
    facility_id uuid PRIMARY KEY,                  -- the reading facility
    serves      uuid[] NOT NULL,                   -- the facilities it reads for (its staff's token `serves`)
    learned_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reading_centres_serves ON ecg.reading_centres USING gin (serves);

ALTER TABLE ecg.reading_centres ENABLE ROW LEVEL SECURITY;
ALTER TABLE ecg.reading_centres FORCE ROW LEVEL SECURITY;
CREATE POLICY reading_centres_by_facility ON ecg.reading_centres
    USING (platform.may_see_facility(facility_id))
    WITH CHECK (platform.may_see_facility(facility_id));

ALTER TABLE ecg.alerts
    ADD COLUMN assigned_to    uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN assigned_names text[] NOT NULL DEFAULT '{}';
