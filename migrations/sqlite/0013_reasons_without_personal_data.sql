-- A reason lives as long as its reply. Earlier releases wrote three that named personal data:
-- `blocked-ip` the client's address (kept otherwise only until the retention sweep),
-- `blocked-email-domain` the domain of an email (never kept in the clear), and
-- `moderator-block` the entry that caught the reply (an address, an author's hash, an email's
-- domain). They now read as the rules write them today: the kind of entry, and a value only
-- where it is public (a website's domain).
UPDATE comments SET reasons = (
    SELECT json_group_array(
        CASE
            WHEN json_extract(r.value, '$.rule') = 'blocked-ip' THEN
                json_set(r.value, '$.reason', 'the client''s address is on the site''s blocklist')
            WHEN json_extract(r.value, '$.rule') = 'blocked-email-domain' THEN
                json_set(r.value, '$.reason', 'the email''s domain is on the site''s blocklist')
            WHEN json_extract(r.value, '$.rule') = 'moderator-block'
                AND json_extract(r.value, '$.reason') LIKE 'blocked by a moderator: author %' THEN
                json_set(r.value, '$.reason', 'blocked by a moderator: author')
            WHEN json_extract(r.value, '$.rule') = 'moderator-block'
                AND json_extract(r.value, '$.reason') LIKE 'blocked by a moderator: ip %' THEN
                json_set(r.value, '$.reason', 'blocked by a moderator: ip')
            WHEN json_extract(r.value, '$.rule') = 'moderator-block'
                AND json_extract(r.value, '$.reason') LIKE 'blocked by a moderator: email-domain %' THEN
                json_set(r.value, '$.reason', 'blocked by a moderator: email-domain')
            ELSE json(r.value)
        END
        ORDER BY r.key
    )
    FROM json_each(comments.reasons) AS r
)
WHERE EXISTS (
    SELECT 1 FROM json_each(comments.reasons) AS r
    WHERE json_extract(r.value, '$.rule') IN ('blocked-ip', 'blocked-email-domain', 'moderator-block')
);
