-- Mail: the addresses moderators have told of held replies (notices), the readers who asked to
-- be told of answers (after confirming their address), the replies they watch, and each mail to
-- be sent (the outbox), written in the transaction of what causes it. An address is stored
-- sealed, as a reader's is, with its keyed hash to find it by.

CREATE TABLE mail_notices (
    id             uuid PRIMARY KEY,
    site_id        uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    email_sealed   bytea NOT NULL,
    email_hash     bytea NOT NULL,
    -- The events it is sent, comma-separated and with a comma at each end: `,comment.held,`.
    events         text NOT NULL,
    -- 0: a mail per event; otherwise one mail for what came in that many minutes.
    digest_minutes bigint NOT NULL CHECK (digest_minutes >= 0),
    actor          text NOT NULL,
    created_at     timestamptz NOT NULL,
    UNIQUE (site_id, email_hash)
);

-- A reader's address on a site, as far as answers are concerned.
CREATE TABLE mail_readers (
    site_id       uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    author_hash   bytea NOT NULL,
    email_sealed  bytea NOT NULL,
    state         text NOT NULL CHECK (state IN ('pending', 'confirmed', 'unsubscribed')),
    -- The token in the confirmation and unsubscribe links: its digest to find it by, and the
    -- token sealed as an address is, for the mails that carry it.
    token_digest  bytea NOT NULL UNIQUE,
    token_sealed  bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    confirmed_at  timestamptz,
    PRIMARY KEY (site_id, author_hash)
);

-- Replies whose author asked to be told of answers.
-- Replies whose author asked to be told of answers; the author is the comment's.
CREATE TABLE reply_watches (
    comment_id  uuid PRIMARY KEY REFERENCES comments (id) ON DELETE CASCADE
);

-- The host's pages the links in readers' mails lead to, `{token}` standing for the token.
CREATE TABLE mail_pages (
    site_id         uuid PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    confirm_url     text NOT NULL,
    unsubscribe_url text NOT NULL
);

CREATE TABLE mail_outbox (
    id               uuid PRIMARY KEY,
    site_id          uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('notice', 'confirm', 'answer')),
    notice_id        uuid REFERENCES mail_notices (id) ON DELETE CASCADE,
    recipient_sealed bytea NOT NULL,
    recipient_hash   bytea NOT NULL,
    event            text NOT NULL,
    comment_id       uuid,
    state            text NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         bigint NOT NULL,
    last_error       text,
    created_at       timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL
);
-- The worker's queue: what is due, soonest first.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
-- A notice's digest, and an address's mails (rate limits, erasure).
CREATE INDEX mail_outbox_notice ON mail_outbox (notice_id) WHERE state = 'pending';
CREATE INDEX mail_outbox_recipient ON mail_outbox (site_id, recipient_hash, created_at);
