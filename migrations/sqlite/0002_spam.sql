-- What the spam assessment needs from storage: each reply's fingerprint and
-- classifier features, the site's learned statistics, used form tokens.

-- SimHash of the text, for near-duplicates across authors and articles.
ALTER TABLE comments ADD COLUMN fingerprint INTEGER;
-- The classifier's features (little-endian u64s), so that a decision teaches
-- exactly what the assessment saw.
ALTER TABLE comments ADD COLUMN features BLOB;
-- A client address's earlier replies: flooding and spam history.
CREATE INDEX comments_ip ON comments (site_id, ip) WHERE ip IS NOT NULL;
-- An author's latest reply and history (status kept for the counts).
CREATE INDEX comments_author_time ON comments (site_id, author_hash, created_at);
-- The most recent replies of a site, newest first.
CREATE INDEX comments_recent ON comments (site_id, id) WHERE fingerprint IS NOT NULL;
-- SQLite can drop its parent lookups on delete with this.
CREATE INDEX comments_parent ON comments (parent_id) WHERE parent_id IS NOT NULL;

-- Learned statistics: additive, so concurrent lessons never overwrite each other.
CREATE TABLE spam_features (
    site_id BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    feature INTEGER NOT NULL,
    spam    REAL NOT NULL,
    ham     REAL NOT NULL,
    PRIMARY KEY (site_id, feature)
) WITHOUT ROWID;

CREATE TABLE spam_totals (
    site_id BLOB PRIMARY KEY NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    spam    REAL NOT NULL,
    ham     REAL NOT NULL
);

-- Form tokens already used, so that one is accepted once.
CREATE TABLE form_nonces (
    site_id BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    nonce   BLOB NOT NULL,
    used_at TEXT NOT NULL,
    PRIMARY KEY (site_id, nonce)
) WITHOUT ROWID;
