-- Mail: the addresses moderators have told of held replies (notices), the readers who asked to
-- be told of answers (after confirming their address), the replies they watch, and each mail to
-- be sent (the outbox), written in the transaction of what causes it. An address is stored
-- sealed, as a reader's is, with its keyed hash to find it by.

CREATE TABLE mail_notices (
    id             BLOB PRIMARY KEY NOT NULL,
    site_id        BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    email_sealed   BLOB NOT NULL,
    email_hash     BLOB NOT NULL,
    -- The events it is sent, comma-separated and with a comma at each end: `,comment.held,`.
    events         TEXT NOT NULL,
    -- 0: a mail per event; otherwise one mail for what came in that many minutes.
    digest_minutes INTEGER NOT NULL CHECK (digest_minutes >= 0),
    actor          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    UNIQUE (site_id, email_hash)
);

-- A reader's address on a site, as far as answers are concerned.
CREATE TABLE mail_readers (
    site_id       BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    author_hash   BLOB NOT NULL,
    email_sealed  BLOB NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'unsubscribed')),
    -- The token in the confirmation and unsubscribe links: its digest to find it by, and the
    -- token sealed as an address is, for the mails that carry it.
    token_digest  BLOB NOT NULL UNIQUE,
    token_sealed  BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    confirmed_at  TEXT,
    PRIMARY KEY (site_id, author_hash)
);

-- Replies whose author asked to be told of answers; the author is the comment's.
CREATE TABLE reply_watches (
    comment_id  BLOB PRIMARY KEY NOT NULL REFERENCES comments (id) ON DELETE CASCADE
);

-- The host's pages the links in readers' mails lead to, `{token}` standing for the token.
CREATE TABLE mail_pages (
    site_id         BLOB PRIMARY KEY NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    confirm_url     TEXT NOT NULL,
    unsubscribe_url TEXT NOT NULL
);

CREATE TABLE mail_outbox (
    id               BLOB PRIMARY KEY NOT NULL,
    site_id          BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('notice', 'confirm', 'answer')),
    notice_id        BLOB REFERENCES mail_notices (id) ON DELETE CASCADE,
    recipient_sealed BLOB NOT NULL,
    recipient_hash   BLOB NOT NULL,
    event            TEXT NOT NULL,
    comment_id       BLOB,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL
);
-- The worker's queue: what is due, soonest first.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
-- A notice's digest, and an address's mails (rate limits, erasure).
CREATE INDEX mail_outbox_notice ON mail_outbox (notice_id) WHERE state = 'pending';
CREATE INDEX mail_outbox_recipient ON mail_outbox (site_id, recipient_hash, created_at);
