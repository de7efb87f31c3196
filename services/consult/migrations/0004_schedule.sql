-- Scheduling (docs/consult.md "Scheduling"): specialists publish availability windows, split into slots;
-- the requester books one slot for an accepted consult. A slot is booked once: the partial unique index
-- bookings_slot_once refuses a second active booking of a slot (also when two transactions race: the second
-- waits for the first and then fails), and a consult holds at most one active booking.
--
-- Availability and slots are a timetable, not patient data: every clinician must be able to read the target
-- facility's free slots, so they carry ``specialist_facility_id`` (not ``facility_id``) and a policy of their
-- own: readable by every caller, written only by the specialist's facility (or the platform). Marking a slot
-- taken (slots.booking_id) is done by the booking transaction of the requesting side, so UPDATE is open; the
-- service decides who books, and bookings_slot_once is the wall. Bookings belong to a consult: both facility
-- columns and the consult policy.

CREATE TABLE consult.availability (
    id                      uuid PRIMARY KEY,
    specialist_id           uuid NOT NULL,
    specialist_name         text NOT NULL,
    specialist_facility_id  uuid NOT NULL,
    starts_at               timestamptz NOT NULL,
    ends_at                 timestamptz NOT NULL,
    slot_minutes            integer NOT NULL CHECK (slot_minutes BETWEEN 5 AND 240),
    note                    text NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX availability_specialist ON consult.availability (specialist_id, starts_at);

CREATE TABLE consult.slots (
    id                      uuid PRIMARY KEY,
    availability_id         uuid NOT NULL REFERENCES consult.availability (id) ON DELETE CASCADE,
    specialist_id           uuid NOT NULL,
    specialist_name         text NOT NULL,
    specialist_facility_id  uuid NOT NULL,
    starts_at               timestamptz NOT NULL,
    ends_at                 timestamptz NOT NULL,
    booking_id              uuid,                      -- the active booking (NULL: free)
    CHECK (ends_at > starts_at),
    UNIQUE (specialist_id, starts_at)
);
CREATE INDEX slots_free ON consult.slots (specialist_facility_id, starts_at) WHERE booking_id IS NULL;

CREATE TABLE consult.bookings (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    slot_id             uuid REFERENCES consult.slots (id) ON DELETE SET NULL,  -- NULL: availability withdrawn
    specialist_id       uuid NOT NULL,
    specialist_name     text NOT NULL,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    booked_by           uuid NOT NULL,
    booked_by_name      text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    released_at         timestamptz,                   -- rescheduled or cancelled: the slot is free again
    released_by         uuid,
    reminded_24h_at     timestamptz,                   -- consult.reminder sent (or skipped: booked too late)
    reminded_15m_at     timestamptz
);
CREATE UNIQUE INDEX bookings_slot_once ON consult.bookings (slot_id) WHERE released_at IS NULL;
CREATE UNIQUE INDEX bookings_consult_once ON consult.bookings (consult_id) WHERE released_at IS NULL;
CREATE INDEX bookings_consult ON consult.bookings (consult_id, created_at);
CREATE INDEX bookings_reminders ON consult.bookings (starts_at)
    WHERE released_at IS NULL AND (reminded_24h_at IS NULL OR reminded_15m_at IS NULL);

ALTER TABLE consult.availability ENABLE ROW LEVEL SECURITY;
ALTER TABLE consult.availability FORCE ROW LEVEL SECURITY;
CREATE POLICY timetable_read ON consult.availability FOR SELECT USING (true);
CREATE POLICY timetable_write ON consult.availability FOR ALL
    USING ((SELECT platform.is_system())
           OR specialist_facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system())
                OR specialist_facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

ALTER TABLE consult.slots ENABLE ROW LEVEL SECURITY;
ALTER TABLE consult.slots FORCE ROW LEVEL SECURITY;
CREATE POLICY timetable_read ON consult.slots FOR SELECT USING (true);
CREATE POLICY timetable_mark ON consult.slots FOR UPDATE USING (true) WITH CHECK (true);
CREATE POLICY timetable_insert ON consult.slots FOR INSERT
    WITH CHECK ((SELECT platform.is_system())
                OR specialist_facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
CREATE POLICY timetable_delete ON consult.slots FOR DELETE
    USING ((SELECT platform.is_system())
           OR specialist_facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));

SELECT platform.scope_to_facilities('consult.bookings', 'facility_id', 'target_facility_id');
