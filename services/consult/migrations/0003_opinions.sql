-- The consultant's opinion (docs/consult.md "Opinion"): a draft while written, immutable once signed
-- (SHA-256 over content + signer + time), addenda afterwards, the requester's acknowledgement. The shared
-- trigger platform.keep_signed_document (common/migrations/platform/0005) is the wall behind the service's
-- 409: after signing only the named bookkeeping columns may change (the acknowledgement, the cached PDF).

CREATE TABLE consult.opinions (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL UNIQUE REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    author_id           uuid NOT NULL,
    author_name         text NOT NULL,
    findings            text NOT NULL DEFAULT '',
    diagnosis           text NOT NULL DEFAULT '',
    recommendations     text NOT NULL DEFAULT '',
    follow_up           text NOT NULL DEFAULT '',
    referral_advised    boolean NOT NULL DEFAULT false,
    version             integer NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    signed_at           timestamptz,
    signed_by           uuid,
    signer_name         text,
    content_hash        text,
    acknowledged_at     timestamptz,
    acknowledged_by     uuid,
    acknowledged_name   text,
    pdf_key             text,                          -- the newest rendering (object storage)
    pdf_version         integer NOT NULL DEFAULT 0,     -- what it includes: addenda + acknowledgement
    CHECK ((signed_at IS NULL) = (content_hash IS NULL)),
    CHECK (acknowledged_at IS NULL OR signed_at IS NOT NULL)
);

CREATE TABLE consult.opinion_addenda (
    id                  uuid PRIMARY KEY,
    opinion_id          uuid NOT NULL REFERENCES consult.opinions (id) ON DELETE CASCADE,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    author_id           uuid NOT NULL,
    author_name         text NOT NULL,
    text                text NOT NULL,
    content_hash        text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX opinion_addenda_opinion ON consult.opinion_addenda (opinion_id, created_at);

CREATE TRIGGER opinions_signed_immutable BEFORE UPDATE OR DELETE ON consult.opinions
    FOR EACH ROW EXECUTE FUNCTION platform.keep_signed_document(
        'acknowledged_at', 'acknowledged_by', 'acknowledged_name', 'pdf_key', 'pdf_version');
CREATE TRIGGER opinion_addenda_append_only BEFORE UPDATE OR DELETE ON consult.opinion_addenda
    FOR EACH ROW EXECUTE FUNCTION platform.append_only();

SELECT platform.scope_to_facilities('consult.opinions', 'facility_id', 'target_facility_id');
SELECT platform.scope_to_facilities('consult.opinion_addenda', 'facility_id', 'target_facility_id');
