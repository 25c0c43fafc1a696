-- Webhooks: the endpoints a site's moderation events are sent to, and each event to be sent to
-- each endpoint (the outbox), written in the transaction of the change that causes it.

-- The `integrations` scope manages them.
ALTER TABLE token_scopes DROP CONSTRAINT token_scopes_scope_check;
ALTER TABLE token_scopes ADD CONSTRAINT token_scopes_scope_check
    CHECK (scope IN ('moderate', 'policy', 'reveal-email', 'erase', 'integrations'));

CREATE TABLE webhook_endpoints (
    id          uuid PRIMARY KEY,
    site_id     uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    url         text NOT NULL,
    -- The events it is sent, comma-separated and with a comma at each end: `,comment.held,`.
    events      text NOT NULL,
    note        text NOT NULL,
    format      text NOT NULL CHECK (format IN ('standard', 'slack')),
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL,
    -- Set when the endpoint answered `410 Gone`.
    disabled_at timestamptz
);
CREATE INDEX webhook_endpoints_site ON webhook_endpoints (site_id);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    site_id         uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    event           text NOT NULL,
    comment_id      uuid,
    article         text NOT NULL,
    actor           text NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        bigint NOT NULL,
    last_status     bigint,
    last_error      text,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL
);
-- The worker's queue: what is due, soonest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- `ListDeliveries`: a site's, or an endpoint's, newest first.
CREATE INDEX webhook_deliveries_site ON webhook_deliveries (site_id, created_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
