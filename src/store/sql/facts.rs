//! What the submit pipeline asks of the database before it stores a reply.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Row, Type};
use uuid::Uuid;

use super::{Backend, RowsAffected, SqlStore};
use crate::{
    domain::{ArticleKey, BlockEntry, BlockSubject},
    ids::{CommentId, SiteId},
    privacy::AuthorHash,
    spam::RecentReply,
    store::{
        Facts, RECENT_REPLIES, StoreResult, StoredFacts, now,
        rows::{BlockRow, blocks_matching_query, count},
    },
};

#[async_trait]
impl<DB> Facts for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> BlockRow: FromRow<'r, DB::Row>,
    for<'r> Uuid: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> f32: Decode<'r, DB>,
    for<'r> Option<f32>: Decode<'r, DB>,
    for<'r> Option<DateTime<Utc>>: Decode<'r, DB>,
    for<'q> Uuid: Encode<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f32: Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn facts(
        &self,
        site: SiteId,
        author_hash: &AuthorHash,
        article: &ArticleKey,
        ip: Option<&str>,
        features: &[u64],
    ) -> StoreResult<StoredFacts> {
        let mut facts = StoredFacts::default();
        // The author's and the address's records and the learned totals in
        // one statement: each aggregate is one row, even over no comments.
        // Each latest reply is the end of a range of an index (the author's
        // in `comments_author_time`, the address's in `comments_ip`), and
        // the counts read only indexes (`comments_author`, whose entries
        // carry the status, and `comments_ip_spam`): however many replies an
        // author or an address has, no row is read.
        let known = sqlx::query(
            "SELECT a.approved, a.spam, a.rejected, a.last, \
                    i.spam AS ip_spam, i.last AS ip_last, \
                    t.spam AS learned_spam, t.ham AS learned_ham \
             FROM (SELECT count(*) FILTER (WHERE status = 'approved') AS approved, \
                          count(*) FILTER (WHERE status = 'spam') AS spam, \
                          count(*) FILTER (WHERE status = 'rejected') AS rejected, \
                          (SELECT max(created_at) FROM comments \
                           WHERE site_id = $1 AND author_hash = $2) AS last \
                   FROM comments WHERE site_id = $1 AND author_hash = $2) AS a \
             CROSS JOIN (SELECT (SELECT count(*) FROM comments \
                                 WHERE site_id = $1 AND ip = $3 AND status = 'spam') AS spam, \
                                (SELECT max(created_at) FROM comments \
                                 WHERE site_id = $1 AND ip = $3) AS last) AS i \
             LEFT JOIN spam_totals AS t ON t.site_id = $1",
        )
        .bind(site.0)
        .bind(&author_hash.0[..])
        .bind(ip)
        .fetch_one(&self.reader)
        .await?;
        facts.author_approved = count(known.try_get("approved")?);
        facts.author_spam = count(known.try_get("spam")?);
        facts.author_rejected = count(known.try_get("rejected")?);
        facts.author_last = known.try_get("last")?;
        facts.ip_spam = count(known.try_get("ip_spam")?);
        facts.ip_last = known.try_get("ip_last")?;
        // An erased author's replies (their hash replaced) are left out.
        facts.recent = sqlx::query_scalar::<_, i64>(
            "SELECT fingerprint FROM comments \
             WHERE site_id = $1 AND fingerprint IS NOT NULL AND length(author_hash) = 32 \
             AND NOT (author_hash = $2 AND article = $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(site.0)
        .bind(&author_hash.0[..])
        .bind(article.as_str())
        .bind(i64::from(RECENT_REPLIES))
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(|fingerprint| RecentReply {
            fingerprint: fingerprint as u64,
        })
        .collect();
        let learned_spam = known.try_get::<Option<f32>, _>("learned_spam")?;
        let learned_ham = known.try_get::<Option<f32>, _>("learned_ham")?;
        if let (Some(spam), Some(ham)) = (learned_spam, learned_ham) {
            facts.learned.spam = spam;
            facts.learned.ham = ham;
            let query = sqlx::query(DB::LEARNED_FEATURES).bind(site.0);
            let rows = DB::bind_features(query, features)
                .fetch_all(&self.reader)
                .await?;
            for row in rows {
                let feature = row.try_get::<i64, _>("feature")? as u64;
                facts
                    .learned
                    .features
                    .insert(feature, (row.try_get("spam")?, row.try_get("ham")?));
            }
        }
        Ok(facts)
    }

    async fn use_form_nonce(&self, site: SiteId, nonce: &[u8; 16]) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO form_nonces (site_id, nonce, used_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(site.0)
        .bind(&nonce[..])
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn duplicate_of(
        &self,
        site: SiteId,
        article: &ArticleKey,
        author_hash: &AuthorHash,
        body_public: &str,
    ) -> StoreResult<Option<CommentId>> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM comments \
             WHERE site_id = $1 AND author_hash = $2 AND article = $3 AND body_public = $4 \
             LIMIT 1",
        )
        .bind(site.0)
        .bind(&author_hash.0[..])
        .bind(article.as_str())
        .bind(body_public)
        .fetch_optional(&self.reader)
        .await?;
        Ok(id.map(CommentId))
    }

    async fn blocks_matching(
        &self,
        site: SiteId,
        subject: &BlockSubject<'_>,
    ) -> StoreResult<Vec<BlockEntry>> {
        let Some(mut query) = blocks_matching_query::<DB>(site, subject) else {
            return Ok(Vec::new());
        };
        let rows = query
            .build_query_as::<BlockRow>()
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(BlockEntry::try_from).collect()
    }

    async fn article_closed(&self, site: SiteId, article: &ArticleKey) -> StoreResult<bool> {
        self.caches
            .article_closed(site, article.as_str(), async {
                let row = sqlx::query(
                    "SELECT 1 FROM closed_articles WHERE site_id = $1 AND article = $2",
                )
                .bind(site.0)
                .bind(article.as_str())
                .fetch_optional(&self.reader)
                .await?;
                Ok(row.is_some())
            })
            .await
    }
}
