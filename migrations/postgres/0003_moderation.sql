-- The moderators' workflow: token scopes, per-site blocklists, and the
-- indexes of the retention sweep. The same tables and columns as
-- migrations/sqlite/0003_moderation.sql.

-- What a moderator token may do on its sites; a site key has no rows here.
CREATE TABLE token_scopes (
    token_id    uuid NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    scope       text NOT NULL CHECK (scope IN ('moderate', 'policy', 'reveal-email', 'erase')),
    PRIMARY KEY (token_id, scope)
);
-- Moderator tokens issued before scopes existed keep what they could do.
INSERT INTO token_scopes (token_id, scope)
    SELECT id, scope FROM tokens, unnest(ARRAY['moderate', 'policy']) AS scope
    WHERE role = 'moderator';

-- Authors (by keyed hash), IP addresses and domains a site refuses; each
-- value once per site and kind, in its normal form.
CREATE TABLE blocklist (
    site_id     uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    kind        text NOT NULL
                CHECK (kind IN ('author', 'ip', 'email-domain', 'website-domain')),
    value       text NOT NULL,
    created_at  timestamptz NOT NULL,
    -- The prefix of the moderator token that added it.
    actor       text NOT NULL,
    PRIMARY KEY (site_id, kind, value)
);

-- Retention: replies that still hold client details, by age. Swept rows
-- leave the index, so it holds about the retention period's replies.
CREATE INDEX comments_client_details ON comments (created_at)
    WHERE ip IS NOT NULL OR user_agent IS NOT NULL OR referrer IS NOT NULL;
-- Expiry: pending replies of every site, by age.
CREATE INDEX comments_pending_age ON comments (created_at) WHERE status = 'pending';
