-- What the spam assessment needs from storage: each reply's fingerprint and
-- classifier features, the site's learned statistics, used form tokens.

-- SimHash of the text (the u64 bit-cast to bigint).
ALTER TABLE comments ADD COLUMN fingerprint bigint;
-- The classifier's features, so that a decision teaches exactly what the
-- assessment saw.
ALTER TABLE comments ADD COLUMN features bytea;
CREATE INDEX comments_ip ON comments (site_id, ip) WHERE ip IS NOT NULL;
CREATE INDEX comments_author_time ON comments (site_id, author_hash, created_at);
CREATE INDEX comments_recent ON comments (site_id, id) WHERE fingerprint IS NOT NULL;

-- Learned statistics: additive, so replicas' concurrent lessons never
-- overwrite each other.
CREATE TABLE spam_features (
    site_id uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    feature bigint NOT NULL,
    spam    real NOT NULL,
    ham     real NOT NULL,
    PRIMARY KEY (site_id, feature)
);

CREATE TABLE spam_totals (
    site_id uuid PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    spam    real NOT NULL,
    ham     real NOT NULL
);

CREATE TABLE form_nonces (
    site_id uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    nonce   bytea NOT NULL CHECK (length(nonce) = 16),
    used_at timestamptz NOT NULL,
    PRIMARY KEY (site_id, nonce)
);
