-- The row-level-security policy of a table whose rows belong to more than one facility at once (a consult:
-- the requesting facility and the facility asked). Same fast shape as platform.scope_to_facility (the
-- caller's facilities computed once per query), over each named column:
--   (SELECT platform.is_system()) OR c1 = ANY (...) OR c2 = ANY (...)
-- A service's migration calls: SELECT platform.scope_to_facilities('<schema>.<table>', 'facility_id', 'x_id');

CREATE OR REPLACE FUNCTION platform.scope_to_facilities(target regclass, VARIADIC columns text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    qualified text;
    col text;
    rule text := '(SELECT platform.is_system())';
BEGIN
    IF coalesce(array_length(columns, 1), 0) = 0 THEN
        RAISE EXCEPTION 'scope_to_facilities needs at least one column';
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname) INTO qualified
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    FOREACH col IN ARRAY columns LOOP
        rule := rule || format(' OR %I = ANY ((SELECT platform.visible_facilities())::uuid[])', col);
    END LOOP;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', qualified);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', qualified);
    EXECUTE format('DROP POLICY IF EXISTS facility_scope ON %s', qualified);
    EXECUTE format('CREATE POLICY facility_scope ON %s USING (%s) WITH CHECK (%s)', qualified, rule, rule);
END
$$;
