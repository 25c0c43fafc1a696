//! Mail: moderators' notices and the outbox of mails, filled by the changes that cause them
//! (a new reply's by `Backend::INSERT_REPLY`, an edit's by `queue_notices`, a decision's by
//! `queue_answer`) and emptied by the mail worker. Addresses are stored sealed only.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder,
    Type,
};
use uuid::Uuid;

use super::{Backend, RowsAffected, SqlStore, insert_audit, is_unique_violation};
use crate::{
    domain::{
        ANSWERS_PER_HOUR, AuthorMail, Mail, MailKind, MailOutcome, MailPages, Notice, ReplyWatch,
        WebhookEvent, audit_action,
    },
    ids::{CommentId, SiteId},
    store::{Mailing, NewAuditRow, StoreError, StoreResult, StoredComment, now},
};

const NOTICE_COLUMNS: &str =
    "id, site_id, email_sealed, email_hash, events, digest_minutes, actor, created_at";
const MAIL_COLUMNS: &str = "id, site_id, kind, notice_id, recipient_sealed, recipient_hash, \
     event, comment_id, attempts, created_at, next_attempt_at";

#[derive(FromRow)]
pub(crate) struct NoticeRow {
    id: Uuid,
    site_id: Uuid,
    email_sealed: Vec<u8>,
    email_hash: Vec<u8>,
    events: String,
    digest_minutes: i64,
    actor: String,
    created_at: DateTime<Utc>,
}

impl From<NoticeRow> for Notice {
    fn from(row: NoticeRow) -> Notice {
        Notice {
            id: row.id,
            site: SiteId(row.site_id),
            email_sealed: row.email_sealed,
            email_hash: row.email_hash,
            events: Notice::events_from_stored(&row.events),
            digest_minutes: u32::try_from(row.digest_minutes).unwrap_or(0),
            actor: row.actor,
            created_at: row.created_at,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct MailRow {
    id: Uuid,
    site_id: Uuid,
    kind: String,
    notice_id: Option<Uuid>,
    recipient_sealed: Vec<u8>,
    recipient_hash: Vec<u8>,
    event: String,
    comment_id: Option<Uuid>,
    attempts: i64,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
}

impl TryFrom<MailRow> for Mail {
    type Error = StoreError;

    fn try_from(row: MailRow) -> StoreResult<Mail> {
        Ok(Mail {
            id: row.id,
            site: SiteId(row.site_id),
            kind: MailKind::parse(&row.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("mail kind {:?}", row.kind)))?,
            notice: row.notice_id,
            recipient_sealed: row.recipient_sealed,
            recipient_hash: row.recipient_hash,
            event: row.event,
            comment: row.comment_id.map(CommentId),
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            created_at: row.created_at,
            next_attempt_at: row.next_attempt_at,
        })
    }
}

/// The notice a held reply is queued for: what `queue_notices` reads of it.
#[derive(FromRow)]
pub(crate) struct WantingRow {
    id: Uuid,
    email_sealed: Vec<u8>,
    email_hash: Vec<u8>,
    digest_minutes: i64,
    /// When the notice's digest already gathering replies goes out, if one is.
    gathering: Option<DateTime<Utc>>,
}

/// Queues a mail for each notice of the comment's site that wants to hear of its status, in the
/// caller's transaction: a notice is sent if and only if the change is stored. A digest's mails
/// all go out when its first one does, `digest_minutes` after that one came in. For a reply
/// whose status an edit changed; a new reply's are queued by `Backend::INSERT_REPLY`, by the
/// same rule.
pub(super) async fn queue_notices<DB>(
    conn: &mut DB::Connection,
    c: &StoredComment,
) -> Result<(), sqlx::Error>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> WantingRow: FromRow<'r, DB::Row>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let Some(event) = WebhookEvent::of_status(c.status) else {
        return Ok(());
    };
    let wanted = format!(",{event},");
    let wanting = sqlx::query_as::<_, WantingRow>(AssertSqlSafe(format!(
        "SELECT n.id, n.email_sealed, n.email_hash, n.digest_minutes, \
         (SELECT MIN(o.next_attempt_at) FROM mail_outbox o \
          WHERE o.notice_id = n.id AND o.state = 'pending') AS gathering \
         FROM mail_notices n WHERE n.site_id = $1 AND {}(n.events, $2) > 0",
        DB::POSITION
    )))
    .bind(c.site.0)
    .bind(wanted.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for notice in wanting {
        let due = match (notice.digest_minutes, notice.gathering) {
            (0, _) => c.created_at,
            (_, Some(gathering)) => gathering,
            (minutes, None) => c.created_at + Duration::minutes(minutes),
        };
        sqlx::query(
            "INSERT INTO mail_outbox (id, site_id, kind, notice_id, recipient_sealed, \
             recipient_hash, event, comment_id, state, attempts, created_at, next_attempt_at) \
             VALUES ($1, $2, 'notice', $3, $4, $5, $6, $7, 'pending', 0, $8, $9)",
        )
        .bind(Uuid::now_v7())
        .bind(c.site.0)
        .bind(notice.id)
        .bind(notice.email_sealed.as_slice())
        .bind(notice.email_hash.as_slice())
        .bind(event.as_str())
        .bind(Some(c.id.0))
        .bind(c.created_at)
        .bind(due)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Queues a mail to the author of the reply `answer` answers, when that author asked to be told
/// and confirmed their address, the answer is someone else's, and the author has had fewer than
/// [`ANSWERS_PER_HOUR`] such mails in the last hour. In the caller's transaction: the one that
/// approves a held answer. An answer approved when it is submitted is queued by
/// `Backend::INSERT_REPLY`, by the same rule.
pub(super) async fn queue_answer<DB>(
    conn: &mut DB::Connection,
    answer: CommentId,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO mail_outbox (id, site_id, kind, notice_id, recipient_sealed, \
         recipient_hash, event, comment_id, state, attempts, created_at, next_attempt_at) \
         SELECT {}, r.site_id, 'answer', NULL, r.email_sealed, r.author_hash, \
         'comment.answered', a.id, 'pending', 0, $2, $2 \
         FROM comments a \
         JOIN reply_watches w ON w.comment_id = a.parent_id \
         JOIN comments p ON p.id = a.parent_id \
         JOIN mail_readers r ON r.site_id = p.site_id AND r.author_hash = p.author_hash \
         WHERE a.id = $1 AND r.state = 'confirmed' AND a.author_hash <> p.author_hash \
         AND NOT EXISTS (SELECT 1 FROM mail_outbox o WHERE o.comment_id = a.id \
             AND o.kind = 'answer' AND o.recipient_hash = r.author_hash) \
         AND (SELECT COUNT(*) FROM mail_outbox o WHERE o.site_id = r.site_id \
             AND o.recipient_hash = r.author_hash AND o.kind = 'answer' \
             AND o.created_at > $3) < {ANSWERS_PER_HOUR}",
        DB::NEW_ID
    )))
    .bind(answer.0)
    .bind(at)
    .bind(at - Duration::hours(1))
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl<DB> Mailing for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> NoticeRow: FromRow<'r, DB::Row>,
    for<'r> MailRow: FromRow<'r, DB::Row>,
    for<'r> Uuid: Decode<'r, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'r> DateTime<Utc>: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    &'static str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn add_notice(&self, notice: &Notice) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO mail_notices (id, site_id, email_sealed, email_hash, events, \
             digest_minutes, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(notice.id)
        .bind(notice.site.0)
        .bind(notice.email_sealed.as_slice())
        .bind(notice.email_hash.as_slice())
        .bind(Notice::stored_events(&notice.events))
        .bind(i64::from(notice.digest_minutes))
        .bind(notice.actor.as_str())
        .bind(notice.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::AlreadyExists("a notice to that address")
            } else {
                err.into()
            }
        })?;
        // Not the address: the audit log is read by every moderator.
        let events: Vec<&str> = notice.events.iter().map(|e| e.as_str()).collect();
        let note = format!("notice {} for {}", notice.id, events.join(", "));
        insert_audit::<DB>(
            &mut tx,
            &NewAuditRow::of_site(
                notice.site,
                &notice.actor,
                audit_action::NOTICE_ADD,
                &note,
                notice.created_at,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notices(&self, site: SiteId) -> StoreResult<Vec<Notice>> {
        Ok(sqlx::query_as::<_, NoticeRow>(AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM mail_notices WHERE site_id = $1 ORDER BY created_at, id"
        )))
        .bind(site.0)
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(Notice::from)
        .collect())
    }

    async fn remove_notice(&self, site: SiteId, id: Uuid, actor: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Its mails go with it (ON DELETE CASCADE), sent or not.
        let removed = sqlx::query("DELETE FROM mail_notices WHERE id = $1 AND site_id = $2")
            .bind(id)
            .bind(site.0)
            .execute(&mut *tx)
            .await?;
        let removed = RowsAffected::rows_affected(&removed) == 1;
        if removed {
            let note = format!("notice {id}");
            insert_audit::<DB>(
                &mut tx,
                &NewAuditRow::of_site(site, actor, audit_action::NOTICE_REMOVE, &note, now()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn claim_mails(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Mail>> {
        // Read first, on a reader, as the webhook worker does: the one SQLite writer is the
        // replies'.
        let due = sqlx::query(
            "SELECT 1 FROM mail_outbox WHERE state = 'pending' AND next_attempt_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin().await?;
        let claimed = sqlx::query_as::<_, MailRow>(AssertSqlSafe(format!(
            "UPDATE mail_outbox SET next_attempt_at = $1 \
             WHERE id IN (SELECT id FROM mail_outbox \
             WHERE state = 'pending' AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at LIMIT CAST($3 AS BIGINT){}) \
             RETURNING {MAIL_COLUMNS}",
            DB::FOR_UPDATE_SKIP_LOCKED
        )))
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut mails: Vec<Mail> = claimed
            .into_iter()
            .map(Mail::try_from)
            .collect::<StoreResult<_>>()?;
        mails.sort_by_key(|mail| (mail.created_at, mail.id));
        Ok(mails)
    }

    async fn record_mail(&self, mails: &[Uuid], outcome: &MailOutcome) -> StoreResult<()> {
        if mails.is_empty() {
            return Ok(());
        }
        let mut query = QueryBuilder::<DB>::new("UPDATE mail_outbox SET attempts = attempts + 1, ");
        match outcome {
            MailOutcome::Sent => {
                query.push("state = 'sent', last_error = NULL");
            }
            MailOutcome::Failed { error, retry_at } => {
                query.push("last_error = ").push_bind(error.clone());
                match retry_at {
                    Some(at) => query.push(", next_attempt_at = ").push_bind(*at),
                    None => query.push(", state = 'failed'"),
                };
            }
        }
        query.push(" WHERE id IN (");
        let mut ids = query.separated(", ");
        for id in mails {
            ids.push_bind(*id);
        }
        query.push(")");
        query.build().execute(&self.writer).await?;
        Ok(())
    }

    async fn set_mail_pages(
        &self,
        site: SiteId,
        pages: &MailPages,
        actor: &str,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO mail_pages (site_id, confirm_url, unsubscribe_url) VALUES ($1, $2, $3) \
             ON CONFLICT (site_id) DO UPDATE SET confirm_url = excluded.confirm_url, \
             unsubscribe_url = excluded.unsubscribe_url",
        )
        .bind(site.0)
        .bind(pages.confirm_url.as_str())
        .bind(pages.unsubscribe_url.as_str())
        .execute(&mut *tx)
        .await?;
        let note = format!(
            "confirm {} unsubscribe {}",
            pages.confirm_url, pages.unsubscribe_url
        );
        insert_audit::<DB>(
            &mut tx,
            &NewAuditRow::of_site(site, actor, audit_action::MAIL_PAGES, &note, now()),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mail_pages(&self, site: SiteId) -> StoreResult<Option<MailPages>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT confirm_url, unsubscribe_url FROM mail_pages WHERE site_id = $1",
        )
        .bind(site.0)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(confirm_url, unsubscribe_url)| MailPages {
            confirm_url,
            unsubscribe_url,
        }))
    }

    async fn watch_replies(&self, watch: &ReplyWatch) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO reply_watches (comment_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(watch.comment.0)
            .execute(&mut *tx)
            .await?;
        // A reader who unsubscribed and asks again is asked to confirm again, with a new token:
        // the links of earlier mails confirm nothing more.
        sqlx::query(
            "INSERT INTO mail_readers (site_id, author_hash, email_sealed, state, token_digest, \
             token_sealed, created_at) VALUES ($1, $2, $3, 'pending', $4, $5, $6) \
             ON CONFLICT (site_id, author_hash) DO UPDATE SET state = 'pending', \
             email_sealed = excluded.email_sealed, token_digest = excluded.token_digest, \
             token_sealed = excluded.token_sealed \
             WHERE mail_readers.state = 'unsubscribed'",
        )
        .bind(watch.site.0)
        .bind(watch.author_hash.as_slice())
        .bind(watch.email_sealed.as_slice())
        .bind(watch.token_digest.as_slice())
        .bind(watch.token_sealed.as_slice())
        .bind(watch.at)
        .execute(&mut *tx)
        .await?;
        let queued = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO mail_outbox (id, site_id, kind, notice_id, recipient_sealed, \
             recipient_hash, event, comment_id, state, attempts, created_at, next_attempt_at) \
             SELECT {}, r.site_id, 'confirm', NULL, r.email_sealed, r.author_hash, \
             'email.confirm', $3, 'pending', 0, $4, $4 \
             FROM mail_readers r WHERE r.site_id = $1 AND r.author_hash = $2 \
             AND r.state = 'pending' \
             AND NOT EXISTS (SELECT 1 FROM mail_outbox o WHERE o.site_id = r.site_id \
                 AND o.recipient_hash = r.author_hash AND o.kind = 'confirm' \
                 AND o.created_at > $5)",
            DB::NEW_ID
        )))
        .bind(watch.site.0)
        .bind(watch.author_hash.as_slice())
        .bind(watch.comment.0)
        .bind(watch.at)
        .bind(watch.at - Duration::days(1))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RowsAffected::rows_affected(&queued) == 1)
    }

    async fn confirm_reader(&self, site: SiteId, token_digest: &[u8]) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let known = sqlx::query(
            "UPDATE mail_readers SET state = 'confirmed', \
             confirmed_at = COALESCE(confirmed_at, $3) \
             WHERE site_id = $1 AND token_digest = $2",
        )
        .bind(site.0)
        .bind(token_digest)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RowsAffected::rows_affected(&known) == 1)
    }

    async fn unsubscribe_reader(&self, site: SiteId, token_digest: &[u8]) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let known = sqlx::query(
            "UPDATE mail_readers SET state = 'unsubscribed' \
             WHERE site_id = $1 AND token_digest = $2",
        )
        .bind(site.0)
        .bind(token_digest)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM mail_outbox WHERE state = 'pending' AND kind = 'answer' \
             AND site_id = $1 AND recipient_hash = \
             (SELECT author_hash FROM mail_readers WHERE site_id = $1 AND token_digest = $2)",
        )
        .bind(site.0)
        .bind(token_digest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RowsAffected::rows_affected(&known) == 1)
    }

    async fn reader(
        &self,
        site: SiteId,
        author_hash: &[u8],
    ) -> StoreResult<Option<(Vec<u8>, bool)>> {
        let row: Option<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT token_sealed, state FROM mail_readers WHERE site_id = $1 AND author_hash = $2",
        )
        .bind(site.0)
        .bind(author_hash)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(token, state)| (token, state == "confirmed")))
    }

    async fn author_mail(&self, site: SiteId, author_hash: &[u8]) -> StoreResult<AuthorMail> {
        let reader: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT state, confirmed_at FROM mail_readers WHERE site_id = $1 AND author_hash = $2",
        )
        .bind(site.0)
        .bind(author_hash)
        .fetch_optional(&self.reader)
        .await?;
        let watched: Vec<Uuid> = sqlx::query_scalar(
            "SELECT w.comment_id FROM reply_watches w JOIN comments c ON c.id = w.comment_id \
             WHERE c.site_id = $1 AND c.author_hash = $2 ORDER BY w.comment_id",
        )
        .bind(site.0)
        .bind(author_hash)
        .fetch_all(&self.reader)
        .await?;
        let count = |sql: &'static str| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(site.0)
                .bind(author_hash)
                .fetch_one(&self.reader)
        };
        let notices =
            count("SELECT COUNT(*) FROM mail_notices WHERE site_id = $1 AND email_hash = $2")
                .await?;
        let mails =
            count("SELECT COUNT(*) FROM mail_outbox WHERE site_id = $1 AND recipient_hash = $2")
                .await?;
        let (reader, confirmed_at) = match reader {
            Some((state, at)) => (Some(state), at),
            None => (None, None),
        };
        Ok(AuthorMail {
            reader,
            confirmed_at,
            watched: watched.into_iter().map(CommentId).collect(),
            notices: u64::try_from(notices).unwrap_or(0),
            mails: u64::try_from(mails).unwrap_or(0),
        })
    }
}
