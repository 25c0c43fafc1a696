-- Articles that close by time. A moderator's close may now lie ahead
-- (`CloseArticle.close_at`): `closed_articles.closed_at` is when the article
-- closes, and a reply sent before then is taken. With the policy's
-- `close-after-days`, an article closes that many days after its publication
-- time, which the host gives with `SubmitComment`, or, without one, after its
-- first reply: both are kept here, one row per article that ever had a reply
-- or a publication time. The same table as migrations/postgres/0021_article_dates.sql.
CREATE TABLE article_dates (
    site_id         BLOB NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    article         TEXT NOT NULL,
    published_at    TEXT,
    first_reply_at  TEXT,
    PRIMARY KEY (site_id, article)
);
-- Every article with replies: its first one, as far as the replies kept tell.
INSERT INTO article_dates (site_id, article, first_reply_at)
    SELECT site_id, article, MIN(created_at) FROM comments GROUP BY site_id, article;
