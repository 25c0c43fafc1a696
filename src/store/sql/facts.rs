//! What the submit pipeline asks of the database before it stores a reply.

/// [`super::Backend::FACTS`] for a dialect: what the store knows of a new reply, in one row
/// (see [`Facts::facts`]). `$recent` joins `fingerprint:tag` of a subquery's rows with commas,
/// the tag the first eight bytes of `author_hash` in hex ([`crate::spam::author_tag`]); `$learned` is the JSON array of `[feature, spam, ham]` of the features `$6`, or
/// `NULL`; `author_confirmed` whether the author confirmed their address for mail. The counts read only indexes (`comments_author` and `comments_ip`, whose entries
/// carry the status), and a latest reply is the latest of four ends of their ranges, one per
/// status ([`latest!`]): however many replies an author or an address has, no row is read.
macro_rules! facts_query {
    ($recent:expr, $learned:expr) => {
        concat!(
            "SELECT a.approved, a.spam, a.rejected, a.last, \
                    i.spam AS ip_spam, i.last AS ip_last, \
                    t.spam AS learned_spam, t.ham AS learned_ham, \
                    (SELECT ",
            $recent,
            " FROM (SELECT fingerprint, author_hash FROM comments \
                     WHERE site_id = $1 AND fingerprint IS NOT NULL AND length(author_hash) = 32 \
                     AND NOT (author_hash = $2 AND article = $4) \
                     ORDER BY id DESC LIMIT CAST($5 AS BIGINT)) AS r) \
                    AS recent, \
                    (",
            $learned,
            ") AS learned, \
                    (SELECT id FROM comments WHERE site_id = $1 AND author_hash = $2 \
                     AND article = $4 AND body_public = $7 LIMIT 1) AS duplicate, \
                    (SELECT count(*) FROM (SELECT 1 FROM blocklist WHERE site_id = $1 LIMIT 1) AS b) \
                    AS any_blocks, \
                    (SELECT count(*) FROM mail_readers WHERE site_id = $1 AND author_hash = $2 \
                     AND state = 'confirmed') AS author_confirmed \
             FROM (SELECT count(*) FILTER (WHERE status = 'approved') AS approved, \
                          count(*) FILTER (WHERE status = 'spam') AS spam, \
                          count(*) FILTER (WHERE status = 'rejected') AS rejected, \
                          ",
            $crate::store::sql::latest!("author_hash = $2"),
            " AS last \
                   FROM comments WHERE site_id = $1 AND author_hash = $2) AS a \
             CROSS JOIN (SELECT (SELECT count(*) FROM comments \
                                 WHERE site_id = $1 AND ip = $3 AND status = 'spam') AS spam, \
                                ",
            $crate::store::sql::latest!("ip = $3"),
            " AS last) AS i \
             LEFT JOIN spam_totals AS t ON t.site_id = $1"
        )
    };
}
pub(in crate::store) use facts_query;

/// [`super::Backend::SHARED_LEARNED`] for a dialect: the deployment's shared totals and the
/// rows of the features `$2`, each less the part site `$1` gave to them, so that a site's own
/// lessons are not read twice. `$features` is the JSON array of `[feature, spam, ham]` of the
/// shared rows it is given (`s`, joined to the site's own as `f`), or `NULL`; `$among` the test
/// of `s.feature` against the list `$2`.
macro_rules! shared_query {
    ($features:expr, $among:expr) => {
        concat!(
            "SELECT t.spam - COALESCE(o.shared_spam, 0) AS spam, \
                    t.ham - COALESCE(o.shared_ham, 0) AS ham, \
                    (",
            $features,
            " FROM shared_spam_features AS s \
                     LEFT JOIN spam_features AS f ON f.site_id = $1 AND f.feature = s.feature \
                     WHERE s.feature ",
            $among,
            ") AS features \
             FROM shared_spam_totals AS t LEFT JOIN spam_totals AS o ON o.site_id = $1 \
             WHERE t.id = 1"
        )
    };
}
pub(in crate::store) use shared_query;

/// The time of the latest reply of site `$1` whose `$subject` (`author_hash = $2`) holds: the
/// latest of the last entries of four ranges of an index on `(site_id, subject, status,
/// created_at)`, each found without reading the range.
macro_rules! latest {
    ($subject:expr) => {
        concat!(
            "(SELECT max(t) FROM (",
            "SELECT (SELECT max(created_at) FROM comments WHERE site_id = $1 AND ",
            $subject,
            " AND status = 'pending') AS t UNION ALL ",
            "SELECT (SELECT max(created_at) FROM comments WHERE site_id = $1 AND ",
            $subject,
            " AND status = 'approved') UNION ALL ",
            "SELECT (SELECT max(created_at) FROM comments WHERE site_id = $1 AND ",
            $subject,
            " AND status = 'spam') UNION ALL ",
            "SELECT (SELECT max(created_at) FROM comments WHERE site_id = $1 AND ",
            $subject,
            " AND status = 'rejected')) AS l)"
        )
    };
}
pub(in crate::store) use latest;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Row, Type, types::Json};
use uuid::Uuid;

use super::{Backend, RowsAffected, SqlStore};
use crate::store::cache::Listings;
use crate::{
    domain::{ArticleClock, ArticleKey, BlockEntry, BlockSubject, Blocked},
    ids::{CommentId, SiteId},
    spam::{LearnedStats, RecentReply},
    store::{
        Facts, FactsAbout, RECENT_REPLIES, ReaderRecord, StoreError, StoreResult, StoredFacts, now,
        rows::{AgeLimit, BlockRow, blocks_matching_query, count},
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
    for<'r> String: Decode<'r, DB>,
    for<'r> Option<Uuid>: Decode<'r, DB>,
    for<'q> Uuid: Encode<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f32: Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'r> Json<AgeLimit>: Decode<'r, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn facts(
        &self,
        site: SiteId,
        reply: &FactsAbout<'_>,
        features: &[u64],
    ) -> StoreResult<StoredFacts> {
        let query = sqlx::query(DB::FACTS)
            .bind(site.0)
            .bind(&reply.author_hash.0[..])
            .bind(reply.ip)
            .bind(reply.article.as_str())
            .bind(i64::from(RECENT_REPLIES));
        let known = DB::bind_features(query, features)
            .bind(reply.body_public)
            .fetch_one(&self.reader)
            .await?;
        let recent: Option<String> = known.try_get("recent")?;
        let learned_spam = known.try_get::<Option<f32>, _>("learned_spam")?;
        let learned_ham = known.try_get::<Option<f32>, _>("learned_ham")?;
        let mut facts = StoredFacts {
            author_approved: count(known.try_get("approved")?),
            author_spam: count(known.try_get("spam")?),
            author_rejected: count(known.try_get("rejected")?),
            author_last: known.try_get("last")?,
            ip_spam: count(known.try_get("ip_spam")?),
            ip_last: known.try_get("ip_last")?,
            recent: recent
                .iter()
                .flat_map(|joined| joined.split(','))
                .filter_map(|recent| {
                    let (fingerprint, author) = recent.split_once(':')?;
                    Some(RecentReply {
                        fingerprint: fingerprint.parse::<i64>().ok()? as u64,
                        author: u64::from_str_radix(author, 16).ok()?,
                    })
                })
                .collect(),
            duplicate_of: known
                .try_get::<Option<Uuid>, _>("duplicate")?
                .map(CommentId),
            any_blocks: known.try_get::<i64, _>("any_blocks")? != 0,
            author_confirmed: known.try_get::<i64, _>("author_confirmed")? != 0,
            ..StoredFacts::default()
        };
        if let (Some(spam), Some(ham)) = (learned_spam, learned_ham) {
            facts.learned.spam = spam;
            facts.learned.ham = ham;
            let learned: Option<String> = known.try_get("learned")?;
            let learned: Vec<(i64, f32, f32)> = match learned {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|err| StoreError::Corrupt(format!("learned features: {err}")))?,
                None => Vec::new(),
            };
            for (feature, spam, ham) in learned {
                facts.learned.features.insert(feature as u64, (spam, ham));
            }
        }
        Ok(facts)
    }

    async fn reader_record(&self, site: SiteId, reader_hash: &[u8]) -> StoreResult<ReaderRecord> {
        // Three ranges of `comments_reader`, whose entries carry the status: no row is read.
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE status = 'approved') AS approved, \
                    count(*) FILTER (WHERE status = 'spam') AS spam, \
                    count(*) FILTER (WHERE status = 'rejected') AS rejected \
             FROM comments WHERE site_id = $1 AND reader_hash = $2",
        )
        .bind(site.0)
        .bind(reader_hash)
        .fetch_one(&self.reader)
        .await?;
        Ok(ReaderRecord {
            approved: count(row.try_get("approved")?),
            spam: count(row.try_get("spam")?),
            rejected: count(row.try_get("rejected")?),
        })
    }

    async fn address_spam_since(
        &self,
        site: SiteId,
        ip: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<u32> {
        // One range of `comments_ip` (site, address, status, time), from its entries alone.
        let n: i64 = sqlx::query(
            "SELECT count(*) AS n FROM comments \
             WHERE site_id = $1 AND ip = $2 AND status = 'spam' AND created_at >= $3",
        )
        .bind(site.0)
        .bind(ip)
        .bind(since)
        .fetch_one(&self.reader)
        .await?
        .try_get("n")?;
        Ok(count(n))
    }

    async fn shared_learned(&self, site: SiteId, features: &[u64]) -> StoreResult<LearnedStats> {
        let query = sqlx::query(DB::SHARED_LEARNED).bind(site.0);
        let Some(row) = DB::bind_features(query, features)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(LearnedStats::new());
        };
        let mut shared = LearnedStats {
            spam: row.try_get::<f32, _>("spam")?.max(0.0),
            ham: row.try_get::<f32, _>("ham")?.max(0.0),
            ..LearnedStats::new()
        };
        let rows: Option<String> = row.try_get("features")?;
        if let Some(json) = rows {
            let rows: Vec<(i64, f32, f32)> = serde_json::from_str(&json)
                .map_err(|err| StoreError::Corrupt(format!("shared features: {err}")))?;
            for (feature, spam, ham) in rows {
                shared.features.insert(feature as u64, (spam, ham));
            }
        }
        Ok(shared)
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

    async fn record_block_hit(
        &self,
        site: SiteId,
        blocked: &Blocked,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE blocklist SET hits = hits + 1, last_hit_at = $4 \
             WHERE site_id = $1 AND kind = $2 AND value = $3",
        )
        .bind(site.0)
        .bind(blocked.kind().as_str())
        .bind(blocked.value())
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn article_clock(&self, site: SiteId, article: &ArticleKey) -> StoreResult<ArticleClock> {
        self.caches
            .article_clock(site, article.as_str(), async {
                // One row, a key look-up in each table; the policy is read for its one number.
                let row = sqlx::query(
                    "SELECT s.policy, c.closed_at, d.published_at, d.first_reply_at \
                     FROM sites s \
                     LEFT JOIN closed_articles c ON c.site_id = s.id AND c.article = $2 \
                     LEFT JOIN article_dates d ON d.site_id = s.id AND d.article = $2 \
                     WHERE s.id = $1",
                )
                .bind(site.0)
                .bind(article.as_str())
                .fetch_optional(&self.reader)
                .await?;
                let Some(row) = row else {
                    return Ok(ArticleClock::default());
                };
                let limit: Json<AgeLimit> = row.try_get("policy")?;
                Ok(ArticleClock {
                    closed_at: row.try_get("closed_at")?,
                    published_at: row.try_get("published_at")?,
                    first_reply_at: row.try_get("first_reply_at")?,
                    close_after_days: limit.0.close_after_days,
                })
            })
            .await
    }

    async fn record_article_dates(
        &self,
        site: SiteId,
        article: &ArticleKey,
        published_at: Option<DateTime<Utc>>,
        first_reply_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let _dropping = self
            .caches
            .dropping(Listings::Article(site, article.as_str()));
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO article_dates (site_id, article, published_at, first_reply_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (site_id, article) DO UPDATE SET \
             published_at = COALESCE(excluded.published_at, article_dates.published_at), \
             first_reply_at = COALESCE(article_dates.first_reply_at, excluded.first_reply_at)",
        )
        .bind(site.0)
        .bind(article.as_str())
        .bind(published_at)
        .bind(first_reply_at)
        .execute(&mut *tx)
        .await?;
        DB::listing_changed(&self.state, &mut tx, site, Some(article.as_str())).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::CommentStatus;

    #[test]
    fn the_latest_reply_is_looked_for_under_every_status() {
        let latest = latest!("author_hash = $2");
        for status in CommentStatus::ALL {
            let range = format!("status = '{}')", status.as_str());
            assert!(latest.contains(&range), "{status:?} is missed");
        }
        assert_eq!(
            latest.matches("status = ").count(),
            CommentStatus::ALL.len()
        );
    }
}
