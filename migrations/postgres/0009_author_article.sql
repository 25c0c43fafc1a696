-- Whether an author already said this under an article, asked for every
-- reply: the author's replies to that article, not all of theirs, which a
-- reader who has commented for years counts in thousands.
CREATE INDEX comments_author_article ON comments (site_id, author_hash, article);
