-- A client address's history, read for every reply: the time of its latest
-- reply is the last entry of its range in `comments_ip`, and its spam a range
-- of the small `comments_ip_spam`, so a shared address (a carrier's NAT, an
-- office) with thousands of replies costs a reply two index probes instead of
-- a walk over all of them.
DROP INDEX comments_ip;
CREATE INDEX comments_ip ON comments (site_id, ip, created_at) WHERE ip IS NOT NULL;
CREATE INDEX comments_ip_spam ON comments (site_id, ip) WHERE status = 'spam' AND ip IS NOT NULL;
