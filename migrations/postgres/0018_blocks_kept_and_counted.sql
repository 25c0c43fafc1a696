-- Blocks with a lifetime and a record, and the moderator's note kept with a
-- block and a closed article. The same columns as
-- migrations/sqlite/0020_blocks_kept_and_counted.sql.
ALTER TABLE blocklist ADD COLUMN note text NOT NULL DEFAULT '';
ALTER TABLE blocklist ADD COLUMN expires_at timestamptz;
ALTER TABLE blocklist ADD COLUMN hits bigint NOT NULL DEFAULT 0;
ALTER TABLE blocklist ADD COLUMN last_hit_at timestamptz;
CREATE INDEX blocklist_expiry ON blocklist (expires_at) WHERE expires_at IS NOT NULL;

ALTER TABLE closed_articles ADD COLUMN note text NOT NULL DEFAULT '';
