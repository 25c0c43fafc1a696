//! Sites, their policies, and the credentials that reach them.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Row, Type,
    types::Json,
};
use uuid::Uuid;

use super::{Backend, SqlStore, insert_audit, is_unique_violation};
use crate::store::cache::Listings;
use crate::{
    domain::audit_action,
    ids::{SiteId, TokenId},
    spam::Policy,
    store::{
        Credential, LiveToken, NewAuditRow, NewToken, OPERATOR_ACTOR, PolicyEdit, Role, Site,
        Sites, StoreError, StoreResult, TOKEN_USE_PRECISION, now,
        rows::{CredentialRow, SiteRow, credential_from_rows, role_from, scopes_from},
        token_note,
    },
};

#[async_trait]
impl<DB> Sites for SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> SiteRow: FromRow<'r, DB::Row>,
    for<'r> CredentialRow: FromRow<'r, DB::Row>,
    for<'r> Uuid: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> DateTime<Utc>: Decode<'r, DB> + Type<DB>,
    for<'r> Option<DateTime<Utc>>: Decode<'r, DB>,
    for<'q> Uuid: Encode<'q, DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> Json<&'r Policy>: Encode<'q, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn create_site(&self, name: &str, policy: &Policy) -> StoreResult<Site> {
        let site = Site {
            id: SiteId::new(),
            name: name.to_owned(),
            policy: policy.clone(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO sites (id, name, policy, created_at) VALUES ($1, $2, $3, $4)")
            .bind(site.id.0)
            .bind(site.name.as_str())
            .bind(Json(&site.policy))
            .bind(site.created_at)
            .execute(&self.writer)
            .await
            .map_err(|err| {
                if is_unique_violation(&err) {
                    StoreError::AlreadyExists("site")
                } else {
                    err.into()
                }
            })?;
        Ok(site)
    }

    async fn site_by_name(&self, name: &str) -> StoreResult<Option<Site>> {
        let row = sqlx::query_as::<_, SiteRow>(
            "SELECT id, name, policy, created_at FROM sites WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(Site::from))
    }

    async fn site_by_id(&self, id: SiteId) -> StoreResult<Option<Site>> {
        let row = sqlx::query_as::<_, SiteRow>(
            "SELECT id, name, policy, created_at FROM sites WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(Site::from))
    }

    async fn update_policy(
        &self,
        site: SiteId,
        actor: &str,
        edit: &mut PolicyEdit<'_>,
    ) -> StoreResult<Site> {
        let at = now();
        let mut tx = self.writer.begin().await?;
        // The site's row stays locked until the transaction ends.
        let stored: Site = sqlx::query_as::<_, SiteRow>(AssertSqlSafe(format!(
            "SELECT id, name, policy, created_at FROM sites WHERE id = $1{}",
            DB::FOR_UPDATE
        )))
        .bind(site.0)
        .fetch_one(&mut *tx)
        .await?
        .into();
        let Some((policy, note)) = edit(&stored.policy) else {
            return Ok(stored);
        };
        // Articles' clocks are kept with the listings and hold the site's `close-after-days`.
        let ages = policy.close_after_days != stored.policy.close_after_days;
        let _dropping = self.caches.dropping(if ages {
            Listings::Site(site)
        } else {
            Listings::None
        });
        let row = sqlx::query_as::<_, SiteRow>(
            "UPDATE sites SET policy = $1 WHERE id = $2 RETURNING id, name, policy, created_at",
        )
        .bind(Json(&policy))
        .bind(site.0)
        .fetch_one(&mut *tx)
        .await?;
        insert_audit::<DB>(
            &mut tx,
            &NewAuditRow::of_site(site, actor, audit_action::POLICY, &note, at),
        )
        .await?;
        if ages {
            DB::listing_changed(&self.state, &mut tx, site, None).await?;
        }
        tx.commit().await?;
        Ok(Site::from(row))
    }

    async fn insert_token(&self, token: &NewToken) -> StoreResult<()> {
        let issued: StoreResult<()> = async {
            let at = now();
            let mut tx = self.writer.begin().await?;
            sqlx::query(
                "INSERT INTO tokens (id, role, prefix, digest, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token.id.0)
            .bind(token.role.as_str())
            .bind(token.prefix.as_str())
            .bind(&token.digest[..])
            .bind(at)
            .execute(&mut *tx)
            .await?;
            for site in &token.sites {
                sqlx::query("INSERT INTO token_sites (token_id, site_id) VALUES ($1, $2)")
                    .bind(token.id.0)
                    .bind(site.0)
                    .execute(&mut *tx)
                    .await?;
            }
            for scope in &token.scopes {
                sqlx::query("INSERT INTO token_scopes (token_id, scope) VALUES ($1, $2)")
                    .bind(token.id.0)
                    .bind(scope.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            let note = token_note(&token.prefix, token.role, &token.scopes);
            for site in &token.sites {
                insert_audit::<DB>(
                    &mut tx,
                    &NewAuditRow::of_site(
                        *site,
                        OPERATOR_ACTOR,
                        audit_action::TOKEN_ISSUE,
                        &note,
                        at,
                    ),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.caches.issued(&token.digest);
        issued
    }

    async fn revoke_tokens(&self, prefix: &str) -> StoreResult<u64> {
        let revoked: StoreResult<u64> = async {
            let at = now();
            let mut tx = self.writer.begin().await?;
            let revoked = sqlx::query(DB::REVOKE_TOKENS)
                .bind(at)
                .bind(prefix)
                .fetch_all(&mut *tx)
                .await?;
            for token in &revoked {
                let id: Uuid = token.try_get("id")?;
                let prefix: String = token.try_get("prefix")?;
                let role: String = token.try_get("role")?;
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
                let sites: Vec<Uuid> =
                    sqlx::query_scalar("SELECT site_id FROM token_sites WHERE token_id = $1")
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?;
                let note = token_note(&prefix, role, &[]);
                for site in sites {
                    insert_audit::<DB>(
                        &mut tx,
                        &NewAuditRow::of_site(
                            SiteId(site),
                            OPERATOR_ACTOR,
                            audit_action::TOKEN_REVOKE,
                            &note,
                            at,
                        ),
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(revoked.len() as u64)
        }
        .await;
        // Also on failure: a commit whose answer was lost may have happened.
        self.caches.revoked();
        revoked
    }

    async fn sites(&self) -> StoreResult<Vec<Site>> {
        let rows = sqlx::query_as::<_, SiteRow>(
            "SELECT id, name, policy, created_at FROM sites ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(Site::from).collect())
    }

    async fn live_tokens(&self) -> StoreResult<Vec<LiveToken>> {
        let tokens = sqlx::query(
            "SELECT id, role, prefix, created_at, last_used_at FROM tokens \
             WHERE revoked_at IS NULL ORDER BY created_at, prefix",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut sites: HashMap<Uuid, Vec<SiteId>> = HashMap::new();
        for row in sqlx::query(
            "SELECT s.token_id, s.site_id FROM token_sites s \
             JOIN tokens t ON t.id = s.token_id WHERE t.revoked_at IS NULL",
        )
        .fetch_all(&self.reader)
        .await?
        {
            let token: Uuid = row.try_get("token_id")?;
            sites
                .entry(token)
                .or_default()
                .push(SiteId(row.try_get("site_id")?));
        }
        let mut scopes: HashMap<Uuid, Vec<String>> = HashMap::new();
        for row in sqlx::query(
            "SELECT s.token_id, s.scope FROM token_scopes s \
             JOIN tokens t ON t.id = s.token_id WHERE t.revoked_at IS NULL",
        )
        .fetch_all(&self.reader)
        .await?
        {
            let token: Uuid = row.try_get("token_id")?;
            scopes.entry(token).or_default().push(row.try_get("scope")?);
        }
        tokens
            .into_iter()
            .map(|row| {
                let id: Uuid = row.try_get("id")?;
                let role: String = row.try_get("role")?;
                let listed = scopes.remove(&id).map(|list| list.join(","));
                let credential = Credential {
                    id: TokenId(id),
                    role: role_from(&role)?,
                    prefix: row.try_get("prefix")?,
                    sites: sites.remove(&id).unwrap_or_default(),
                    scopes: scopes_from(listed.as_deref())?,
                };
                Ok(LiveToken {
                    credential,
                    issued_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    async fn token_used(&self, token: TokenId, now: DateTime<Utc>) -> StoreResult<()> {
        let precision = chrono::Duration::from_std(TOKEN_USE_PRECISION)
            .unwrap_or_else(|_| chrono::Duration::minutes(1));
        sqlx::query(
            "UPDATE tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now)
        .bind(token.0)
        .bind(now - precision)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn credential(&self, digest: &[u8; 32]) -> StoreResult<Option<Credential>> {
        self.caches
            .credential(digest, async {
                let rows = sqlx::query_as::<_, CredentialRow>(DB::CREDENTIAL)
                    .bind(&digest[..])
                    .fetch_all(&self.reader)
                    .await?;
                credential_from_rows(rows)
            })
            .await
    }
}
