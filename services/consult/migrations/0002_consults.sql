-- Consults: a requesting facility (facility_id, the township centre) asks a target facility
-- (target_facility_id, the hospital) for a specialist's opinion (docs/consult.md).
-- Every table carries both facility columns, copied from its consult; row-level security lets either side
-- see the row (platform.scope_to_facilities, common/migrations/platform/0004). The service narrows it further
-- in services/consult/access.py (requesting-side clinicians, target-side specialists, participants).
-- Patient display fields (name, sex, age) and consent signer names are personal data: never logged.

CREATE TABLE consult.consults (
    id                  uuid PRIMARY KEY,
    facility_id         uuid NOT NULL,                 -- the requesting facility
    requester_id        uuid NOT NULL,
    requester_name      text NOT NULL,
    patient_id          uuid,                          -- health_mgmt patient register (optional)
    patient_name        text NOT NULL DEFAULT '',
    patient_sex         text NOT NULL DEFAULT 'unknown' CHECK (patient_sex IN ('male', 'female', 'other', 'unknown')),
    patient_age         integer CHECK (patient_age IS NULL OR patient_age BETWEEN 0 AND 150),
    target_facility_id  uuid NOT NULL,
    target_department   text NOT NULL DEFAULT '',
    specialty           text NOT NULL DEFAULT '',
    consultant_id       uuid,                          -- the specialist answering (named at request or on accept)
    consultant_name     text,
    urgency             text NOT NULL DEFAULT 'routine' CHECK (urgency IN ('emergency', 'urgent', 'routine')),
    reason              text NOT NULL DEFAULT '',
    question            text NOT NULL DEFAULT '',      -- the purpose: what the requester wants answered
    clinical_summary    text NOT NULL DEFAULT '',
    preferred_time      timestamptz,                   -- the time the requester proposes (the invitation's "time")
    status              text NOT NULL DEFAULT 'draft' CHECK (status IN (
                            'draft', 'submitted', 'accepted', 'declined', 'scheduled', 'in_session',
                            'opinion_written', 'signed', 'closed', 'cancelled')),
    respond_by          timestamptz,                   -- accept/decline deadline (set on submit)
    opinion_by          timestamptz,                   -- opinion deadline (set on submit)
    overdue_at          timestamptz,                   -- first time a deadline was found missed
    escalated           text[] NOT NULL DEFAULT '{}',  -- the deadlines escalated already ('respond', 'opinion')
    escalation_level    integer NOT NULL DEFAULT 0,
    decline_reason      text,
    cancel_reason       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    submitted_at        timestamptz,
    accepted_at         timestamptz,
    declined_at         timestamptz,
    cancelled_at        timestamptz,
    closed_at           timestamptz,
    CHECK (status <> 'declined' OR coalesce(decline_reason, '') <> '')
);
CREATE INDEX consults_requesting ON consult.consults (facility_id, status, created_at DESC);
CREATE INDEX consults_target ON consult.consults (target_facility_id, status, created_at DESC);
CREATE INDEX consults_consultant ON consult.consults (consultant_id) WHERE consultant_id IS NOT NULL;
CREATE INDEX consults_open_deadlines ON consult.consults (status)
    WHERE status IN ('submitted', 'accepted', 'scheduled', 'in_session');

-- Who takes part: the requester, the consultant, up to the limit of invited colleagues (either side).
CREATE TABLE consult.participants (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    user_id             uuid NOT NULL,
    display_name        text NOT NULL,
    role                text NOT NULL CHECK (role IN ('requester', 'consultant', 'invitee')),
    user_facility_id    uuid NOT NULL,                 -- the participant's own facility
    added_by            uuid NOT NULL,
    added_at            timestamptz NOT NULL DEFAULT now(),
    removed_at          timestamptz
);
CREATE UNIQUE INDEX participants_active ON consult.participants (consult_id, user_id) WHERE removed_at IS NULL;
CREATE INDEX participants_user ON consult.participants (user_id) WHERE removed_at IS NULL;

-- The patient's informed consent (signed form in object storage, or e-consent). The latest one not withdrawn
-- is the consult's consent.
CREATE TABLE consult.consents (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    method              text NOT NULL CHECK (method IN ('signed_form', 'e_consent')),
    signer_name         text NOT NULL,
    relation            text NOT NULL,
    statement_version   text NOT NULL,
    statement_hash      text NOT NULL,                 -- sha256 of the statement text shown
    object_key          text,                          -- the signed form (signed_form only)
    content_type        text,
    size_bytes          bigint,
    sha256              text,
    recorded_by         uuid NOT NULL,
    recorded_by_name    text NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    withdrawn_at        timestamptz,
    withdrawn_by        uuid,
    CHECK (method <> 'signed_form' OR object_key IS NOT NULL)
);
CREATE INDEX consents_consult ON consult.consents (consult_id, recorded_at DESC);

-- Items attached by reference; the owning service keeps the item.
CREATE TABLE consult.attachments (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('imaging_study', 'ecg_recording', 'pathology_case')),
    ref                 text NOT NULL,
    label               text NOT NULL DEFAULT '',
    added_by            uuid NOT NULL,
    added_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consult_id, kind, ref)
);

-- The history: one row per transition.
CREATE TABLE consult.transitions (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    action              text NOT NULL,
    from_status         text NOT NULL,
    to_status           text NOT NULL,
    actor_id            uuid NOT NULL,
    actor_name          text NOT NULL,
    detail              jsonb NOT NULL DEFAULT '{}'::jsonb,
    at                  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX transitions_consult ON consult.transitions (consult_id, at);

-- Read access to attached items pushed to the owning services (services/consult/grants.py).
-- pending -> active (remote_grant_id) -> revoked; failed when the owning service refuses for good.
-- revoke_requested_at marks an active grant to withdraw (retried by consult.apply_grants until done).
CREATE TABLE consult.item_grants (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    attachment_id       uuid REFERENCES consult.attachments (id) ON DELETE SET NULL,
    kind                text NOT NULL CHECK (kind IN ('imaging_study', 'ecg_recording', 'pathology_case')),
    ref                 text NOT NULL,
    grantee_user_id     uuid NOT NULL,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'revoked', 'failed')),
    remote_grant_id     text,
    expires_at          timestamptz NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    applied_at          timestamptz,
    revoke_requested_at timestamptz,
    revoked_at          timestamptz
);
CREATE INDEX item_grants_consult ON consult.item_grants (consult_id);
CREATE INDEX item_grants_work ON consult.item_grants (created_at)
    WHERE status = 'pending' OR (status = 'active' AND revoke_requested_at IS NOT NULL);

-- Video sessions of a consult (one room each, services/consult/rooms/).
CREATE TABLE consult.sessions (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    started_by          uuid NOT NULL,
    host_user_id        uuid NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz,
    ended_by            uuid
);
CREATE INDEX sessions_consult ON consult.sessions (consult_id, started_at DESC);
CREATE UNIQUE INDEX sessions_one_open ON consult.sessions (consult_id) WHERE ended_at IS NULL;

SELECT platform.scope_to_facilities('consult.consults', 'facility_id', 'target_facility_id');
SELECT platform.scope_to_facilities('consult.participants', 'facility_id', 'target_facility_id');
SELECT platform.scope_to_facilities('consult.consents', 'facility_id', 'target_facility_id');
SELECT platform.scope_to_facilities('consult.attachments', 'facility_id', 'target_facility_id');
SELECT platform.scope_to_facilities('consult.transitions', 'facility_id', 'target_facility_id');
SELECT platform.scope_to_facilities('consult.item_grants', 'facility_id', 'target_facility_id');
SELECT platform.scope_to_facilities('consult.sessions', 'facility_id', 'target_facility_id');
