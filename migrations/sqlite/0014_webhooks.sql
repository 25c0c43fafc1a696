-- Webhooks: the endpoints a site's moderation events are sent to, and each event to be sent to
-- each endpoint (the outbox), written in the transaction of the change that causes it.

-- The `integrations` scope manages them. SQLite cannot change a CHECK, so the table is built
-- again with it.
CREATE TABLE token_scopes_new (
    token_id    BLOB NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL
                CHECK (scope IN ('moderate', 'policy', 'reveal-email', 'erase', 'integrations')),
    PRIMARY KEY (token_id, scope)
);
INSERT INTO token_scopes_new (token_id, scope) SELECT token_id, scope FROM token_scopes;
DROP TABLE token_scopes;
ALTER TABLE token_scopes_new RENAME TO token_scopes;

CREATE TABLE webhook_endpoints (
    id          BLOB PRIMARY KEY NOT NULL,
    site_id     BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    -- The events it is sent, comma-separated and with a comma at each end: `,comment.held,`.
    events      TEXT NOT NULL,
    note        TEXT NOT NULL,
    format      TEXT NOT NULL CHECK (format IN ('standard', 'slack')),
    actor       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    -- Set when the endpoint answered `410 Gone`.
    disabled_at TEXT
);
CREATE INDEX webhook_endpoints_site ON webhook_endpoints (site_id);

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY NOT NULL,
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    site_id         BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    comment_id      BLOB,
    article         TEXT NOT NULL,
    actor           TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL
);
-- The worker's queue: what is due, soonest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- `ListDeliveries`: a site's, or an endpoint's, newest first.
CREATE INDEX webhook_deliveries_site ON webhook_deliveries (site_id, created_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
