-- Grants: one recording readable by a named user (or facility) beyond the standing policy, e.g. the consultant
-- of an accepted consult. Added and withdrawn by the consult service through the internal API
-- (POST/DELETE /api/ecg/grants, X-Internal-Key); honoured by the recording's read paths (detail, signal,
-- report, report PDF/DICOM) through services/ecg/grants.py. Lookups for a grantee run as the platform.

CREATE TABLE ecg.grants (
    id                  uuid PRIMARY KEY,
    facility_id         uuid NOT NULL,                 -- the recording's owner facility
    recording_id        uuid NOT NULL REFERENCES ecg.recordings (id) ON DELETE CASCADE,
    grantee_facility_id uuid,
    grantee_user_id     uuid,
    reason              text NOT NULL CHECK (reason IN ('consult', 'share')),
    reference           text NOT NULL DEFAULT '',
    expires_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz,
    CHECK (grantee_facility_id IS NOT NULL OR grantee_user_id IS NOT NULL)
);
CREATE INDEX grants_recording ON ecg.grants (recording_id) WHERE revoked_at IS NULL;

SELECT platform.scope_to_facility('ecg.grants');
