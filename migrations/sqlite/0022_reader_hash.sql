-- The host's own id of a signed-in reader (`SubmitComment.reader_id`), kept as a
-- keyed hash per site, never in the clear: when a reply has one, its author's
-- trust (`history-trusted`, `hold-new-authors`, `trusted-only`) is counted over
-- the reader's replies rather than the typed email's. NULL for a reply without
-- one and for every reply before this migration; an erasure clears it. The same
-- column as migrations/postgres/0022_reader_hash.sql.
ALTER TABLE comments ADD COLUMN reader_hash BLOB;
CREATE INDEX comments_reader ON comments (site_id, reader_hash, status)
    WHERE reader_hash IS NOT NULL;
