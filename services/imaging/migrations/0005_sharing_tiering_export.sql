-- Sharing (share links and grants), cold tiering and de-identified exports (issue 4, items 4, 6 and 7).
-- facility_id on every table is the study's OWNER facility; row-level security scopes by it. The share-link
-- and grant lookups that must work for callers outside that facility (a link holder without an account, a
-- specialist of another hospital) run as the platform (app.system) in services/imaging/sharing.py and return
-- only the one study the share or grant names.

-- A share link: only the sha256 of its token is kept. Expiry is required; a revoked or expired link is refused.
CREATE TABLE imaging.shares (
    id             uuid PRIMARY KEY,
    facility_id    uuid NOT NULL,                        -- the study's owner facility
    study_ref      uuid NOT NULL REFERENCES imaging.studies (id) ON DELETE CASCADE,
    token_hash     text COLLATE "C" NOT NULL UNIQUE,     -- hex sha256 of the token
    note           text NOT NULL DEFAULT '',
    created_by     uuid NOT NULL,
    created_by_facility uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_by     uuid,
    access_count   integer NOT NULL DEFAULT 0,
    last_access_at timestamptz
);
CREATE INDEX shares_study ON imaging.shares (study_ref, created_at DESC);

-- A grant: a study made readable beyond the standing policy (a consult's specialist; a share to a facility).
CREATE TABLE imaging.grants (
    id                   uuid PRIMARY KEY,
    facility_id          uuid NOT NULL,                  -- the study's owner facility
    study_ref            uuid NOT NULL REFERENCES imaging.studies (id) ON DELETE CASCADE,
    grantee_facility_id  uuid,
    grantee_user_id      uuid,
    reason               text NOT NULL CHECK (reason IN ('consult', 'share')),
    reference            text NOT NULL DEFAULT '',       -- e.g. the consult id
    expires_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    revoked_at           timestamptz,
    CHECK (grantee_facility_id IS NOT NULL OR grantee_user_id IS NOT NULL)
);
CREATE INDEX grants_study ON imaging.grants (study_ref);
CREATE INDEX grants_grantee_facility ON imaging.grants (grantee_facility_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_grantee_user ON imaging.grants (grantee_user_id) WHERE revoked_at IS NULL;

-- Tiering: days until a facility's studies move to the cold tier (IMAGING_COLD_AFTER_DAYS when absent).
CREATE TABLE imaging.tiering_policies (
    facility_id      uuid PRIMARY KEY,
    cold_after_days  integer NOT NULL CHECK (cold_after_days > 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE imaging.studies ADD COLUMN storage_tier text NOT NULL DEFAULT 'hot'
    CHECK (storage_tier IN ('hot', 'cold'));
ALTER TABLE imaging.studies ADD COLUMN tiered_at timestamptz;
CREATE INDEX studies_hot_received ON imaging.studies (received_at) WHERE storage_tier = 'hot';

-- De-identified exports (PS3.15 Annex E basic profile), built by the imaging.build_export task.
CREATE TABLE imaging.exports (
    id            uuid PRIMARY KEY,
    facility_id   uuid NOT NULL,                          -- the requester's facility
    requested_by  uuid NOT NULL,
    study_uids    text[] NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'ready', 'failed')),
    object_key    text,
    size_bytes    bigint,
    sha256        text,
    report        jsonb NOT NULL DEFAULT '{}'::jsonb,      -- instances written, refused (burned-in), warnings
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX exports_facility ON imaging.exports (facility_id, created_at DESC);

ALTER TABLE imaging.shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.shares FORCE ROW LEVEL SECURITY;
CREATE POLICY shares_by_facility ON imaging.shares
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
ALTER TABLE imaging.grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.grants FORCE ROW LEVEL SECURITY;
CREATE POLICY grants_by_facility ON imaging.grants
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
ALTER TABLE imaging.tiering_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.tiering_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tiering_by_facility ON imaging.tiering_policies
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
ALTER TABLE imaging.exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE imaging.exports FORCE ROW LEVEL SECURITY;
CREATE POLICY exports_by_facility ON imaging.exports
    USING ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]))
    WITH CHECK ((SELECT platform.is_system()) OR facility_id = ANY ((SELECT platform.visible_facilities())::uuid[]));
