-- The database's wall behind "a signed document never changes" (reports, consult opinions), in one place.
--
-- platform.keep_signed_document(): a BEFORE UPDATE OR DELETE row trigger for a table with signed_at. Once
-- OLD.signed_at is set, the row cannot be deleted and no column may change except the ones named in the
-- trigger's arguments (bookkeeping that follows signing: rendered PDF key, acknowledgement...). Comparing the
-- whole row as jsonb means a column added later is protected without touching the trigger.
--   CREATE TRIGGER opinions_signed_immutable BEFORE UPDATE OR DELETE ON consult.opinions FOR EACH ROW
--       EXECUTE FUNCTION platform.keep_signed_document('pdf_key', 'acknowledged_at');
--
-- platform.append_only(): refuses every UPDATE and DELETE (addenda, chat messages).

CREATE OR REPLACE FUNCTION platform.keep_signed_document() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := coalesce(TG_ARGV::text[], ARRAY[]::text[]);
BEGIN
    IF OLD.signed_at IS NULL THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'a signed % cannot be deleted (row %)', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (to_jsonb(NEW) - mutable) IS DISTINCT FROM (to_jsonb(OLD) - mutable) THEN
        RAISE EXCEPTION 'a signed % is immutable (row %)', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION platform.append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$;
