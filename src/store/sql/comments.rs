//! Comments: storing them, and reading them back for the public and for moderators.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder,
    Row, Type, types::Json,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    Backend, SqlStore, insert_audit,
    mailing::{WantingRow, queue_notices},
    record_first_replies,
};
use crate::store::cache::{Listings, PageKey};
use crate::{
    domain::{ArticleKey, AuditRecord, CommentStatus, EditOutcome, QueueEvent, audit_action},
    ids::{AuditId, CommentId, IdPrefix, SiteId},
    privacy::AuthorHash,
    store::{
        AuthorTally, CommentEdit, Comments, ListingEvents, NewAuditRow, SEEDED_NOTE, StoreResult,
        StoredComment, ThreadCursor, ThreadOrder, ThreadPage,
        rows::{
            AuditRow, CommentRow, ListedRow, bulk_statements, comment_columns, comments_from_rows,
            encode_features, listed_from_rows, queue_columns, status_from, thread_page_query,
        },
    },
};

#[async_trait]
impl<DB> Comments for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> CommentRow: FromRow<'r, DB::Row>,
    for<'r> ListedRow: FromRow<'r, DB::Row>,
    for<'r> AuditRow: FromRow<'r, DB::Row>,
    for<'r> WantingRow: FromRow<'r, DB::Row>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> &'r str: Decode<'r, DB> + Type<DB>,
    for<'r> DateTime<Utc>: Decode<'r, DB>,
    for<'r> Vec<u8>: Decode<'r, DB>,
    for<'r> Option<Vec<u8>>: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'r> Uuid: Decode<'r, DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f32>: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> sqlx::types::Json<&'r Vec<crate::spam::Reason>>: Encode<'q, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    async fn insert_comment(&self, comment: &StoredComment, actor: &str) -> StoreResult<()> {
        let _dropping = self.caches.dropping(match comment.status {
            CommentStatus::Approved => Listings::Article(comment.site, &comment.article),
            _ => Listings::None,
        });
        DB::insert_comment(self, comment, actor).await
    }

    async fn seed_comments(&self, comments: &[StoredComment], actor: &str) -> StoreResult<()> {
        let mut sites: Vec<SiteId> = comments.iter().map(|c| c.site).collect();
        sites.sort_unstable();
        sites.dedup();
        let _dropping = self.caches.dropping(Listings::Sites(&sites));
        let mut tx = self.writer.begin().await?;
        for chunk in comments.chunks(DB::SEED_ROWS_PER_STATEMENT) {
            let (mut insert, mut audit) = bulk_statements::<DB, _>(chunk, actor, SEEDED_NOTE);
            insert.build().execute(&mut *tx).await?;
            audit.build().execute(&mut *tx).await?;
        }
        record_first_replies::<DB>(&mut tx, comments).await?;
        // Running replicas drop what they cached of these sites' listings.
        for &site in &sites {
            DB::listing_changed(&self.state, &mut tx, site, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn comment(&self, id: CommentId) -> StoreResult<Option<StoredComment>> {
        sqlx::query_as::<_, CommentRow>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await?
        .map(StoredComment::try_from)
        .transpose()
    }

    async fn comment_by_idempotency_key(
        &self,
        site: SiteId,
        key: &str,
    ) -> StoreResult<Option<StoredComment>> {
        sqlx::query_as::<_, CommentRow>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE site_id = $1 AND idempotency_key = $2"
        ))
        .bind(site.0)
        .bind(key)
        .fetch_optional(&self.reader)
        .await?
        .map(StoredComment::try_from)
        .transpose()
    }

    async fn thread_page(
        &self,
        site: SiteId,
        article: &ArticleKey,
        order: ThreadOrder,
        after: Option<&ThreadCursor>,
        limit: u32,
    ) -> StoreResult<Arc<ThreadPage>> {
        let key = PageKey::new(order, after, limit);
        self.caches
            .thread_page(site, article.as_str(), key, async {
                let mut query =
                    thread_page_query(site, article.as_str(), order, after, limit, None);
                let rows = query
                    .build_query_as::<ListedRow>()
                    .fetch_all(&self.reader)
                    .await?;
                listed_from_rows(rows).map(ThreadPage::new)
            })
            .await
    }

    async fn own_thread_page(
        &self,
        site: SiteId,
        article: &ArticleKey,
        order: ThreadOrder,
        after: Option<&ThreadCursor>,
        limit: u32,
        author_hash: &AuthorHash,
    ) -> StoreResult<Vec<StoredComment>> {
        let mut query = thread_page_query(
            site,
            article.as_str(),
            order,
            after,
            limit,
            Some(author_hash.0.as_slice()),
        );
        let rows = query
            .build_query_as::<ListedRow>()
            .fetch_all(&self.reader)
            .await?;
        listed_from_rows(rows)
    }

    async fn count_approved(
        &self,
        site: SiteId,
        articles: &[ArticleKey],
    ) -> StoreResult<HashMap<String, u64>> {
        self.caches
            .count_approved(site, articles, |missing| async move {
                let query = sqlx::query(DB::COUNT_APPROVED).bind(site.0);
                let rows = DB::bind_texts(query, &missing)
                    .fetch_all(&self.reader)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let n: i64 = row.try_get("n")?;
                        Ok((row.try_get("article")?, n.unsigned_abs()))
                    })
                    .collect()
            })
            .await
    }

    async fn queue_page(
        &self,
        site: SiteId,
        status: CommentStatus,
        article: Option<&ArticleKey>,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<StoredComment>> {
        let mut query = QueryBuilder::<DB>::new(concat!(
            "SELECT ",
            queue_columns!(),
            " FROM comments WHERE site_id = "
        ));
        query.push_bind(site.0);
        query.push(" AND status = ").push_bind(status.as_str());
        if let Some(article) = article {
            query
                .push(" AND article = ")
                .push_bind(article.as_str().to_owned());
        }
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after.0);
        }
        query
            .push(" ORDER BY id LIMIT CAST(")
            .push_bind(i64::from(limit))
            .push(" AS BIGINT)");
        let rows = query
            .build_query_as::<CommentRow>()
            .fetch_all(&self.reader)
            .await?;
        comments_from_rows(rows)
    }

    async fn edit_comment(&self, edit: &CommentEdit<'_>) -> StoreResult<EditOutcome> {
        let (before, after) = (edit.before, edit.after);
        let listed = [before.status, after.status].contains(&CommentStatus::Approved);
        let _dropping = self.caches.dropping(if listed {
            Listings::Article(after.site, &after.article)
        } else {
            Listings::None
        });
        let mut tx = self.writer.begin().await?;
        // Held to the end, as a decision holds it: a decision on the reply waits for the edit,
        // or the edit finds the reply changed.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT status, updated_at FROM comments WHERE id = $1 AND site_id = $2{}",
            DB::FOR_UPDATE
        )))
        .bind(after.id.0)
        .bind(after.site.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(EditOutcome::Changed);
        };
        let status = status_from(row.try_get("status")?)?;
        let updated_at: DateTime<Utc> = row.try_get("updated_at")?;
        if status != before.status || updated_at != before.updated_at {
            return Ok(EditOutcome::Changed);
        }
        sqlx::query(
            "UPDATE comments SET status = $1, body = $2, body_sealed = $3, body_public = $4, \
             body_html = $5, fingerprint = $6, features = $7, score = $8, verdict = $9, \
             reasons = $10, updated_at = $11 WHERE id = $12",
        )
        .bind(after.status.as_str())
        .bind(after.body.as_str())
        .bind(after.body_sealed.clone())
        .bind(after.body_public.as_str())
        .bind(after.body_html.as_str())
        .bind(after.fingerprint.map(|f| f as i64))
        .bind(encode_features(&after.features))
        .bind(after.score)
        .bind(after.verdict.as_str())
        .bind(Json(&after.reasons))
        .bind(after.updated_at)
        .bind(after.id.0)
        .execute(&mut *tx)
        .await?;
        insert_audit::<DB>(
            &mut tx,
            &NewAuditRow {
                site: after.site,
                comment: Some(after.id),
                actor: edit.actor,
                action: audit_action::EDIT,
                from: Some(before.status),
                to: Some(after.status),
                note: Some(edit.note),
                at: after.updated_at,
            },
        )
        .await?;
        if after.status != before.status
            && matches!(after.status, CommentStatus::Pending | CommentStatus::Spam)
        {
            queue_notices::<DB>(&mut tx, after).await?;
        }
        if listed {
            DB::listing_changed(&self.state, &mut tx, after.site, Some(&after.article)).await?;
        }
        tx.commit().await?;
        Ok(EditOutcome::Applied)
    }

    async fn author_records(
        &self,
        site: SiteId,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<AuthorTally>> {
        let rows = sqlx::query(
            "SELECT author_hash, reader_hash, status, count(*) AS n FROM comments \
             WHERE site_id = $1 AND created_at < $2 GROUP BY author_hash, reader_hash, status",
        )
        .bind(site.0)
        .bind(before)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok(AuthorTally {
                    author_hash: row.try_get("author_hash")?,
                    reader_hash: row.try_get("reader_hash")?,
                    status: status_from(row.try_get("status")?)?,
                    count: u32::try_from(n).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn comments_by_author(
        &self,
        site: SiteId,
        author_hash: &AuthorHash,
    ) -> StoreResult<Vec<StoredComment>> {
        let rows = sqlx::query_as::<_, CommentRow>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE site_id = $1 AND author_hash = $2 ORDER BY id"
        ))
        .bind(site.0)
        .bind(&author_hash.0[..])
        .fetch_all(&self.reader)
        .await?;
        comments_from_rows(rows)
    }

    async fn comment_ids_starting(
        &self,
        site: SiteId,
        prefix: IdPrefix,
        limit: u32,
    ) -> StoreResult<Vec<CommentId>> {
        // A range of the primary key: both backends compare ids as their 16 bytes.
        let rows = sqlx::query(
            "SELECT id FROM comments WHERE id >= $1 AND id <= $2 AND site_id = $3 \
             ORDER BY id LIMIT CAST($4 AS BIGINT)",
        )
        .bind(prefix.first())
        .bind(prefix.last())
        .bind(site.0)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| Ok(CommentId(row.try_get::<Uuid, _>("id")?)))
            .collect()
    }

    async fn history(&self, comment: CommentId) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT id, comment_id, actor, action, from_status, to_status, note, created_at \
             FROM audit_log WHERE comment_id = $1 ORDER BY id",
        )
        .bind(comment.0)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    async fn audit_page(
        &self,
        site: SiteId,
        comment: Option<CommentId>,
        action: Option<&str>,
        before: Option<AuditId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut query = QueryBuilder::<DB>::new(
            "SELECT id, comment_id, actor, action, from_status, to_status, note, created_at \
             FROM audit_log WHERE ",
        );
        match comment {
            Some(comment) => {
                query
                    .push(DB::SITE_ID_UNINDEXED)
                    .push(" = ")
                    .push_bind(site.0);
                query.push(" AND comment_id = ").push_bind(comment.0);
            }
            None => {
                query.push("site_id = ").push_bind(site.0);
            }
        }
        if let Some(action) = action {
            query.push(" AND action = ").push_bind(action.to_owned());
        }
        if let Some(before) = before {
            query.push(" AND id < ").push_bind(before.0);
        }
        query
            .push(" ORDER BY id DESC LIMIT CAST(")
            .push_bind(i64::from(limit))
            .push(" AS BIGINT)");
        let rows = query
            .build_query_as::<AuditRow>()
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        DB::subscribe(&self.state)
    }

    fn listing_events(&self) -> Option<ListingEvents> {
        DB::listing_events(&self.state)
    }
}
