-- Four indexes of `comments` become two. An author's counts by status and the
-- time of their latest reply come from one index, (site, author, status,
-- created_at): the counts read the author's entries, as they did, and the
-- latest reply is the last entry of one of four status ranges. The same for a
-- client address, whose spam count is then one of those ranges. Every new
-- reply is written to two fewer indexes.
DROP INDEX comments_author;
DROP INDEX comments_author_time;
CREATE INDEX comments_author ON comments (site_id, author_hash, status, created_at);
DROP INDEX comments_ip;
DROP INDEX comments_ip_spam;
CREATE INDEX comments_ip ON comments (site_id, ip, status, created_at) WHERE ip IS NOT NULL;
-- The site's recent replies, read for every new one, from the index alone: it
-- holds what the near-duplicate rule compares (the fingerprint) and what it
-- leaves out (the author's own replies under the same article).
DROP INDEX comments_recent;
CREATE INDEX comments_recent ON comments (site_id, id, fingerprint, author_hash, article)
    WHERE fingerprint IS NOT NULL;
