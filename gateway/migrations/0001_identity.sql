-- Identity of the platform: the facility tree, users, and rotating refresh tokens.
-- The gateway is the only reader and writer of this schema (role th_app; the runner grants DML).
-- Tenancy of the admin API (a facility admin sees their own subtree) is applied in
-- gateway/identity/repository.py's WHERE clauses.

CREATE TABLE gateway.facilities (
    id                uuid PRIMARY KEY,
    parent_id         uuid REFERENCES gateway.facilities (id),
    kind              text NOT NULL CHECK (kind IN ('region', 'hospital', 'township', 'village')),
    level             text,
    code              text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{1,39}$'),
    name_zh           text NOT NULL CHECK (length(btrim(name_zh)) > 0),
    name_en           text NOT NULL DEFAULT '',
    -- The hospital that reads this facility's imaging, ECG and pathology (the standing 医共体 relationship).
    reading_centre_id uuid REFERENCES gateway.facilities (id),
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id),
    CHECK (reading_centre_id IS DISTINCT FROM id)
);
CREATE INDEX facilities_parent ON gateway.facilities (parent_id);
CREATE INDEX facilities_reading_centre ON gateway.facilities (reading_centre_id)
    WHERE reading_centre_id IS NOT NULL;

CREATE TABLE gateway.users (
    id               uuid PRIMARY KEY,
    username         text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{2,63}$'),
    display_name     text NOT NULL CHECK (length(btrim(display_name)) > 0),
    facility_id      uuid NOT NULL REFERENCES gateway.facilities (id),
    roles            text[] NOT NULL CHECK (
        cardinality(roles) > 0
        AND roles <@ ARRAY['township_doctor', 'technician', 'specialist', 'public_health',
                           'facility_admin', 'bureau_analyst', 'platform_admin']::text[]),
    password_hash    text NOT NULL,
    -- AES-256-GCM ciphertext of the base32 TOTP secret (gateway/identity/mfa.py); never returned after
    -- enrolment. Administrators must have one.
    totp_secret      bytea,
    totp_enrolled_at timestamptz,
    failed_attempts  integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until     timestamptz,
    active           boolean NOT NULL DEFAULT true,
    last_login_at    timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admins_have_second_factor CHECK (
        NOT (roles && ARRAY['facility_admin', 'platform_admin']::text[]) OR totp_secret IS NOT NULL)
);
CREATE INDEX users_facility ON gateway.users (facility_id);

CREATE TABLE gateway.refresh_tokens (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES gateway.users (id) ON DELETE CASCADE,
    -- Every token rotated from one login shares the family; reuse of a rotated token revokes it all.
    family_id     uuid NOT NULL,
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),  -- sha256 of the opaque token
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    rotated_at    timestamptz,
    revoked_at    timestamptz,
    revoke_reason text,
    user_agent    text,
    client_addr   text
);
CREATE INDEX refresh_tokens_family ON gateway.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_live ON gateway.refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_expires ON gateway.refresh_tokens (expires_at);
