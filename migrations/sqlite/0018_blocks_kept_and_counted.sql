-- Blocks with a lifetime and a record, and the moderator's note kept with a
-- block and a closed article. A block may end (`expires_at`; NULL keeps it
-- until it is taken off), and the retention sweep takes off the ended ones.
-- `hits` counts the replies the entry caught, `last_hit_at` the latest.
ALTER TABLE blocklist ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE blocklist ADD COLUMN expires_at TEXT;
ALTER TABLE blocklist ADD COLUMN hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blocklist ADD COLUMN last_hit_at TEXT;
CREATE INDEX blocklist_expiry ON blocklist (expires_at) WHERE expires_at IS NOT NULL;

ALTER TABLE closed_articles ADD COLUMN note TEXT NOT NULL DEFAULT '';
