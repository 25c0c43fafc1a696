//! The transactions of moderation: each applies what [`crate::moderation`] decided, with its
//! audit rows, and tells the other replicas which listings changed.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder,
    Row, Type, types::Json,
};
use uuid::Uuid;

use super::{Backend, RowsAffected, SqlStore, WebhookSubject, insert_audit, queue_webhook_event};
use crate::store::cache::Listings;
use crate::{
    domain::{
        Access, Action, ArticleClosing, BLOCK_ENDED_NOTE, BlockEntry, BlockOutcome, Blocked,
        ClosedArticle, CommentStatus, Cutoffs, DecisionOutcome, EDIT_ERASED_NOTE, ERASED_EMAIL,
        ERASED_NAME, NewBlock, NewReport, ReportOutcome, ReportReason, ReportedComment,
        SYSTEM_ACTOR, SweepReport, WebhookEvent, audit_action,
    },
    ids::{CommentId, SiteId},
    spam::{Label, Reason},
    store::{
        Deciding, Erasing, Judge, Moderating, NewAuditRow, ReplyFilter, SWEEP_BATCH, StoreError,
        StoreResult, Teaching, in_batches, now,
        rows::{
            BlockRow, CommentRow, ErasableRow, block_columns, blocklist_query, comments_from_rows,
            decode_features, queue_columns, status_from, stored_lesson,
        },
    },
};

#[async_trait]
impl<DB> Moderating for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> CommentRow: FromRow<'r, DB::Row>,
    for<'r> ErasableRow: FromRow<'r, DB::Row>,
    for<'r> BlockRow: FromRow<'r, DB::Row>,
    for<'r> Uuid: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> &'r str: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> Option<f32>: Decode<'r, DB>,
    for<'r> Option<Vec<u8>>: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    for<'r> DateTime<Utc>: Decode<'r, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<bool>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB>,
    for<'q, 's> &'s str: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f32: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f32>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> Json<&'r Vec<Reason>>: Encode<'q, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    async fn decide(
        &self,
        sites: &[SiteId],
        comment: CommentId,
        judge: &Judge<'_>,
    ) -> StoreResult<DecisionOutcome> {
        // Which of the sites holds the comment is known only once it is read; dropping them all
        // is cheap at a moderator's pace.
        let _dropping = self.caches.dropping(Listings::Sites(sites));
        let mut tx = self.writer.begin().await?;
        // Held to the end of the transaction where rows are locked: a second decision on this
        // comment waits here until the first commits, then reads the status the first left.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT site_id, status, features, lesson_label, lesson_weight, lesson_shared \
             FROM comments \
             WHERE id = $1{}",
            DB::FOR_UPDATE
        )))
        .bind(comment.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(DecisionOutcome::NotFound);
        };
        let site = SiteId(row.try_get("site_id")?);
        if !sites.contains(&site) {
            return Ok(DecisionOutcome::NotFound);
        }
        let found = Deciding {
            site,
            status: status_from(row.try_get("status")?)?,
            lesson: stored_lesson(row.try_get("lesson_label")?, row.try_get("lesson_weight")?),
            lesson_shared: row.try_get("lesson_shared")?,
        };
        let change = match judge(&found) {
            Ok(change) => change,
            Err(outcome) => return Ok(outcome),
        };
        match change.to {
            Some(to) => {
                sqlx::query(
                    "UPDATE comments SET status = $1, updated_at = $2, \
                     lesson_label = COALESCE($3, lesson_label), \
                     lesson_weight = COALESCE($4, lesson_weight), \
                     lesson_shared = COALESCE($6, lesson_shared) WHERE id = $5",
                )
                .bind(to.as_str())
                .bind(change.audit.at)
                .bind(change.lesson.map(|(label, _)| label.as_str()))
                .bind(change.lesson.map(|(_, weight)| weight))
                .bind(comment.0)
                .bind(change.lesson.map(|_| change.lesson_shared))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM comments WHERE id = $1")
                    .bind(comment.0)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        insert_audit::<DB>(&mut tx, &change.audit).await?;
        // A decision answers the readers' reports of the comment (a deleted one takes them).
        if change.to.is_some() {
            sqlx::query("DELETE FROM reports WHERE comment_id = $1")
                .bind(comment.0)
                .execute(&mut *tx)
                .await?;
        }
        if !change.taught.is_empty() {
            let features: Option<Vec<u8>> = row.try_get("features")?;
            let features = features.as_deref().map(decode_features).unwrap_or_default();
            for Teaching {
                lesson: (label, weight),
                shared,
            } in change.taught
            {
                let (spam, ham) = match label {
                    Label::Spam => (weight, 0.0),
                    Label::Ham => (0.0, weight),
                };
                DB::teach(&mut tx, site, &features, spam, ham, shared).await?;
            }
        }
        DB::listing_changed(&self.state, &mut tx, site, None).await?;
        tx.commit().await?;
        Ok(DecisionOutcome::Applied {
            from: found.status,
            to: change.to,
        })
    }

    async fn record_access(&self, access: &Access<'_>) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        insert_audit::<DB>(
            &mut conn,
            &NewAuditRow {
                site: access.site,
                comment: access.comment,
                actor: access.actor,
                action: access.kind.as_str(),
                from: None,
                to: None,
                note: Some(access.note),
                at: now(),
            },
        )
        .await?;
        Ok(())
    }

    async fn erase_author(&self, erasure: &dyn Erasing) -> StoreResult<u64> {
        let _dropping = self.caches.dropping(Listings::Site(erasure.site()));
        let mut tx = self.writer.begin().await?;
        let at = now();
        // Locked: a decision on one of these comments waits for the erasure, and cannot write
        // back what it erased.
        let rows = sqlx::query_as::<_, ErasableRow>(AssertSqlSafe(format!(
            "SELECT id, body_public, body_html, reasons FROM comments \
             WHERE site_id = $1 AND author_hash = $2{}",
            DB::FOR_UPDATE
        )))
        .bind(erasure.site().0)
        .bind(&erasure.author_hash().0[..])
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let erased = erasure.erase(&row.body_public, &row.body_html, &row.reasons.0);
            sqlx::query(
                "UPDATE comments SET author_name = $1, author_website = NULL, \
                 email_sealed = $2, author_hash = $3, avatar_seed = '', body = $4, \
                 body_sealed = NULL, body_public = $5, body_html = $6, ip = NULL, \
                 user_agent = NULL, referrer = NULL, reasons = $7, idempotency_key = NULL, \
                 fingerprint = NULL, features = NULL, reader_hash = NULL WHERE id = $8",
            )
            .bind(ERASED_NAME)
            .bind(ERASED_EMAIL)
            .bind(&erased.author_hash.0[..])
            .bind(erased.body.as_str())
            .bind(erased.body_public.as_str())
            .bind(erased.body_html.as_str())
            .bind(Json(&erased.reasons))
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
            // The texts an edit's audit row kept go with the author.
            sqlx::query("UPDATE audit_log SET note = $1 WHERE comment_id = $2 AND action = $3")
                .bind(EDIT_ERASED_NOTE)
                .bind(row.id)
                .bind(audit_action::EDIT)
                .execute(&mut *tx)
                .await?;
            // No mail tells of it any more, nor is one sent of answers to it.
            sqlx::query("DELETE FROM mail_outbox WHERE comment_id = $1 AND state = 'pending'")
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM reply_watches WHERE comment_id = $1")
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            queue_webhook_event::<DB>(
                &mut tx,
                erasure.site(),
                WebhookEvent::CommentErased,
                WebhookSubject::Comment(CommentId(row.id)),
                erasure.actor(),
                at,
            )
            .await?;
        }
        // The address kept for mail: as a reader, as a moderator's notice, and every mail to it,
        // sent or not.
        for statement in [
            "DELETE FROM mail_readers WHERE site_id = $1 AND author_hash = $2",
            "DELETE FROM mail_notices WHERE site_id = $1 AND email_hash = $2",
            "DELETE FROM mail_outbox WHERE site_id = $1 AND recipient_hash = $2",
        ] {
            sqlx::query(statement)
                .bind(erasure.site().0)
                .bind(&erasure.author_hash().0[..])
                .execute(&mut *tx)
                .await?;
        }
        let count = rows.len() as u64;
        let note = erasure.note(count);
        insert_audit::<DB>(
            &mut tx,
            &NewAuditRow::of_site(
                erasure.site(),
                erasure.actor(),
                audit_action::ERASE_AUTHOR,
                &note,
                at,
            ),
        )
        .await?;
        DB::listing_changed(&self.state, &mut tx, erasure.site(), None).await?;
        tx.commit().await?;
        DB::scrubbed(self).await;
        Ok(count)
    }

    async fn block(
        &self,
        block: &NewBlock<'_>,
        reject_pending: Option<&ReplyFilter<'_>>,
    ) -> StoreResult<BlockOutcome> {
        let at = now();
        let kind = block.blocked.kind().as_str();
        let value = block.blocked.value();
        // Only pending replies are rejected, which no listing shows; dropped all the same, so
        // that every status change drops its site's pages.
        let _dropping = self.caches.dropping(match reject_pending {
            Some(_) => Listings::Site(block.site),
            None => Listings::None,
        });
        let mut tx = self.writer.begin().await?;
        let added = sqlx::query(
            "INSERT INTO blocklist (site_id, kind, value, created_at, actor, note, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site_id, kind, value) DO NOTHING",
        )
        .bind(block.site.0)
        .bind(kind)
        .bind(value.as_str())
        .bind(at)
        .bind(block.actor)
        .bind(block.note.unwrap_or_default())
        .bind(block.expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let entry = sqlx::query_as::<_, BlockRow>(concat!(
            "SELECT ",
            block_columns!(),
            " FROM blocklist WHERE site_id = $1 AND kind = $2 AND value = $3"
        ))
        .bind(block.site.0)
        .bind(kind)
        .bind(value.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let note = block.audit_note();
        if added {
            insert_audit::<DB>(
                &mut tx,
                &NewAuditRow::of_site(block.site, block.actor, audit_action::BLOCK, &note, at),
            )
            .await?;
        }
        let mut rejected = Vec::new();
        if let Some(picks) = reject_pending {
            let reject_note = format!("blocked {note}");
            // In batches by id, so that a site with a long queue is never read into memory at
            // once; all in the block's one transaction.
            let mut after = None;
            loop {
                let mut query = QueryBuilder::<DB>::new(concat!(
                    "SELECT ",
                    queue_columns!(),
                    " FROM comments WHERE status = 'pending' AND site_id = "
                ));
                query.push_bind(block.site.0);
                match block.blocked {
                    Blocked::Author(hash) => {
                        query.push(" AND author_hash = ").push_bind(hash.0.to_vec());
                    }
                    Blocked::Ip(ip) => {
                        query.push(" AND ip = ").push_bind(ip.to_string());
                    }
                    Blocked::WebsiteDomain(_) => {
                        query.push(" AND author_website IS NOT NULL");
                    }
                    Blocked::EmailDomain(_) => {}
                }
                if let Some(CommentId(after)) = after {
                    query.push(" AND id > ").push_bind(after);
                }
                // Locked, as `decide` locks them: a moderator's decision on one of them waits,
                // then sees it rejected.
                query
                    .push(" ORDER BY id LIMIT CAST(")
                    .push_bind(SWEEP_BATCH)
                    .push(" AS BIGINT)")
                    .push(DB::FOR_UPDATE);
                let pending = comments_from_rows(
                    query
                        .build_query_as::<CommentRow>()
                        .fetch_all(&mut *tx)
                        .await?,
                )?;
                for comment in &pending {
                    if !picks(comment) {
                        continue;
                    }
                    sqlx::query(
                        "UPDATE comments SET status = 'rejected', updated_at = $1 WHERE id = $2",
                    )
                    .bind(at)
                    .bind(comment.id.0)
                    .execute(&mut *tx)
                    .await?;
                    insert_audit::<DB>(
                        &mut tx,
                        &NewAuditRow {
                            site: block.site,
                            comment: Some(comment.id),
                            actor: block.actor,
                            action: Action::Reject.as_str(),
                            from: Some(CommentStatus::Pending),
                            to: Some(CommentStatus::Rejected),
                            note: Some(&reject_note),
                            at,
                        },
                    )
                    .await?;
                    rejected.push(comment.id);
                }
                match pending.last() {
                    Some(last) if pending.len() == SWEEP_BATCH.unsigned_abs() as usize => {
                        after = Some(last.id);
                    }
                    _ => break,
                }
            }
        }
        if !rejected.is_empty() {
            DB::listing_changed(&self.state, &mut tx, block.site, None).await?;
        }
        tx.commit().await?;
        Ok(BlockOutcome {
            entry: BlockEntry::try_from(entry)?,
            added,
            rejected,
        })
    }

    async fn blocklist(
        &self,
        site: SiteId,
        after: Option<&Blocked>,
        limit: u32,
    ) -> StoreResult<Vec<BlockEntry>> {
        let rows = blocklist_query::<DB>(site, after, limit)
            .build_query_as::<BlockRow>()
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(BlockEntry::try_from).collect()
    }

    async fn unblock(&self, block: &NewBlock<'_>) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let removed =
            sqlx::query("DELETE FROM blocklist WHERE site_id = $1 AND kind = $2 AND value = $3")
                .bind(block.site.0)
                .bind(block.blocked.kind().as_str())
                .bind(block.blocked.value())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if removed {
            let note = block.audit_note();
            insert_audit::<DB>(
                &mut tx,
                &NewAuditRow::of_site(block.site, block.actor, audit_action::UNBLOCK, &note, now()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn close_article(&self, closing: &ArticleClosing<'_>) -> StoreResult<bool> {
        let _dropping = self
            .caches
            .dropping(Listings::Article(closing.site, closing.article));
        let mut tx = self.writer.begin().await?;
        DB::closing_article(&mut tx, closing.site, closing.article).await?;
        let at = now();
        let changed = if closing.closed {
            // A close in effect stays as it is; one that lies ahead takes the new time.
            sqlx::query(
                "INSERT INTO closed_articles (site_id, article, actor, closed_at, note) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site_id, article) DO UPDATE SET \
                 actor = excluded.actor, closed_at = excluded.closed_at, note = excluded.note \
                 WHERE closed_articles.closed_at > $6",
            )
            .bind(closing.site.0)
            .bind(closing.article)
            .bind(closing.actor)
            .bind(closing.at.unwrap_or(at))
            .bind(closing.note.unwrap_or_default())
            .bind(at)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query("DELETE FROM closed_articles WHERE site_id = $1 AND article = $2")
                .bind(closing.site.0)
                .bind(closing.article)
                .execute(&mut *tx)
                .await?
        }
        .rows_affected()
            == 1;
        if changed {
            let note = closing.audit_note();
            insert_audit::<DB>(
                &mut tx,
                &NewAuditRow::of_site(closing.site, closing.actor, closing.action(), &note, at),
            )
            .await?;
            DB::listing_changed(&self.state, &mut tx, closing.site, Some(closing.article)).await?;
            let event = if closing.closed {
                WebhookEvent::ArticleClosed
            } else {
                WebhookEvent::ArticleReopened
            };
            let subject = WebhookSubject::Article(closing.article);
            queue_webhook_event::<DB>(&mut tx, closing.site, event, subject, closing.actor, at)
                .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn report_comment(&self, report: &NewReport<'_>) -> StoreResult<ReportOutcome> {
        // Only a hold changes a listing.
        let _dropping = self.caches.dropping(match report.hold_at {
            Some(_) => Listings::Site(report.site),
            None => Listings::None,
        });
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT site_id, article, status FROM comments WHERE id = $1{}",
            DB::FOR_UPDATE
        )))
        .bind(report.comment.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(ReportOutcome::NotFound);
        };
        let status = status_from(row.try_get("status")?)?;
        let site = SiteId(row.try_get("site_id")?);
        if site != report.site
            || !matches!(status, CommentStatus::Approved | CommentStatus::Pending)
        {
            return Ok(ReportOutcome::NotFound);
        }
        let article: String = row.try_get("article")?;
        let added = sqlx::query(
            "INSERT INTO reports (comment_id, reporter_hash, site_id, reason, text, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (comment_id, reporter_hash) DO NOTHING",
        )
        .bind(report.comment.0)
        .bind(&report.reporter_hash[..])
        .bind(site.0)
        .bind(report.reason.as_str())
        .bind(report.text)
        .bind(report.at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let mut held = false;
        if added {
            // The reason alone: the reader's text may hold anything, and stays with the report.
            insert_audit::<DB>(
                &mut tx,
                &NewAuditRow {
                    site,
                    comment: Some(report.comment),
                    actor: report.actor,
                    action: audit_action::REPORT,
                    from: None,
                    to: None,
                    note: Some(report.reason.as_str()),
                    at: report.at,
                },
            )
            .await?;
            if let (Some(hold_at), CommentStatus::Approved) = (report.hold_at, status) {
                let count: i64 =
                    sqlx::query("SELECT count(*) AS n FROM reports WHERE comment_id = $1")
                        .bind(report.comment.0)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                if count.unsigned_abs() >= u64::from(hold_at) {
                    sqlx::query(
                        "UPDATE comments SET status = 'pending', updated_at = $1 WHERE id = $2",
                    )
                    .bind(report.at)
                    .bind(report.comment.0)
                    .execute(&mut *tx)
                    .await?;
                    let note = format!("{count} reports");
                    insert_audit::<DB>(
                        &mut tx,
                        &NewAuditRow {
                            site,
                            comment: Some(report.comment),
                            actor: SYSTEM_ACTOR,
                            action: audit_action::REPORT_HOLD,
                            from: Some(CommentStatus::Approved),
                            to: Some(CommentStatus::Pending),
                            note: Some(&note),
                            at: report.at,
                        },
                    )
                    .await?;
                    DB::listing_changed(&self.state, &mut tx, site, Some(&article)).await?;
                    held = true;
                }
            }
        }
        tx.commit().await?;
        Ok(ReportOutcome::Stored { added, held })
    }

    async fn reported_comments(
        &self,
        site: SiteId,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<ReportedComment>> {
        let mut query = QueryBuilder::<DB>::new(
            "SELECT c.id, c.article, c.status, c.author_name, c.body_public, \
                    count(*) AS reports, max(r.created_at) AS last_at \
             FROM reports AS r JOIN comments AS c ON c.id = r.comment_id \
             WHERE r.site_id = ",
        );
        query.push_bind(site.0);
        if let Some(CommentId(after)) = after {
            query.push(" AND r.comment_id > ").push_bind(after);
        }
        query
            .push(
                " GROUP BY c.id, c.article, c.status, c.author_name, c.body_public \
                 ORDER BY c.id LIMIT CAST(",
            )
            .push_bind(i64::from(limit))
            .push(" AS BIGINT)");
        let rows = query.build().fetch_all(&self.reader).await?;
        let mut reported = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get("id")?;
            let details = sqlx::query(
                "SELECT reason, text FROM reports WHERE comment_id = $1 \
                 ORDER BY created_at DESC",
            )
            .bind(id)
            .fetch_all(&self.reader)
            .await?;
            let mut reasons: Vec<(ReportReason, u64)> = Vec::new();
            let mut texts = Vec::new();
            for detail in &details {
                let word: String = detail.try_get("reason")?;
                let reason = ReportReason::parse(&word)
                    .ok_or_else(|| StoreError::Corrupt(format!("report reason {word:?}")))?;
                match reasons.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, n)) => *n += 1,
                    None => reasons.push((reason, 1)),
                }
                let text: String = detail.try_get("text")?;
                if !text.is_empty() && texts.len() < 5 {
                    texts.push(text);
                }
            }
            reasons.sort();
            let reports: i64 = row.try_get("reports")?;
            reported.push(ReportedComment {
                comment: CommentId(id),
                article: row.try_get("article")?,
                status: status_from(row.try_get("status")?)?,
                author_name: row.try_get("author_name")?,
                body_public: row.try_get("body_public")?,
                reports: reports.unsigned_abs(),
                reasons,
                texts,
                last_reported_at: row.try_get("last_at")?,
            });
        }
        Ok(reported)
    }

    async fn closed_articles(
        &self,
        site: SiteId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ClosedArticle>> {
        let mut query = QueryBuilder::<DB>::new(
            "SELECT article, actor, closed_at, note FROM closed_articles WHERE site_id = ",
        );
        query.push_bind(site.0);
        if let Some(after) = after {
            query.push(" AND article > ").push_bind(after.to_owned());
        }
        query
            .push(" ORDER BY article LIMIT CAST(")
            .push_bind(i64::from(limit))
            .push(" AS BIGINT)");
        let rows = query.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                Ok(ClosedArticle {
                    article: row.try_get("article")?,
                    actor: row.try_get("actor")?,
                    closed_at: row.try_get("closed_at")?,
                    note: row.try_get("note")?,
                })
            })
            .collect()
    }

    async fn sweep(&self, now: DateTime<Utc>, cutoffs: &Cutoffs) -> StoreResult<SweepReport> {
        // Expiry rejects pending replies only, and deleted spam changes only the parent of its
        // approved answers; as with blocks, dropped anyway.
        let _dropping = self.caches.dropping(
            if cutoffs.expire_pending_before.is_some() || cutoffs.delete_spam_before.is_some() {
                Listings::All
            } else {
                Listings::None
            },
        );
        let client_details_dropped = in_batches(|| async move {
            let done = sqlx::query(DB::DROP_CLIENT_DETAILS)
                .bind(cutoffs.client_details_before)
                .bind(SWEEP_BATCH)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        })
        .await?;
        let mut report = SweepReport {
            client_details_dropped,
            ..SweepReport::default()
        };
        if let Some(before) = cutoffs.expire_pending_before {
            loop {
                let mut tx = self.writer.begin().await?;
                // Skipping locked rows: a reply a moderator is deciding right now is theirs;
                // replicas sweeping at once share the backlog.
                let due = sqlx::query(AssertSqlSafe(format!(
                    "SELECT id, site_id FROM comments \
                     WHERE status = 'pending' AND created_at < $1 \
                     ORDER BY created_at LIMIT CAST($2 AS BIGINT){}",
                    DB::FOR_UPDATE_SKIP_LOCKED
                )))
                .bind(before)
                .bind(SWEEP_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                let mut sites = HashSet::new();
                for row in &due {
                    let id = CommentId(row.try_get("id")?);
                    let site = SiteId(row.try_get("site_id")?);
                    let expired = sqlx::query(
                        "UPDATE comments SET status = 'rejected', updated_at = $1 \
                         WHERE id = $2 AND status = 'pending'",
                    )
                    .bind(now)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if expired == 1 {
                        sites.insert(site);
                        insert_audit::<DB>(&mut tx, &NewAuditRow::expired(site, id, now)).await?;
                        report.expired += 1;
                    }
                }
                for site in sites {
                    DB::listing_changed(&self.state, &mut tx, site, None).await?;
                }
                tx.commit().await?;
                if due.len() < SWEEP_BATCH.unsigned_abs() as usize {
                    break;
                }
            }
        }
        if let Some(before) = cutoffs.delete_spam_before {
            loop {
                let mut tx = self.writer.begin().await?;
                // A reply's `texts_to_check` row goes with it (ON DELETE CASCADE), and approved
                // answers to it lose their parent (ON DELETE SET NULL), so listings are dropped.
                let deleted = sqlx::query(DB::DELETE_SPAM)
                    .bind(before)
                    .bind(SWEEP_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut sites = HashSet::new();
                for row in &deleted {
                    let site = SiteId(row.try_get("site_id")?);
                    sites.insert(site);
                    let id = CommentId(row.try_get("id")?);
                    insert_audit::<DB>(&mut tx, &NewAuditRow::spam_deleted(site, id, now)).await?;
                }
                for site in sites {
                    DB::listing_changed(&self.state, &mut tx, site, None).await?;
                }
                tx.commit().await?;
                report.spam_deleted += deleted.len() as u64;
                if deleted.len() < SWEEP_BATCH.unsigned_abs() as usize {
                    break;
                }
            }
        }
        loop {
            let mut tx = self.writer.begin().await?;
            let ended = sqlx::query(
                "DELETE FROM blocklist WHERE (site_id, kind, value) IN \
                 (SELECT site_id, kind, value FROM blocklist \
                  WHERE expires_at IS NOT NULL AND expires_at <= $1 \
                  ORDER BY expires_at LIMIT CAST($2 AS BIGINT)) \
                 RETURNING site_id, kind, value",
            )
            .bind(now)
            .bind(SWEEP_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            for row in &ended {
                let site = SiteId(row.try_get("site_id")?);
                let kind: String = row.try_get("kind")?;
                let value: String = row.try_get("value")?;
                let note = format!("{kind} {value}: {BLOCK_ENDED_NOTE}");
                insert_audit::<DB>(
                    &mut tx,
                    &NewAuditRow::of_site(site, SYSTEM_ACTOR, audit_action::UNBLOCK, &note, now),
                )
                .await?;
            }
            tx.commit().await?;
            report.blocks_ended += ended.len() as u64;
            if ended.len() < SWEEP_BATCH.unsigned_abs() as usize {
                break;
            }
        }
        report.form_nonces_dropped = in_batches(|| async move {
            let done = sqlx::query(DB::DROP_FORM_NONCES)
                .bind(cutoffs.form_nonces_before)
                .bind(SWEEP_BATCH)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        })
        .await?;
        report.mails_dropped = in_batches(|| async move {
            let done = sqlx::query(
                "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox \
                 WHERE created_at < $1 LIMIT CAST($2 AS BIGINT))",
            )
            .bind(cutoffs.mails_before)
            .bind(SWEEP_BATCH)
            .execute(&self.writer)
            .await?;
            Ok(done.rows_affected())
        })
        .await?;
        if report.client_details_dropped > 0 || report.spam_deleted > 0 || report.mails_dropped > 0
        {
            DB::scrubbed(self).await;
        }
        Ok(report)
    }
}
