//! The PostgreSQL store: one database shared by several replicas of
//! `replyguard serve`.
//!
//! It behaves exactly as the SQLite store does; only the means differ. Each
//! replica keeps a bounded pool, and a call that cannot get a connection in
//! time fails as `Unavailable` instead of waiting for a database that is
//! down. Nothing is kept in memory between calls: every replica reads what
//! another one wrote. `decide` locks its comment row, so two moderators
//! deciding the same comment on two replicas apply one after the other and
//! the second sees the first's result.

use std::{
    collections::{HashMap, HashSet},
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    Postgres, QueryBuilder, Row,
    error::DatabaseError,
    postgres::{PgConnectOptions, PgDatabaseError, PgListener, PgPool, PgPoolOptions},
    types::Json,
};
use tokio::{sync::broadcast, task::JoinHandle};
use uuid::Uuid;

use super::{
    EVENT_BUFFER, HeldMark, ListingEvent, ListingEvents, NewAuditRow, NewToken, OPERATOR_ACTOR,
    PolicyEdit, RECENT_REPLIES, ReplyFilter, Role, SWEEP_BATCH, ServingMark, Site, Store,
    StoreError, StoreOptions, StoreResult, StoredComment, StoredFacts, TextKeeper, ThreadCursor,
    ThreadOrder, ThreadPage, in_batches, lesson, lessons, now,
    rekey::{RekeyReport, RekeyTally},
    rows::{
        AuditRow, BlockRow, CommentRow, CredentialRow, ErasableRow, ListedRow, SealedRow, SiteRow,
        blocklist_query, blocks_matching_query, comment_columns, comments_from_rows, count,
        credential_from_rows, decode_features, encode_features, listed_from_rows, queue_columns,
        seed_statements, status_from, thread_page_query,
    },
    stored_lesson, token_note,
};
use crate::{
    ids::{AuditId, CommentId, SiteId},
    moderation::{
        Access, Action, ArticleClosing, AuditRecord, BlockEntry, BlockOutcome, BlockSubject,
        Blocked, ClosedArticle, CommentStatus, Cutoffs, Decision, DecisionOutcome, ERASED_EMAIL,
        ERASED_NAME, Erasure, NewBlock, QueueEvent, SweepReport, audit_action,
    },
    privacy::Rekeying,
    spam::{Label, Policy, RecentReply},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A server's mark on the database: the connection that holds the serving lock shared.
struct Serving(sqlx::PgConnection);

#[async_trait]
impl HeldMark for Serving {
    async fn release(self: Box<Self>) {
        let Serving(mut connection) = *self;
        // Unlocked before the connection goes, since the server ends a session only once it
        // has seen the connection close.
        let unlocked =
            sqlx::query("SELECT pg_advisory_unlock_shared('key_check'::regclass::oid::bigint)")
                .execute(&mut connection)
                .await;
        if let Err(err) = unlocked {
            tracing::warn!(error = %err, "releasing the serving lock failed; it goes with the connection");
        }
        let _ = sqlx::Connection::close(connection).await;
    }
}

/// Comments per `INSERT` when seeding: 27 values each stays below
/// PostgreSQL's limit of 65,535 bound values per statement.
const SEED_ROWS_PER_STATEMENT: usize = 1000;

/// A store on one PostgreSQL database (or one schema of it, when the URL
/// sets `search_path`).
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    events: Arc<Events>,
}

impl PostgresStore {
    /// Connects to and migrates the database at `url`.
    pub async fn open(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|err| StoreError::Config(format!("cannot use the PostgreSQL URL: {err}")))?;
        if connect.get_application_name().is_none() {
            // Names this service's sessions in `pg_stat_activity`.
            connect = connect.application_name("replyguard");
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        if let Err(err) = MIGRATOR.run(&pool).await {
            // A failed run keeps the migrator's session lock on its
            // connection; closing the pool ends that session and frees the
            // lock for the other replicas.
            pool.close().await;
            return Err(super::migration_error(err));
        }
        let events = Arc::new(Events::listen(&pool).await?);
        Ok(PostgresStore { pool, events })
    }
}

/// Whether PostgreSQL refused a statement for a passing reason, so that the
/// caller may retry: the connection or server went away, the server is
/// starting or shutting down, out of connections, a failover left us on a
/// read-only standby, or a transaction lost a race that a retry would win.
pub(super) fn is_retryable(err: &dyn DatabaseError) -> bool {
    let Some(err) = err.try_downcast_ref::<PgDatabaseError>() else {
        return false;
    };
    let code = err.code();
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "25006" | "40001" | "40P01"
        )
}

/// Whether `err` is a unique violation of the named constraint or index.
fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.is_unique_violation() && db.constraint() == Some(constraint))
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_site(&self, name: &str, policy: &Policy) -> StoreResult<Site> {
        let site = Site {
            id: SiteId::new(),
            name: name.to_owned(),
            policy: policy.clone(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO sites (id, name, policy, created_at) VALUES ($1, $2, $3, $4)")
            .bind(site.id.0)
            .bind(&site.name)
            .bind(Json(&site.policy))
            .bind(site.created_at)
            .execute(&self.pool)
            .await
            .map_err(|err| {
                if violates(&err, "sites_name_unique") {
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Site::from))
    }

    async fn site_by_id(&self, id: SiteId) -> StoreResult<Option<Site>> {
        let row = sqlx::query_as::<_, SiteRow>(
            "SELECT id, name, policy, created_at FROM sites WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Site::from))
    }

    async fn insert_token(&self, token: &NewToken) -> StoreResult<()> {
        let sites: Vec<Uuid> = token.sites.iter().map(|site| site.0).collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO tokens (id, role, prefix, digest, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.id.0)
        .bind(token.role.as_str())
        .bind(&token.prefix)
        .bind(&token.digest[..])
        .bind(now())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO token_sites (token_id, site_id) SELECT $1, unnest($2::uuid[])")
            .bind(token.id.0)
            .bind(&sites)
            .execute(&mut *tx)
            .await?;
        let scopes: Vec<&str> = token.scopes.iter().map(|scope| scope.as_str()).collect();
        sqlx::query("INSERT INTO token_scopes (token_id, scope) SELECT $1, unnest($2::text[])")
            .bind(token.id.0)
            .bind(&scopes)
            .execute(&mut *tx)
            .await?;
        let note = token_note(&token.prefix, token.role, &token.scopes);
        let at = now();
        for site in &token.sites {
            insert_audit(
                &mut tx,
                &NewAuditRow::of_site(*site, OPERATOR_ACTOR, audit_action::TOKEN_ISSUE, &note, at),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_tokens(&self, prefix: &str) -> StoreResult<u64> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        // `starts_with` rather than LIKE: a prefix may contain `_`, a LIKE
        // wildcard. On a "C" column it is served by the `tokens_prefix` index.
        let revoked = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 \
             WHERE revoked_at IS NULL AND starts_with(prefix, $2) \
             RETURNING id, prefix, role",
        )
        .bind(at)
        .bind(prefix)
        .fetch_all(&mut *tx)
        .await?;
        for token in &revoked {
            let id: Uuid = token.try_get("id")?;
            let prefix: String = token.try_get("prefix")?;
            let role: String = token.try_get("role")?;
            let role =
                Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
            let sites: Vec<Uuid> =
                sqlx::query_scalar("SELECT site_id FROM token_sites WHERE token_id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            let note = token_note(&prefix, role, &[]);
            for site in sites {
                insert_audit(
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

    async fn credential(&self, digest: &[u8; 32]) -> StoreResult<Option<super::Credential>> {
        let rows = sqlx::query_as::<_, CredentialRow>(
            "SELECT t.id, t.role, t.prefix, s.site_id, \
             (SELECT string_agg(scope, ',') FROM token_scopes WHERE token_id = t.id) AS scopes \
             FROM tokens t \
             LEFT JOIN token_sites s ON s.token_id = t.id \
             WHERE t.digest = $1 AND t.revoked_at IS NULL",
        )
        .bind(&digest[..])
        .fetch_all(&self.pool)
        .await?;
        credential_from_rows(rows)
    }

    async fn insert_comment(&self, c: &StoredComment, actor: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(concat!(
            "INSERT INTO comments (",
            comment_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
        ))
        .bind(c.id.0)
        .bind(c.site.0)
        .bind(&c.article)
        .bind(c.parent.map(|p| p.0))
        .bind(c.root.0)
        .bind(&c.path)
        .bind(i64::from(c.depth))
        .bind(c.status.as_str())
        .bind(&c.author_name)
        .bind(&c.author_website)
        .bind(&c.email_sealed)
        .bind(&c.author_hash)
        .bind(&c.avatar_seed)
        .bind(&c.body)
        .bind(&c.body_public)
        .bind(&c.body_html)
        .bind(&c.ip)
        .bind(&c.user_agent)
        .bind(&c.referrer)
        .bind(c.score)
        .bind(c.verdict.as_str())
        .bind(Json(&c.reasons))
        .bind(&c.idempotency_key)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.fingerprint.map(|f| f as i64))
        .bind(encode_features(&c.features))
        .bind(&c.body_sealed)
        .execute(&mut *tx)
        .await
        .map_err(|err| {
            if violates(&err, "comments_idempotency") {
                StoreError::AlreadyExists("idempotency key")
            } else {
                err.into()
            }
        })?;
        sqlx::query(
            "INSERT INTO audit_log (id, site_id, comment_id, actor, action, to_status, created_at) \
             VALUES ($1, $2, $3, $4, 'submit', $5, $6)",
        )
        .bind(AuditId::new().0)
        .bind(c.site.0)
        .bind(c.id.0)
        .bind(actor)
        .bind(c.status.as_str())
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?;
        // Delivered to every replica's listener when, and only if, the
        // transaction commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.events.channel)
            .bind(encode_event(&QueueEvent {
                site: c.site,
                comment: c.id,
                status: c.status,
            }))
            .execute(&mut *tx)
            .await?;
        if c.status == CommentStatus::Approved {
            notify_listing(&mut tx, &self.events.channel, c.site, Some(&c.article)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn seed_comments(&self, comments: &[StoredComment], actor: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in comments.chunks(SEED_ROWS_PER_STATEMENT) {
            let (mut insert, mut audit) = seed_statements::<Postgres>(chunk, actor);
            insert.build().execute(&mut *tx).await?;
            audit.build().execute(&mut *tx).await?;
        }
        // Running replicas drop what they cached of these sites' listings.
        let mut sites: Vec<SiteId> = comments.iter().map(|c| c.site).collect();
        sites.sort_unstable();
        sites.dedup();
        for site in sites {
            notify_listing(&mut tx, &self.events.channel, site, None).await?;
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
        .fetch_optional(&self.pool)
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
        .fetch_optional(&self.pool)
        .await?
        .map(StoredComment::try_from)
        .transpose()
    }

    async fn thread_page(
        &self,
        site: SiteId,
        article: &str,
        order: ThreadOrder,
        after: Option<&ThreadCursor>,
        limit: u32,
    ) -> StoreResult<Arc<ThreadPage>> {
        let mut query = thread_page_query(site, article, order, after, limit);
        let rows = query
            .build_query_as::<ListedRow>()
            .fetch_all(&self.pool)
            .await?;
        listed_from_rows(rows).map(ThreadPage::new)
    }

    async fn count_approved(
        &self,
        site: SiteId,
        articles: &[String],
    ) -> StoreResult<HashMap<String, u64>> {
        // One index range per article, whatever the planner's statistics
        // say: `article = ANY($2)` over a table not yet analysed was read
        // as a filter on every approved comment of the site.
        let rows = sqlx::query(
            "SELECT a.article, c.n FROM unnest($2::text[]) AS a (article) \
             CROSS JOIN LATERAL (SELECT count(*) AS n FROM comments \
                 WHERE site_id = $1 AND status = 'approved' AND article = a.article) AS c \
             WHERE c.n > 0",
        )
        .bind(site.0)
        .bind(articles)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok((row.try_get("article")?, n.unsigned_abs()))
            })
            .collect()
    }

    async fn queue_page(
        &self,
        site: SiteId,
        status: CommentStatus,
        article: Option<&str>,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<StoredComment>> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            queue_columns!(),
            " FROM comments WHERE site_id = "
        ));
        query.push_bind(site.0);
        query.push(" AND status = ").push_bind(status.as_str());
        if let Some(article) = article {
            query.push(" AND article = ").push_bind(article);
        }
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after.0);
        }
        query
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query
            .build_query_as::<CommentRow>()
            .fetch_all(&self.pool)
            .await?;
        comments_from_rows(rows)
    }

    async fn decide(
        &self,
        sites: &[SiteId],
        decision: &Decision<'_>,
    ) -> StoreResult<DecisionOutcome> {
        let sites: Vec<Uuid> = sites.iter().map(|site| site.0).collect();
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: a second decision on this comment waits here until the
        // first commits, then reads the status the first one left.
        let row = sqlx::query(
            "SELECT site_id, status, features, lesson_label, lesson_weight FROM comments \
             WHERE id = $1 AND site_id = ANY($2) FOR UPDATE",
        )
        .bind(decision.comment.0)
        .bind(&sites)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(DecisionOutcome::NotFound);
        };
        let site = SiteId(row.try_get("site_id")?);
        let from = status_from(row.try_get("status")?)?;
        if decision.expected.is_some_and(|expected| expected != from) {
            tx.rollback().await?;
            return Ok(DecisionOutcome::Conflict { actual: from });
        }
        let now = now();
        let to = decision.action.target();
        let taught = lesson(decision.action, from, to);
        match to {
            Some(to) => {
                sqlx::query(
                    "UPDATE comments SET status = $1, updated_at = $2, \
                     lesson_label = COALESCE($3, lesson_label), \
                     lesson_weight = COALESCE($4, lesson_weight) WHERE id = $5",
                )
                .bind(to.as_str())
                .bind(now)
                .bind(taught.map(|(label, _)| label.as_str()))
                .bind(taught.map(|(_, weight)| weight))
                .bind(decision.comment.0)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM comments WHERE id = $1")
                    .bind(decision.comment.0)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO audit_log \
             (id, site_id, comment_id, actor, action, from_status, to_status, note, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(AuditId::new().0)
        .bind(site.0)
        .bind(decision.comment.0)
        .bind(decision.actor)
        .bind(decision.action.as_str())
        .bind(from.as_str())
        .bind(to.map(CommentStatus::as_str))
        .bind(decision.note)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let earlier = stored_lesson(row.try_get("lesson_label")?, row.try_get("lesson_weight")?);
        let changes = lessons(taught, earlier);
        if !changes.is_empty() {
            let features: Option<Vec<u8>> = row.try_get("features")?;
            let features = features.as_deref().map(decode_features).unwrap_or_default();
            for (label, weight) in changes {
                teach(&mut tx, site, &features, label, weight).await?;
            }
        }
        notify_listing(&mut tx, &self.events.channel, site, None).await?;
        tx.commit().await?;
        Ok(DecisionOutcome::Applied { from, to })
    }

    async fn history(&self, comment: CommentId) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT id, comment_id, actor, action, from_status, to_status, note, created_at \
             FROM audit_log WHERE comment_id = $1 ORDER BY id",
        )
        .bind(comment.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    async fn facts(
        &self,
        site: SiteId,
        author_hash: &[u8],
        article: &str,
        ip: Option<&str>,
        features: &[u64],
    ) -> StoreResult<StoredFacts> {
        let mut facts = StoredFacts::default();
        // The author's and the address's records and the learned totals in
        // one round trip: each aggregate is one row, even over no comments.
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
        .bind(author_hash)
        .bind(ip)
        .fetch_one(&self.pool)
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
        .bind(author_hash)
        .bind(article)
        .bind(i64::from(RECENT_REPLIES))
        .fetch_all(&self.pool)
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
            let wanted: Vec<i64> = features.iter().map(|&f| f as i64).collect();
            let rows = sqlx::query(
                "SELECT feature, spam, ham FROM spam_features \
                 WHERE site_id = $1 AND feature = ANY($2)",
            )
            .bind(site.0)
            .bind(&wanted)
            .fetch_all(&self.pool)
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

    async fn key_check(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT digest FROM key_check WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn claim_key_check(&self, check: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO key_check (id, digest) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .bind(check)
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT digest FROM key_check WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn newest_sealed_email(&self) -> StoreResult<Option<(SiteId, Vec<u8>)>> {
        let row: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT site_id, email_sealed FROM comments \
             WHERE length(email_sealed) > 0 ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(site, sealed)| (SiteId(site), sealed)))
    }

    async fn rekey(&self, rekeying: &Rekeying) -> StoreResult<RekeyReport> {
        let (old_check, new_check) = rekeying.checks();
        let at = now();
        let mut tx = self.pool.begin().await?;
        // The serving lock (see `mark_serving`), alone, to the end of the transaction.
        let alone: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock('key_check'::regclass::oid::bigint)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if !alone {
            return Err(StoreError::Serving);
        }
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
                 WHERE id > $1 AND length(email_sealed) > 0 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(SWEEP_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            // One statement per batch: the columns as arrays, unnested side by side.
            let mut ids = Vec::with_capacity(rows.len());
            let mut emails = Vec::with_capacity(rows.len());
            let mut hashes = Vec::with_capacity(rows.len());
            let mut seeds = Vec::with_capacity(rows.len());
            let mut bodies = Vec::with_capacity(rows.len());
            for row in &rows {
                let resealed = row.reseal(rekeying)?;
                tally.comment(SiteId(row.site_id), &row.author_hash, &resealed);
                ids.push(row.id);
                emails.push(resealed.email_sealed);
                hashes.push(resealed.author_hash.0.to_vec());
                seeds.push(resealed.avatar_seed);
                bodies.push(resealed.body_sealed);
            }
            sqlx::query(
                "UPDATE comments AS c SET email_sealed = u.email_sealed, \
                 author_hash = u.author_hash, avatar_seed = u.avatar_seed, \
                 body_sealed = u.body_sealed \
                 FROM unnest($1::uuid[], $2::bytea[], $3::bytea[], $4::text[], $5::bytea[]) \
                 AS u (id, email_sealed, author_hash, avatar_seed, body_sealed) \
                 WHERE c.id = u.id",
            )
            .bind(&ids)
            .bind(&emails)
            .bind(&hashes)
            .bind(&seeds)
            .bind(&bodies)
            .execute(&mut *tx)
            .await?;
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
                .bind(&change.old)
                .bind(new),
                None => sqlx::query(
                    "DELETE FROM blocklist WHERE site_id = $1 AND kind = 'author' AND value = $2",
                )
                .bind(change.site.0)
                .bind(&change.old),
            };
            statement.execute(&mut *tx).await?;
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
            insert_audit(
                &mut tx,
                &NewAuditRow::of_site(site, OPERATOR_ACTOR, audit_action::KEY_ROTATE, &note, at),
            )
            .await?;
            // Listings show avatar seeds: replicas drop what they cached.
            notify_listing(&mut tx, &self.events.channel, site, None).await?;
        }
        tx.commit().await?;
        Ok(tally.report(forgotten))
    }

    async fn mark_serving(&self) -> StoreResult<Option<ServingMark>> {
        let mut connection = self.pool.acquire().await?.detach();
        // An advisory lock every server holds shared on a connection of its own while it serves,
        // and `rekey` takes alone. Its key is the `key_check` table's oid, so each database, and
        // each schema of one, has its own.
        sqlx::query("SELECT pg_advisory_lock_shared('key_check'::regclass::oid::bigint)")
            .execute(&mut connection)
            .await?;
        Ok(Some(ServingMark {
            held: Box::new(Serving(connection)),
        }))
    }

    async fn use_form_nonce(&self, site: SiteId, nonce: &[u8; 16]) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO form_nonces (site_id, nonce, used_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(site.0)
        .bind(&nonce[..])
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn duplicate_of(
        &self,
        site: SiteId,
        article: &str,
        author_hash: &[u8],
        body_public: &str,
    ) -> StoreResult<Option<CommentId>> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM comments \
             WHERE site_id = $1 AND author_hash = $2 AND article = $3 AND body_public = $4 \
             LIMIT 1",
        )
        .bind(site.0)
        .bind(author_hash)
        .bind(article)
        .bind(body_public)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(CommentId))
    }

    async fn keep_texts_again(&self, keep: &TextKeeper<'_>) -> StoreResult<u64> {
        // The rows of the partial index `comments_unsealed`, then those migration 0005 listed.
        // `ORDER BY id` is what makes the planner read the partial index: it cannot estimate
        // `body <> body_public`, and without it scans the whole table at every start. A replica
        // starting at the same time skips the rows this one holds.
        const BATCHES: [&str; 2] = [
            "SELECT id, site_id, body, body_public FROM comments \
             WHERE body_sealed IS NULL AND body <> body_public ORDER BY id LIMIT $1 \
             FOR UPDATE SKIP LOCKED",
            "SELECT c.id, c.site_id, c.body, c.body_public FROM texts_to_check t \
             JOIN comments c ON c.id = t.comment_id WHERE c.body_sealed IS NULL LIMIT $1 \
             FOR UPDATE OF c SKIP LOCKED",
        ];
        let mut kept = 0;
        for batch in BATCHES {
            loop {
                let mut tx = self.pool.begin().await?;
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
                    .bind(&text.body)
                    .bind(&text.body_sealed)
                    .bind(&text.body_public)
                    .bind(&text.body_html)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM texts_to_check WHERE comment_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                // Replicas drop what they cached of the listings whose text changed.
                changed_sites.sort_unstable();
                changed_sites.dedup();
                for site in changed_sites {
                    notify_listing(&mut tx, &self.events.channel, site, None).await?;
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
        .execute(&self.pool)
        .await?;
        Ok(kept)
    }

    fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.events.sender.subscribe()
    }

    fn listing_events(&self) -> Option<ListingEvents> {
        // Subscribed first: an interruption after the flag is read still
        // arrives as an event.
        let events = self.events.listing.subscribe();
        let listening = self.events.listening.load(Ordering::SeqCst);
        Some(ListingEvents { events, listening })
    }

    async fn update_policy(
        &self,
        site: SiteId,
        actor: &str,
        edit: &mut PolicyEdit<'_>,
    ) -> StoreResult<Site> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        // The site's row stays locked until the transaction ends.
        let stored: Site = sqlx::query_as::<_, SiteRow>(
            "SELECT id, name, policy, created_at FROM sites WHERE id = $1 FOR UPDATE",
        )
        .bind(site.0)
        .fetch_one(&mut *tx)
        .await?
        .into();
        let Some((policy, note)) = edit(&stored.policy) else {
            return Ok(stored);
        };
        let row = sqlx::query_as::<_, SiteRow>(
            "UPDATE sites SET policy = $1 WHERE id = $2 RETURNING id, name, policy, created_at",
        )
        .bind(Json(&policy))
        .bind(site.0)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_log (id, site_id, actor, action, note, created_at) \
             VALUES ($1, $2, $3, 'policy', $4, $5)",
        )
        .bind(AuditId::new().0)
        .bind(site.0)
        .bind(actor)
        .bind(note)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Site::from(row))
    }

    async fn audit_page(
        &self,
        site: SiteId,
        comment: Option<CommentId>,
        before: Option<AuditId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT id, comment_id, actor, action, from_status, to_status, note, created_at \
             FROM audit_log WHERE site_id = ",
        );
        query.push_bind(site.0);
        if let Some(comment) = comment {
            query.push(" AND comment_id = ").push_bind(comment.0);
        }
        if let Some(before) = before {
            query.push(" AND id < ").push_bind(before.0);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query
            .build_query_as::<AuditRow>()
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    async fn record_access(&self, access: &Access<'_>) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_audit(
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

    async fn comments_by_author(
        &self,
        site: SiteId,
        author_hash: &[u8],
    ) -> StoreResult<Vec<StoredComment>> {
        let rows = sqlx::query_as::<_, CommentRow>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE site_id = $1 AND author_hash = $2 ORDER BY id"
        ))
        .bind(site.0)
        .bind(author_hash)
        .fetch_all(&self.pool)
        .await?;
        comments_from_rows(rows)
    }

    async fn erase_author(&self, erasure: &Erasure<'_>) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: a decision on one of these comments waits for the
        // erasure, and cannot write back what it erased.
        let rows = sqlx::query_as::<_, ErasableRow>(
            "SELECT id, body_public, body_html, reasons FROM comments \
             WHERE site_id = $1 AND author_hash = $2 FOR UPDATE",
        )
        .bind(erasure.site.0)
        .bind(&erasure.author_hash.0[..])
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let erased = erasure.erase(&row.body_public, &row.body_html, &row.reasons.0);
            sqlx::query(
                "UPDATE comments SET author_name = $1, author_website = NULL, \
                 email_sealed = $2, author_hash = $3, avatar_seed = '', body = $4, \
                 body_sealed = NULL, body_public = $5, body_html = $6, ip = NULL, \
                 user_agent = NULL, referrer = NULL, reasons = $7, idempotency_key = NULL, \
                 fingerprint = NULL, features = NULL WHERE id = $8",
            )
            .bind(ERASED_NAME)
            .bind(ERASED_EMAIL)
            .bind(&erased.author_hash.0[..])
            .bind(&erased.body)
            .bind(&erased.body_public)
            .bind(&erased.body_html)
            .bind(Json(&erased.reasons))
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        }
        let count = rows.len() as u64;
        let note = erasure.note(count);
        insert_audit(
            &mut tx,
            &NewAuditRow::of_site(
                erasure.site,
                erasure.actor,
                audit_action::ERASE_AUTHOR,
                &note,
                now(),
            ),
        )
        .await?;
        notify_listing(&mut tx, &self.events.channel, erasure.site, None).await?;
        tx.commit().await?;
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
        let mut tx = self.pool.begin().await?;
        let added = sqlx::query(
            "INSERT INTO blocklist (site_id, kind, value, created_at, actor) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site_id, kind, value) DO NOTHING",
        )
        .bind(block.site.0)
        .bind(kind)
        .bind(&value)
        .bind(at)
        .bind(block.actor)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let entry = sqlx::query_as::<_, BlockRow>(
            "SELECT kind, value, actor, created_at FROM blocklist \
             WHERE site_id = $1 AND kind = $2 AND value = $3",
        )
        .bind(block.site.0)
        .bind(kind)
        .bind(&value)
        .fetch_one(&mut *tx)
        .await?;
        let note = block.audit_note();
        if added {
            insert_audit(
                &mut tx,
                &NewAuditRow::of_site(block.site, block.actor, audit_action::BLOCK, &note, at),
            )
            .await?;
        }
        let mut rejected = Vec::new();
        if let Some(picks) = reject_pending {
            let mut query = QueryBuilder::<Postgres>::new(concat!(
                "SELECT ",
                comment_columns!(),
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
            // Locked, as `decide` locks them: a moderator's decision on one
            // of them waits, then sees it rejected.
            query.push(" ORDER BY id FOR UPDATE");
            let pending = query
                .build_query_as::<CommentRow>()
                .fetch_all(&mut *tx)
                .await?;
            let reject_note = format!("blocked {note}");
            for comment in comments_from_rows(pending)? {
                if !picks(&comment) {
                    continue;
                }
                sqlx::query(
                    "UPDATE comments SET status = 'rejected', updated_at = $1 WHERE id = $2",
                )
                .bind(at)
                .bind(comment.id.0)
                .execute(&mut *tx)
                .await?;
                insert_audit(
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
        }
        if !rejected.is_empty() {
            notify_listing(&mut tx, &self.events.channel, block.site, None).await?;
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
        let rows = blocklist_query(site, after, limit)
            .build_query_as::<BlockRow>()
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(BlockEntry::try_from).collect()
    }

    async fn unblock(&self, block: &NewBlock<'_>) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
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
            insert_audit(
                &mut tx,
                &NewAuditRow::of_site(block.site, block.actor, audit_action::UNBLOCK, &note, now()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn blocks_matching(
        &self,
        site: SiteId,
        subject: &BlockSubject<'_>,
    ) -> StoreResult<Vec<BlockEntry>> {
        let Some(mut query) = blocks_matching_query(site, subject) else {
            return Ok(Vec::new());
        };
        let rows = query
            .build_query_as::<BlockRow>()
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(BlockEntry::try_from).collect()
    }

    async fn article_closed(&self, site: SiteId, article: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM closed_articles WHERE site_id = $1 AND article = $2")
            .bind(site.0)
            .bind(article)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn close_article(&self, closing: &ArticleClosing<'_>) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let changed = if closing.closed {
            sqlx::query(
                "INSERT INTO closed_articles (site_id, article, actor, closed_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (site_id, article) DO NOTHING",
            )
            .bind(closing.site.0)
            .bind(closing.article)
            .bind(closing.actor)
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
            insert_audit(
                &mut tx,
                &NewAuditRow::of_site(closing.site, closing.actor, closing.action(), &note, at),
            )
            .await?;
            notify_listing(
                &mut tx,
                &self.events.channel,
                closing.site,
                Some(closing.article),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn closed_articles(
        &self,
        site: SiteId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ClosedArticle>> {
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT article, actor, closed_at FROM closed_articles WHERE site_id = ",
        );
        query.push_bind(site.0);
        if let Some(after) = after {
            query.push(" AND article > ").push_bind(after);
        }
        query
            .push(" ORDER BY article LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(ClosedArticle {
                    article: row.try_get("article")?,
                    actor: row.try_get("actor")?,
                    closed_at: row.try_get("closed_at")?,
                })
            })
            .collect()
    }

    async fn sweep(&self, now: DateTime<Utc>, cutoffs: &Cutoffs) -> StoreResult<SweepReport> {
        let client_details_dropped = in_batches(|| async move {
            let done = sqlx::query(
                // `= ANY(ARRAY(…))`, not `IN (…)`: the batch's ids are
                // looked up by primary key instead of joined against a scan
                // of the whole table.
                "UPDATE comments SET ip = NULL, user_agent = NULL, referrer = NULL, \
                 idempotency_key = NULL \
                 WHERE id = ANY(ARRAY(SELECT id FROM comments WHERE created_at < $1 \
                 AND (ip IS NOT NULL OR user_agent IS NOT NULL OR referrer IS NOT NULL \
                 OR idempotency_key IS NOT NULL) \
                 LIMIT $2))",
            )
            .bind(cutoffs.client_details_before)
            .bind(SWEEP_BATCH)
            .execute(&self.pool)
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
                let mut tx = self.pool.begin().await?;
                // SKIP LOCKED: a reply a moderator is deciding right now is
                // theirs; replicas sweeping at once share the backlog.
                let due = sqlx::query(
                    "SELECT id, site_id FROM comments \
                     WHERE status = 'pending' AND created_at < $1 \
                     ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                )
                .bind(before)
                .bind(SWEEP_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                let mut sites = HashSet::new();
                for row in &due {
                    let id = CommentId(row.try_get("id")?);
                    let site = SiteId(row.try_get("site_id")?);
                    sites.insert(site);
                    sqlx::query(
                        "UPDATE comments SET status = 'rejected', updated_at = $1 WHERE id = $2",
                    )
                    .bind(now)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                    insert_audit(&mut tx, &NewAuditRow::expired(site, id, now)).await?;
                    report.expired += 1;
                }
                for site in sites {
                    notify_listing(&mut tx, &self.events.channel, site, None).await?;
                }
                tx.commit().await?;
                if due.len() < SWEEP_BATCH.unsigned_abs() as usize {
                    break;
                }
            }
        }
        if let Some(before) = cutoffs.delete_spam_before {
            loop {
                let mut tx = self.pool.begin().await?;
                // SKIP LOCKED, as above: a reply a moderator is deciding now
                // is theirs. A reply's `texts_to_check` row goes with it (ON
                // DELETE CASCADE), and approved answers to it lose their
                // parent (ON DELETE SET NULL), so listings are dropped.
                let deleted = sqlx::query(
                    "DELETE FROM comments WHERE id = ANY(ARRAY(SELECT id FROM comments \
                     WHERE status = 'spam' AND updated_at < $1 \
                     ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
                     AND status = 'spam' RETURNING id, site_id",
                )
                .bind(before)
                .bind(SWEEP_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                let mut sites = HashSet::new();
                for row in &deleted {
                    let site = SiteId(row.try_get("site_id")?);
                    sites.insert(site);
                    let id = CommentId(row.try_get("id")?);
                    insert_audit(&mut tx, &NewAuditRow::spam_deleted(site, id, now)).await?;
                }
                for site in sites {
                    notify_listing(&mut tx, &self.events.channel, site, None).await?;
                }
                tx.commit().await?;
                report.spam_deleted += deleted.len() as u64;
                if deleted.len() < SWEEP_BATCH.unsigned_abs() as usize {
                    break;
                }
            }
        }
        report.form_nonces_dropped = in_batches(|| async move {
            // `ctid = ANY(ARRAY(…))` for the reason above: the batch is
            // looked up by row address, not joined against a scan.
            let done = sqlx::query(
                "DELETE FROM form_nonces WHERE ctid = ANY(ARRAY(SELECT ctid FROM form_nonces \
                 WHERE used_at < $1 LIMIT $2))",
            )
            .bind(cutoffs.form_nonces_before)
            .bind(SWEEP_BATCH)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await?;
        Ok(report)
    }
}

async fn insert_audit(
    conn: &mut sqlx::PgConnection,
    row: &NewAuditRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log \
         (id, site_id, comment_id, actor, action, from_status, to_status, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(AuditId::new().0)
    .bind(row.site.0)
    .bind(row.comment.map(|c| c.0))
    .bind(row.actor)
    .bind(row.action)
    .bind(row.from.map(CommentStatus::as_str))
    .bind(row.to.map(CommentStatus::as_str))
    .bind(row.note)
    .bind(row.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds one lesson to the site's learned statistics in one statement per
/// table: increments only, so replicas' concurrent lessons add up.
async fn teach(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    site: SiteId,
    features: &[u64],
    label: Label,
    weight: f32,
) -> StoreResult<()> {
    let (spam, ham) = match label {
        Label::Spam => (weight, 0.0_f32),
        Label::Ham => (0.0_f32, weight),
    };
    sqlx::query(
        "INSERT INTO spam_totals (site_id, spam, ham) VALUES ($1, $2, $3) \
         ON CONFLICT (site_id) DO UPDATE \
         SET spam = spam_totals.spam + excluded.spam, ham = spam_totals.ham + excluded.ham",
    )
    .bind(site.0)
    .bind(spam)
    .bind(ham)
    .execute(&mut **tx)
    .await?;
    // Sorted, as features are: concurrent lessons lock rows in one order.
    let features: Vec<i64> = features.iter().map(|&f| f as i64).collect();
    sqlx::query(
        "INSERT INTO spam_features (site_id, feature, spam, ham) \
         SELECT $1, feature, $3, $4 FROM unnest($2::bigint[]) AS feature \
         ON CONFLICT (site_id, feature) DO UPDATE \
         SET spam = spam_features.spam + excluded.spam, ham = spam_features.ham + excluded.ham",
    )
    .bind(site.0)
    .bind(&features)
    .bind(spam)
    .bind(ham)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The replica's end of `LISTEN/NOTIFY`: a task that hears every replica's
/// commits and hands them to this replica's watchers and caches. It stops
/// with the last clone of the store.
struct Events {
    channel: String,
    sender: broadcast::Sender<QueueEvent>,
    listing: broadcast::Sender<ListingEvent>,
    /// False from a lost connection until the listener listens again.
    listening: Arc<AtomicBool>,
    listener: JoinHandle<()>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A listener on `channel` that tells us when it loses its connection
/// instead of reconnecting behind our back.
async fn listener_on(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

impl Events {
    async fn listen(pool: &PgPool) -> StoreResult<Events> {
        // One channel per schema, so that deployments (and tests) sharing a
        // database never hear each other.
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(pool)
            .await?;
        let channel: String = format!("replyguard_{schema}").chars().take(63).collect();
        let mut listener = listener_on(pool, &channel).await?;
        let (sender, _) = broadcast::channel(EVENT_BUFFER);
        let (listing, _) = broadcast::channel(EVENT_BUFFER);
        let listening = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn({
            let (sender, listing, listening) = (sender.clone(), listing.clone(), listening.clone());
            let (pool, channel) = (pool.clone(), channel.clone());
            async move {
                loop {
                    let lost = match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            dispatch(notification.payload(), &sender, &listing);
                            continue;
                        }
                        Ok(None) => "the connection was lost".to_owned(),
                        Err(err) => err.to_string(),
                    };
                    // Whatever is committed from now until we listen again
                    // goes unheard: say so before anything else happens.
                    listening.store(false, Ordering::SeqCst);
                    let _ = listing.send(ListingEvent::Interrupted);
                    tracing::warn!(error = %lost, "notifications interrupted");
                    // A new listener, rather than the old one reconnecting:
                    // it listens before it is handed back, or fails.
                    listener = loop {
                        match listener_on(&pool, &channel).await {
                            Ok(listener) => break listener,
                            Err(err) => {
                                tracing::warn!(error = %err, "cannot listen for notifications yet");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    };
                    listening.store(true, Ordering::SeqCst);
                    let _ = listing.send(ListingEvent::Resumed);
                    tracing::info!("notifications heard again");
                }
            }
        });
        Ok(Events {
            channel,
            sender,
            listing,
            listening,
            listener: task,
        })
    }
}

/// Hands one notification to those it concerns; nobody listening is fine.
fn dispatch(
    payload: &str,
    queue: &broadcast::Sender<QueueEvent>,
    listing: &broadcast::Sender<ListingEvent>,
) {
    if let Some(event) = decode_listing(payload) {
        let _ = listing.send(event);
    } else if let Some(event) = decode_event(payload) {
        let _ = queue.send(event);
    } else {
        tracing::warn!(
            payload,
            "ignoring a notification this version does not understand"
        );
    }
}

/// `SITE COMMENT STATUS`: small, and readable in `pg_stat_activity`.
fn encode_event(event: &QueueEvent) -> String {
    format!("{} {} {}", event.site, event.comment, event.status)
}

fn decode_event(payload: &str) -> Option<QueueEvent> {
    let mut parts = payload.split(' ');
    let site = parts.next()?.parse().ok()?;
    let comment = parts.next()?.parse().ok()?;
    let status = CommentStatus::parse(parts.next()?)?;
    Some(QueueEvent {
        site,
        comment,
        status,
    })
}

/// `listing SITE [ARTICLE]`: the article is the rest, spaces and all.
fn encode_listing(site: SiteId, article: Option<&str>) -> String {
    match article {
        Some(article) => format!("listing {site} {article}"),
        None => format!("listing {site}"),
    }
}

fn decode_listing(payload: &str) -> Option<ListingEvent> {
    let mut parts = payload.splitn(3, ' ');
    if parts.next()? != "listing" {
        return None;
    }
    let site = parts.next()?.parse().ok()?;
    Some(ListingEvent::Changed {
        site,
        article: parts.next().map(str::to_owned),
    })
}

/// Tells every replica, when the transaction commits, that a site's (or
/// one article's) listing changed.
async fn notify_listing(
    conn: &mut sqlx::PgConnection,
    channel: &str,
    site: SiteId,
    article: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(encode_listing(site, article))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_notification_payload() {
        let event = QueueEvent {
            site: SiteId::new(),
            comment: CommentId::new(),
            status: CommentStatus::Pending,
        };
        assert_eq!(decode_event(&encode_event(&event)), Some(event));
        assert_eq!(decode_event("garbage"), None);
    }

    #[test]
    fn listing_changes_survive_the_notification_payload() {
        let site = SiteId::new();
        for article in [None, Some("2026/11/a story with spaces")] {
            assert_eq!(
                decode_listing(&encode_listing(site, article)),
                Some(ListingEvent::Changed {
                    site,
                    article: article.map(str::to_owned)
                })
            );
        }
        assert_eq!(decode_listing("listing nonsense"), None);
        let queued = QueueEvent {
            site,
            comment: CommentId::new(),
            status: CommentStatus::Approved,
        };
        assert_eq!(decode_listing(&encode_event(&queued)), None);
    }
}
