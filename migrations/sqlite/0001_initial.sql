-- Sites, credentials, comments and the audit log.
-- Ids are UUIDv7 stored as 16-byte blobs; times are UTC RFC 3339 text.

CREATE TABLE sites (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    policy      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('host', 'moderator')),
    -- The token's first characters, shown to operators to name it.
    prefix      TEXT NOT NULL,
    -- SHA-256 of the whole token; the token itself is never stored.
    digest      BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX tokens_prefix ON tokens (prefix);

CREATE TABLE token_sites (
    token_id    BLOB NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    site_id     BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, site_id)
);

CREATE TABLE comments (
    id              BLOB PRIMARY KEY NOT NULL,
    site_id         BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    article         TEXT NOT NULL,
    parent_id       BLOB REFERENCES comments (id) ON DELETE SET NULL,
    -- The thread's top-level comment, and the dot-separated hex ids from it
    -- down to this comment: sorting by path puts a parent before its replies.
    root_id         BLOB NOT NULL,
    path            TEXT NOT NULL,
    depth           INTEGER NOT NULL CHECK (depth >= 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'spam', 'rejected')),
    author_name     TEXT NOT NULL,
    author_website  TEXT,
    -- The email, sealed with XChaCha20-Poly1305; never stored in the clear.
    email_sealed    BLOB NOT NULL,
    -- HMAC-SHA256 of the normalised email under a per-deployment key.
    author_hash     BLOB NOT NULL,
    avatar_seed     TEXT NOT NULL,
    body            TEXT NOT NULL,
    body_public     TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    referrer        TEXT,
    score           REAL NOT NULL,
    verdict         TEXT NOT NULL CHECK (verdict IN ('approve', 'hold', 'spam')),
    reasons         TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
-- Threads of one article: ListComments, CountComments.
CREATE INDEX comments_thread ON comments (site_id, article, status, root_id, path);
-- Queues: ListQueue, oldest first.
CREATE INDEX comments_queue ON comments (site_id, status, id);
-- An author's history: trust and erasure.
CREATE INDEX comments_author ON comments (site_id, author_hash, status);
CREATE UNIQUE INDEX comments_idempotency ON comments (site_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE audit_log (
    id          BLOB PRIMARY KEY NOT NULL,
    site_id     BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    -- Not a foreign key: the record outlives a deleted comment.
    comment_id  BLOB,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    note        TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX audit_log_comment ON audit_log (comment_id, id);
CREATE INDEX audit_log_site ON audit_log (site_id, id);
