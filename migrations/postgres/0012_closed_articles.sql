-- Articles a moderator closed to new replies (`CloseArticle`): a reply sent
-- to one is refused, and `ListComments` says the article is closed. The
-- replies already there stay as they are. Reopening deletes the row.
CREATE TABLE closed_articles (
    site_id     uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    article     text NOT NULL,
    actor       text NOT NULL,
    closed_at   timestamptz NOT NULL,
    PRIMARY KEY (site_id, article)
);
