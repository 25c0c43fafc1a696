-- A host's idempotency key is kept as long as the reply's client details
-- (`--retain-client-days`): a retry comes within seconds, and releases before
-- the keyed hash stored the key as the host sent it. The retention index now
-- also holds the replies that still have a key, so the sweep finds them.
DROP INDEX comments_client_details;
CREATE INDEX comments_client_details ON comments (created_at)
    WHERE ip IS NOT NULL OR user_agent IS NOT NULL OR referrer IS NOT NULL
        OR idempotency_key IS NOT NULL;
