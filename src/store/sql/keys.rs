//! The deployment's secret key, and moving what is stored under it to a new one.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::{Backend, RowsAffected, SqlStore, insert_audit};
use crate::store::cache::Listings;
use crate::{
    domain::audit_action,
    ids::{CommentId, SiteId},
    privacy::Rekeying,
    store::{
        Keys, NewAuditRow, OPERATOR_ACTOR, SWEEP_BATCH, ServingMark, StoreError, StoreResult,
        TextKeeper, now,
        rekey::{RekeyReport, RekeyTally},
        rows::SealedRow,
    },
};

#[async_trait]
impl<DB> Keys for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> SealedRow: FromRow<'r, DB::Row>,
    for<'r> Uuid: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> chrono::DateTime<chrono::Utc>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn key_check(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT digest FROM key_check WHERE id = 1")
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn claim_key_check(&self, check: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO key_check (id, digest) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .bind(check)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT digest FROM key_check WHERE id = 1")
                .fetch_one(&self.writer)
                .await?,
        )
    }

    async fn newest_sealed_email(&self) -> StoreResult<Option<(SiteId, Vec<u8>)>> {
        let row: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT site_id, email_sealed FROM comments \
             WHERE length(email_sealed) > 0 ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(site, sealed)| (SiteId(site), sealed)))
    }

    async fn rekey(&self, rekeying: &Rekeying) -> StoreResult<RekeyReport> {
        let (old_check, new_check) = rekeying.checks();
        let at = now();
        // Listings show avatar seeds, which the new key changes.
        let _dropping = self.caches.dropping(Listings::All);
        let mut tx = self.writer.begin().await?;
        DB::rekey_alone(&mut tx).await?;
        let checked = sqlx::query("UPDATE key_check SET digest = $1 WHERE id = 1 AND digest = $2")
            .bind(&new_check[..])
            .bind(&old_check[..])
            .execute(&mut *tx)
            .await?;
        if checked.rows_affected() != 1 {
            return Err(StoreError::WrongKey);
        }
        let blocked: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT site_id, value FROM blocklist WHERE kind = 'author'")
                .fetch_all(&mut *tx)
                .await?;
        let mut tally = RekeyTally::new(
            blocked
                .into_iter()
                .map(|(site, value)| (SiteId(site), value)),
        )?;
        let mut after = Uuid::nil();
        loop {
            let rows: Vec<SealedRow> = sqlx::query_as(
                "SELECT id, site_id, email_sealed, author_hash, body_sealed FROM comments \
                 WHERE id > $1 AND length(email_sealed) > 0 ORDER BY id LIMIT CAST($2 AS BIGINT)",
            )
            .bind(after)
            .bind(SWEEP_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let mut batch = Vec::with_capacity(rows.len());
            for row in &rows {
                let resealed = row.reseal(rekeying)?;
                tally.comment(SiteId(row.site_id), &row.author_hash, &resealed);
                batch.push((row.id, resealed));
            }
            DB::reseal(&mut tx, &batch).await?;
            match rows.last() {
                Some(last) if rows.len() == SWEEP_BATCH.unsigned_abs() as usize => after = last.id,
                _ => break,
            }
        }
        for change in tally.block_changes() {
            let statement = match &change.new {
                Some(new) => sqlx::query(
                    "UPDATE blocklist SET value = $3 \
                     WHERE site_id = $1 AND kind = 'author' AND value = $2",
                )
                .bind(change.site.0)
                .bind(change.old.as_str())
                .bind(new.as_str()),
                None => sqlx::query(
                    "DELETE FROM blocklist WHERE site_id = $1 AND kind = 'author' AND value = $2",
                )
                .bind(change.site.0)
                .bind(change.old.as_str()),
            };
            statement.execute(&mut *tx).await?;
        }
        // The addresses kept for mail, each found by its sealed bytes (a fresh nonce makes
        // each unique): few, so one statement each.
        for (table, sealed, hash) in [
            ("mail_notices", "email_sealed", Some("email_hash")),
            ("mail_outbox", "recipient_sealed", Some("recipient_hash")),
            ("mail_readers", "email_sealed", Some("author_hash")),
            // The readers' link tokens, sealed as addresses are; no hash of them is kept.
            ("mail_readers", "token_sealed", None),
        ] {
            let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT site_id, {sealed} FROM {table}"
            )))
            .fetch_all(&mut *tx)
            .await?;
            for (site, old) in rows {
                let (new_sealed, new_hash) =
                    rekeying.reseal_address(SiteId(site), &old).map_err(|_| {
                        StoreError::Corrupt(format!(
                            "{table}: an address does not open under the old key"
                        ))
                    })?;
                let query = match hash {
                    Some(hash) => sqlx::query(AssertSqlSafe(format!(
                        "UPDATE {table} SET {sealed} = $1, {hash} = $2 \
                         WHERE site_id = $3 AND {sealed} = $4"
                    )))
                    .bind(new_sealed.as_slice())
                    .bind(&new_hash.0[..]),
                    None => sqlx::query(AssertSqlSafe(format!(
                        "UPDATE {table} SET {sealed} = $1 WHERE site_id = $2 AND {sealed} = $3"
                    )))
                    .bind(new_sealed.as_slice()),
                };
                query
                    .bind(site)
                    .bind(old.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let forgotten = sqlx::query(
            "UPDATE comments SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let sites: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM sites ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let sites: Vec<SiteId> = sites.into_iter().map(SiteId).collect();
        for (site, note) in tally.notes(&sites) {
            insert_audit::<DB>(
                &mut tx,
                &NewAuditRow::of_site(site, OPERATOR_ACTOR, audit_action::KEY_ROTATE, &note, at),
            )
            .await?;
            // Listings show avatar seeds: replicas drop what they cached.
            DB::listing_changed(&self.state, &mut tx, site, None).await?;
        }
        tx.commit().await?;
        // What the old key sealed must not stay in the database's files.
        DB::scrubbed(self).await;
        Ok(tally.report(forgotten))
    }

    async fn mark_serving(&self) -> StoreResult<Option<ServingMark>> {
        DB::mark_serving(self).await
    }

    async fn keep_texts_again(&self, keep: &TextKeeper<'_>) -> StoreResult<u64> {
        // A public text may change; this runs when a server starts, before any read.
        let _dropping = self.caches.dropping(Listings::All);
        let mut kept = 0;
        for batch in DB::TEXTS_TO_KEEP {
            loop {
                let mut tx = self.writer.begin().await?;
                let rows: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(batch)
                    .bind(SWEEP_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut changed_sites = Vec::new();
                for (id, site, raw, public) in &rows {
                    let text = keep(SiteId(*site), CommentId(*id), raw);
                    if text.body_public != *public {
                        changed_sites.push(SiteId(*site));
                    }
                    sqlx::query(
                        "UPDATE comments SET body = $1, body_sealed = $2, body_public = $3, \
                         body_html = $4 WHERE id = $5",
                    )
                    .bind(text.body.as_str())
                    .bind(text.body_sealed.as_deref())
                    .bind(text.body_public.as_str())
                    .bind(text.body_html.as_str())
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM texts_to_check WHERE comment_id = $1")
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
                // Replicas drop what they cached of the listings whose text changed.
                changed_sites.sort_unstable();
                changed_sites.dedup();
                for site in changed_sites {
                    DB::listing_changed(&self.state, &mut tx, site, None).await?;
                }
                tx.commit().await?;
                kept += rows.len() as u64;
                if rows.len() < SWEEP_BATCH.unsigned_abs() as usize {
                    break;
                }
            }
        }
        // What remains listed was sealed already, so kept as now.
        sqlx::query(
            "DELETE FROM texts_to_check WHERE comment_id IN \
             (SELECT id FROM comments WHERE body_sealed IS NOT NULL)",
        )
        .execute(&self.writer)
        .await?;
        if kept > 0 {
            DB::scrubbed(self).await;
        }
        Ok(kept)
    }
}
