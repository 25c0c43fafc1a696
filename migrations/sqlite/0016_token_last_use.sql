-- When each token was last used: written at most once a minute per token, for the operator's
-- `replyguard token list`.
ALTER TABLE tokens ADD COLUMN last_used_at TEXT;
