-- Readers' reports of a comment (`ReportComment`). The same table as
-- migrations/sqlite/0021_reports.sql.
CREATE TABLE reports (
    comment_id    uuid NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    reporter_hash bytea NOT NULL,
    site_id       uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    reason        text NOT NULL
                  CHECK (reason IN ('spam', 'abuse', 'off-topic', 'personal-data', 'illegal')),
    text          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (comment_id, reporter_hash)
);
CREATE INDEX reports_site ON reports (site_id, comment_id);
