-- Readers' reports of a comment (`ReportComment`): one row per comment and
-- reporting reader, who is known only by a keyed hash of the id the host
-- gave, so that one reader counts once. A moderator's decision on the
-- comment clears its reports; a deleted comment takes them with it.
CREATE TABLE reports (
    comment_id    BLOB NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    reporter_hash BLOB NOT NULL,
    site_id       BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    reason        TEXT NOT NULL
                  CHECK (reason IN ('spam', 'abuse', 'off-topic', 'personal-data', 'illegal')),
    text          TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    PRIMARY KEY (comment_id, reporter_hash)
);
CREATE INDEX reports_site ON reports (site_id, comment_id);
