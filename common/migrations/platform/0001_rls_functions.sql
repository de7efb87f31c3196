-- Functions the row-level-security policies of every clinical table call.
-- The caller is carried per transaction by common.db.set_principal().

CREATE OR REPLACE FUNCTION platform.visible_facilities() RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN coalesce(current_setting('app.facility_ids', true), '') = '' THEN ARRAY[]::uuid[]
        ELSE string_to_array(current_setting('app.facility_ids', true), ',')::uuid[]
    END
$$;

CREATE OR REPLACE FUNCTION platform.is_system() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('app.system', true), 'off') = 'on'
$$;

CREATE OR REPLACE FUNCTION platform.current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('app.user_id', true), '')::uuid
$$;

-- The standard policy for a table with facility_id: the platform itself, or a visible facility.
CREATE OR REPLACE FUNCTION platform.may_see_facility(fid uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT platform.is_system() OR fid = ANY (platform.visible_facilities())
$$;
