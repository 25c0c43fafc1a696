-- The retention sweep forgets the nonces of form tokens used longer ago than
-- a token lives (and a day more), which are refused as expired whatever their
-- nonce; this index finds them without reading the table.
CREATE INDEX form_nonces_used ON form_nonces (used_at);
