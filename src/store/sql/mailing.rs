//! Mail: moderators' notices and the outbox of mails, filled by the changes that cause them
//! (see `queue_notices`) and emptied by the mail worker. Addresses are stored sealed only.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder,
    Type,
};
use uuid::Uuid;

use super::{Backend, RowsAffected, SqlStore, insert_audit, is_unique_violation};
use crate::{
    domain::{Mail, MailKind, MailOutcome, Notice, WebhookEvent, audit_action},
    ids::{CommentId, SiteId},
    store::{Mailing, NewAuditRow, StoreError, StoreResult, StoredComment, now},
};

const NOTICE_COLUMNS: &str =
    "id, site_id, email_sealed, email_hash, events, digest_minutes, actor, created_at";
const MAIL_COLUMNS: &str = "id, site_id, kind, notice_id, recipient_sealed, event, comment_id, \
     attempts, created_at, next_attempt_at";

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
/// caller's transaction: a notice is sent if and only if the reply is stored. A digest's mails
/// all go out when its first one does, `digest_minutes` after that one came in.
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
    &'static str: ColumnIndex<DB::Row>,
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
}
