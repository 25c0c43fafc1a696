//! Webhook endpoints and their deliveries: the outbox that the changes fill (see
//! `queue_webhook_event`) and the worker empties.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder,
    Type,
};
use uuid::Uuid;

use super::{Backend, SqlStore, insert_audit};
use crate::{
    domain::{AttemptOutcome, Delivery, DeliveryState, Webhook, WebhookFormat, audit_action},
    ids::{CommentId, SiteId},
    store::{NewAuditRow, StoreError, StoreResult, Webhooks, now},
};

const WEBHOOK_COLUMNS: &str =
    "id, site_id, url, events, note, format, actor, created_at, disabled_at";
const DELIVERY_COLUMNS: &str = "id, endpoint_id, site_id, event, comment_id, article, actor, \
     state, attempts, last_status, last_error, created_at, next_attempt_at";

#[derive(FromRow)]
pub(crate) struct WebhookRow {
    id: Uuid,
    site_id: Uuid,
    url: String,
    events: String,
    note: String,
    format: String,
    actor: String,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;

    fn try_from(row: WebhookRow) -> StoreResult<Webhook> {
        Ok(Webhook {
            id: row.id,
            site: SiteId(row.site_id),
            url: row.url,
            events: Webhook::events_from_stored(&row.events),
            note: row.note,
            format: WebhookFormat::parse(&row.format)
                .ok_or_else(|| StoreError::Corrupt(format!("webhook format {:?}", row.format)))?,
            actor: row.actor,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct DeliveryRow {
    id: Uuid,
    endpoint_id: Uuid,
    site_id: Uuid,
    event: String,
    comment_id: Option<Uuid>,
    article: String,
    actor: String,
    state: String,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> StoreResult<Delivery> {
        Ok(Delivery {
            id: row.id,
            webhook: row.endpoint_id,
            site: SiteId(row.site_id),
            event: row.event,
            comment: row.comment_id.map(CommentId),
            article: row.article,
            actor: row.actor,
            state: DeliveryState::parse(&row.state)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery state {:?}", row.state)))?,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            last_status: row.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: row.last_error,
            created_at: row.created_at,
            next_attempt_at: row.next_attempt_at,
        })
    }
}

fn deliveries_from(rows: Vec<DeliveryRow>) -> StoreResult<Vec<Delivery>> {
    rows.into_iter().map(Delivery::try_from).collect()
}

#[async_trait]
impl<DB> Webhooks for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> WebhookRow: FromRow<'r, DB::Row>,
    for<'r> DeliveryRow: FromRow<'r, DB::Row>,
    for<'r> Uuid: Decode<'r, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    async fn add_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, site_id, url, events, note, format, actor, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(webhook.id)
        .bind(webhook.site.0)
        .bind(webhook.url.as_str())
        .bind(Webhook::stored_events(&webhook.events))
        .bind(webhook.note.as_str())
        .bind(webhook.format.as_str())
        .bind(webhook.actor.as_str())
        .bind(webhook.created_at)
        .execute(&mut *tx)
        .await?;
        // Not the URL, which may hold the receiver's own secret (a Slack webhook's does).
        let events: Vec<&str> = webhook.events.iter().map(|e| e.as_str()).collect();
        let note = format!("webhook {} for {}", webhook.id, events.join(", "));
        insert_audit::<DB>(
            &mut tx,
            &NewAuditRow::of_site(
                webhook.site,
                &webhook.actor,
                audit_action::WEBHOOK_ADD,
                &note,
                webhook.created_at,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhooks(&self, site: SiteId) -> StoreResult<Vec<Webhook>> {
        sqlx::query_as::<_, WebhookRow>(AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE site_id = $1 \
             ORDER BY created_at, id"
        )))
        .bind(site.0)
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(Webhook::try_from)
        .collect()
    }

    async fn remove_webhook(&self, site: SiteId, id: Uuid, actor: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let removed = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND site_id = $2")
            .bind(id)
            .bind(site.0)
            .execute(&mut *tx)
            .await?;
        let removed = super::RowsAffected::rows_affected(&removed) == 1;
        if removed {
            let note = format!("webhook {id}");
            insert_audit::<DB>(
                &mut tx,
                &NewAuditRow::of_site(site, actor, audit_action::WEBHOOK_REMOVE, &note, now()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn deliveries(
        &self,
        site: SiteId,
        webhook: Option<Uuid>,
        failed_only: bool,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let mut query = QueryBuilder::<DB>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE site_id = "
        ));
        query.push_bind(site.0);
        if let Some(webhook) = webhook {
            query.push(" AND endpoint_id = ").push_bind(webhook);
        }
        if failed_only {
            query.push(" AND state = 'failed'");
        }
        if let Some(after) = after {
            // Newest first: the page goes on below the last one shown.
            query
                .push(
                    " AND (created_at, id) < (SELECT created_at, id FROM webhook_deliveries \
                     WHERE id = ",
                )
                .push_bind(after)
                .push(")");
        }
        query
            .push(" ORDER BY created_at DESC, id DESC LIMIT CAST(")
            .push_bind(i64::from(limit))
            .push(" AS BIGINT)");
        deliveries_from(
            query
                .build_query_as::<DeliveryRow>()
                .fetch_all(&self.reader)
                .await?,
        )
    }

    async fn redeliver(
        &self,
        site: SiteId,
        id: Uuid,
        actor: &str,
    ) -> StoreResult<Option<Delivery>> {
        let mut tx = self.writer.begin().await?;
        let at = now();
        let row = sqlx::query_as::<_, DeliveryRow>(AssertSqlSafe(format!(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1 \
             WHERE id = $2 AND site_id = $3 RETURNING {DELIVERY_COLUMNS}"
        )))
        .bind(at)
        .bind(id)
        .bind(site.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let delivery = Delivery::try_from(row)?;
        // Asked for by a person: an endpoint that was gone may be back.
        sqlx::query("UPDATE webhook_endpoints SET disabled_at = NULL WHERE id = $1")
            .bind(delivery.webhook)
            .execute(&mut *tx)
            .await?;
        let note = format!("delivery {id} of webhook {}", delivery.webhook);
        insert_audit::<DB>(
            &mut tx,
            &NewAuditRow::of_site(site, actor, audit_action::WEBHOOK_REDELIVER, &note, at),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(delivery))
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Delivery, Webhook)>> {
        // Read first, on a reader: the worker looks four times a second, and on SQLite the
        // claim's transaction would take the one writer from the replies each time.
        let due = sqlx::query(
            "SELECT 1 FROM webhook_deliveries \
             WHERE state = 'pending' AND next_attempt_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin().await?;
        // Skipping locked rows: replicas claiming at once share the due deliveries.
        let claimed = deliveries_from(
            sqlx::query_as::<_, DeliveryRow>(AssertSqlSafe(format!(
                "UPDATE webhook_deliveries SET next_attempt_at = $1 \
                 WHERE id IN (SELECT id FROM webhook_deliveries \
                 WHERE state = 'pending' AND next_attempt_at <= $2 \
                 ORDER BY next_attempt_at LIMIT CAST($3 AS BIGINT){}) \
                 RETURNING {DELIVERY_COLUMNS}",
                DB::FOR_UPDATE_SKIP_LOCKED
            )))
            .bind(lease_until)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?,
        )?;
        let mut endpoints: HashMap<Uuid, Webhook> = HashMap::new();
        for delivery in &claimed {
            if endpoints.contains_key(&delivery.webhook) {
                continue;
            }
            let row = sqlx::query_as::<_, WebhookRow>(AssertSqlSafe(format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE id = $1"
            )))
            .bind(delivery.webhook)
            .fetch_one(&mut *tx)
            .await?;
            endpoints.insert(delivery.webhook, Webhook::try_from(row)?);
        }
        tx.commit().await?;
        Ok(claimed
            .into_iter()
            .filter_map(|delivery| {
                let endpoint = endpoints.get(&delivery.webhook)?.clone();
                Some((delivery, endpoint))
            })
            .collect())
    }

    async fn record_attempts(&self, attempts: &[(Delivery, AttemptOutcome)]) -> StoreResult<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        // One commit for a round's outcomes: on SQLite each commit is a turn of the one
        // writer that submissions wait for.
        let mut tx = self.writer.begin().await?;
        for (delivery, outcome) in attempts {
            let (state, status, error, next) = match outcome {
                AttemptOutcome::Delivered { status } => {
                    (DeliveryState::Delivered, Some(*status), None, None)
                }
                AttemptOutcome::Gone => (
                    DeliveryState::Failed,
                    Some(410),
                    Some("the endpoint answered 410 Gone, and is disabled".to_owned()),
                    None,
                ),
                AttemptOutcome::Failed {
                    status,
                    error,
                    retry_at,
                } => match retry_at {
                    Some(at) => (
                        DeliveryState::Pending,
                        *status,
                        Some(error.clone()),
                        Some(*at),
                    ),
                    None => (DeliveryState::Failed, *status, Some(error.clone()), None),
                },
            };
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, \
                 last_status = $2, last_error = $3, next_attempt_at = $4 WHERE id = $5",
            )
            .bind(state.as_str())
            .bind(status.map(i64::from))
            .bind(error.clone())
            .bind(next.unwrap_or(delivery.next_attempt_at))
            .bind(delivery.id)
            .execute(&mut *tx)
            .await?;
            if *outcome == AttemptOutcome::Gone {
                let at = now();
                sqlx::query("UPDATE webhook_endpoints SET disabled_at = $1 WHERE id = $2")
                    .bind(at)
                    .bind(delivery.webhook)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'failed', last_error = $1 \
                     WHERE endpoint_id = $2 AND state = 'pending'",
                )
                .bind(error)
                .bind(delivery.webhook)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
