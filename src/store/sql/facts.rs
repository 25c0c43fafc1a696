//! What the submit pipeline asks of the database before it stores a reply.

/// [`super::Backend::FACTS`] for a dialect: what the store knows of a new reply, in one row
/// (see [`Facts::facts`]). `$recent` joins `fingerprint:tag` of a subquery's rows with commas,
/// the tag the first eight bytes of `author_hash` in hex ([`crate::spam::author_tag`]); `$learned` is the JSON array of `[feature, spam, ham]` of the features `$6`, or
/// `NULL`. The counts read only indexes (`comments_author` and `comments_ip`, whose entries
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
                    AS any_blocks \
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
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Row, Type};
use uuid::Uuid;

use super::{Backend, RowsAffected, SqlStore};
use crate::{
    domain::{ArticleKey, BlockEntry, BlockSubject, Blocked},
    ids::{CommentId, SiteId},
    spam::{LearnedStats, RecentReply},
    store::{
        Facts, FactsAbout, RECENT_REPLIES, StoreError, StoreResult, StoredFacts, now,
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
