-- Recordings of video sessions (services/consult/rooms/recording.py): one row per recorded track file, kept in
-- object storage. ``recording_id`` groups the files of one start..stop of a session's recording. Made only
-- when every participant in the room consented (checked by the room); ``consented_user_ids`` keeps who did.
CREATE TABLE consult.recordings (
    id                  uuid PRIMARY KEY,
    recording_id        uuid NOT NULL,
    session_id          uuid NOT NULL REFERENCES consult.sessions (id) ON DELETE CASCADE,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    participant_user_id uuid NOT NULL,                 -- whose camera or microphone
    kind                text NOT NULL CHECK (kind IN ('audio', 'video')),
    object_key          text NOT NULL,
    content_type        text NOT NULL,
    size_bytes          bigint NOT NULL,
    duration_seconds    double precision NOT NULL,
    started_by          uuid NOT NULL,
    consented_user_ids  uuid[] NOT NULL,
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recordings_consult ON consult.recordings (consult_id, started_at);
CREATE INDEX recordings_session ON consult.recordings (session_id);

SELECT platform.scope_to_facilities('consult.recordings', 'facility_id', 'target_facility_id');
