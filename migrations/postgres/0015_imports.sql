-- Comments brought in by `replyguard import`: each by its source (the export's format) and its
-- id there, so that importing the same file again adds nothing, and a reply finds its parent.
-- A comment deleted since keeps its row, with no comment: it is not imported again.
CREATE TABLE imported_comments (
    site_id     uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    source      text NOT NULL,
    source_id   text NOT NULL,
    comment_id  uuid REFERENCES comments (id) ON DELETE SET NULL,
    PRIMARY KEY (site_id, source, source_id)
);
-- Deleting a comment finds its row here by this index, not by a scan.
CREATE INDEX imported_comments_comment ON imported_comments (comment_id);
