-- The audit trail: append-only and hash-chained.
-- Every row's hash covers the previous row's hash and the row's own fields, so an edit, a deletion or a
-- reordering breaks the chain (common.audit.verify_chain finds where). The application role may only
-- INSERT and SELECT; triggers refuse UPDATE, DELETE and TRUNCATE even to the owner.

CREATE TABLE audit.events (
    seq          bigint PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    source       text NOT NULL,
    actor_id     uuid,
    actor_name   text,
    actor_role   text,
    facility_id  uuid,
    action       text NOT NULL,
    object_type  text,
    object_id    text,
    outcome      text NOT NULL,
    status_code  integer,
    client_addr  text,
    request_id   text,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL
);

CREATE INDEX events_occurred_at ON audit.events (occurred_at);
CREATE INDEX events_actor ON audit.events (actor_id, occurred_at);
CREATE INDEX events_facility ON audit.events (facility_id, occurred_at);
CREATE INDEX events_object ON audit.events (object_type, object_id);

-- The canonical text a row's hash covers. common/audit.py computes the same in Python to verify.
CREATE FUNCTION audit.canonical(e audit.events) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT concat_ws(chr(31),
        e.seq::text,
        ((extract(epoch FROM e.occurred_at) * 1000000)::bigint)::text,
        e.source,
        coalesce(e.actor_id::text, ''),
        coalesce(e.actor_name, ''),
        coalesce(e.actor_role, ''),
        coalesce(e.facility_id::text, ''),
        e.action,
        coalesce(e.object_type, ''),
        coalesce(e.object_id, ''),
        e.outcome,
        coalesce(e.status_code::text, ''),
        coalesce(e.client_addr, ''),
        coalesce(e.request_id, ''),
        e.detail::text,
        encode(e.prev_hash, 'hex'))
$$;

CREATE FUNCTION audit.chain_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = audit, pg_catalog AS $$
DECLARE
    last_seq bigint;
    last_hash bytea;
BEGIN
    -- One writer at a time extends the chain; the lock ends with the inserting transaction.
    PERFORM pg_advisory_xact_lock(7262536);
    SELECT seq, hash INTO last_seq, last_hash FROM audit.events ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.occurred_at := date_trunc('microseconds', clock_timestamp());
    NEW.prev_hash := coalesce(last_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    NEW.hash := sha256(NEW.prev_hash || convert_to(audit.canonical(NEW), 'UTF8'));
    RETURN NEW;
END
$$;

CREATE TRIGGER events_chain BEFORE INSERT ON audit.events
    FOR EACH ROW EXECUTE FUNCTION audit.chain_event();

CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

REVOKE ALL ON audit.events FROM PUBLIC;
GRANT SELECT, INSERT ON audit.events TO th_app;
