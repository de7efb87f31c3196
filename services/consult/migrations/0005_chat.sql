-- The consult's chat (docs/consult.md "Chat"): text messages and files (image or document, kept in object
-- storage). Persisted before they are broadcast; part of the consult's record, so append-only.

CREATE TABLE consult.messages (
    id                  uuid PRIMARY KEY,
    consult_id          uuid NOT NULL REFERENCES consult.consults (id) ON DELETE CASCADE,
    facility_id         uuid NOT NULL,
    target_facility_id  uuid NOT NULL,
    author_id           uuid NOT NULL,
    author_name         text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('text', 'file')),
    text                text NOT NULL DEFAULT '',
    file_key            text,
    file_name           text,
    content_type        text,
    size_bytes          bigint,
    sha256              text,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (kind <> 'file' OR (file_key IS NOT NULL AND size_bytes IS NOT NULL)),
    CHECK (kind <> 'text' OR length(text) > 0)
);
CREATE INDEX messages_history ON consult.messages (consult_id, created_at DESC, id DESC);

CREATE TRIGGER messages_append_only BEFORE UPDATE OR DELETE ON consult.messages
    FOR EACH ROW EXECUTE FUNCTION platform.append_only();

SELECT platform.scope_to_facilities('consult.messages', 'facility_id', 'target_facility_id');
