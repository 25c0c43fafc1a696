-- Sites, credentials, comments and the audit log: the same tables and
-- columns as migrations/sqlite, in PostgreSQL's own types.
-- Ids are UUIDv7 (`uuid` compares bytewise, as SQLite compares the blobs),
-- times are `timestamptz` (microseconds; the service truncates to them).

CREATE TABLE sites (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    policy      jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT sites_name_unique UNIQUE (name)
);

CREATE TABLE tokens (
    id          uuid PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('host', 'moderator')),
    -- The token's first characters, shown to operators to name it. "C" so
    -- that `starts_with` can use the index.
    prefix      text COLLATE "C" NOT NULL,
    -- SHA-256 of the whole token; the token itself is never stored.
    digest      bytea NOT NULL CHECK (octet_length(digest) = 32),
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT tokens_digest_unique UNIQUE (digest)
);
-- `replyguard token revoke PREFIX`.
CREATE INDEX tokens_prefix ON tokens (prefix);

CREATE TABLE token_sites (
    token_id    uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    site_id     uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, site_id)
);

CREATE TABLE comments (
    id              uuid PRIMARY KEY,
    site_id         uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    article         text NOT NULL,
    parent_id       uuid REFERENCES comments (id) ON DELETE SET NULL,
    -- The thread's top-level comment, and the dot-separated hex ids from it
    -- down to this comment: sorting by path puts a parent before its replies.
    -- "C" because that order must be bytewise, whatever the database's locale.
    root_id         uuid NOT NULL,
    path            text COLLATE "C" NOT NULL,
    depth           integer NOT NULL CHECK (depth >= 0),
    status          text NOT NULL CHECK (status IN ('pending', 'approved', 'spam', 'rejected')),
    author_name     text NOT NULL,
    author_website  text,
    -- The email, sealed with XChaCha20-Poly1305; never stored in the clear.
    email_sealed    bytea NOT NULL,
    -- HMAC-SHA256 of the normalised email under a per-deployment key.
    author_hash     bytea NOT NULL,
    avatar_seed     text NOT NULL,
    body            text NOT NULL,
    body_public     text NOT NULL,
    body_html       text NOT NULL,
    -- Text, not inet: it is read back exactly as the service wrote it.
    ip              text,
    user_agent      text,
    referrer        text,
    score           double precision NOT NULL,
    verdict         text NOT NULL CHECK (verdict IN ('approve', 'hold', 'spam')),
    reasons         jsonb NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- Threads of one article: ListComments (oldest first reads it forwards,
-- newest first backwards), CountComments.
CREATE INDEX comments_thread ON comments (site_id, article, status, root_id, path);
-- Queues: ListQueue, oldest first.
CREATE INDEX comments_queue ON comments (site_id, status, id);
-- One article's queue: ListQueue with an article.
CREATE INDEX comments_queue_article ON comments (site_id, status, article, id);
-- An author's history: trust and erasure.
CREATE INDEX comments_author ON comments (site_id, author_hash, status);
-- Deleting a comment sets its replies' parent_id to NULL; without this index
-- every delete would scan the whole table for them.
CREATE INDEX comments_parent ON comments (parent_id) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX comments_idempotency ON comments (site_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    site_id     uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    -- Not a foreign key: the record outlives a deleted comment.
    comment_id  uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    from_status text CHECK (from_status IN ('pending', 'approved', 'spam', 'rejected')),
    to_status   text CHECK (to_status IN ('pending', 'approved', 'spam', 'rejected')),
    note        text,
    created_at  timestamptz NOT NULL
);
CREATE INDEX audit_log_comment ON audit_log (comment_id, id);
CREATE INDEX audit_log_site ON audit_log (site_id, id);
