-- A reason lives as long as its reply. Earlier releases wrote three that named personal data:
-- `blocked-ip` the client's address (kept otherwise only until the retention sweep),
-- `blocked-email-domain` the domain of an email (never kept in the clear), and
-- `moderator-block` the entry that caught the reply (an address, an author's hash, an email's
-- domain). They now read as the rules write them today: the kind of entry, and a value only
-- where it is public (a website's domain).
UPDATE comments SET reasons = (
    SELECT jsonb_agg(
        CASE
            WHEN r.value ->> 'rule' = 'blocked-ip' THEN
                jsonb_set(r.value, '{reason}', to_jsonb('the client''s address is on the site''s blocklist'::text))
            WHEN r.value ->> 'rule' = 'blocked-email-domain' THEN
                jsonb_set(r.value, '{reason}', to_jsonb('the email''s domain is on the site''s blocklist'::text))
            WHEN r.value ->> 'rule' = 'moderator-block'
                AND r.value ->> 'reason' LIKE 'blocked by a moderator: author %' THEN
                jsonb_set(r.value, '{reason}', to_jsonb('blocked by a moderator: author'::text))
            WHEN r.value ->> 'rule' = 'moderator-block'
                AND r.value ->> 'reason' LIKE 'blocked by a moderator: ip %' THEN
                jsonb_set(r.value, '{reason}', to_jsonb('blocked by a moderator: ip'::text))
            WHEN r.value ->> 'rule' = 'moderator-block'
                AND r.value ->> 'reason' LIKE 'blocked by a moderator: email-domain %' THEN
                jsonb_set(r.value, '{reason}', to_jsonb('blocked by a moderator: email-domain'::text))
            ELSE r.value
        END
        ORDER BY r.position
    )
    FROM jsonb_array_elements(comments.reasons) WITH ORDINALITY AS r (value, position)
)
WHERE reasons @> '[{"rule": "blocked-ip"}]'
    OR reasons @> '[{"rule": "blocked-email-domain"}]'
    OR reasons @> '[{"rule": "moderator-block"}]';
