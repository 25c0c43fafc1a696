//! The SQLite store: the embedded default, one file, WAL mode.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one
//! connection (no `SQLITE_BUSY` between our own writers) and reads through a
//! separate pool that WAL lets run beside it.

use std::{collections::HashMap, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    QueryBuilder, Row, Sqlite,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
    types::Json,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use super::{
    Credential, EVENT_BUFFER, NewAuditRow, NewToken, OPERATOR_ACTOR, PolicyEdit, RECENT_REPLIES,
    ReplyFilter, Role, SWEEP_BATCH, Site, Store, StoreError, StoreResult, StoredComment,
    StoredFacts, TextKeeper, ThreadCursor, ThreadOrder, ThreadPage, in_batches, lesson, lessons,
    now,
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
    config::with_suffix,
    ids::{AuditId, CommentId, SiteId},
    moderation::{
        Access, Action, ArticleClosing, AuditRecord, BlockEntry, BlockOutcome, BlockSubject,
        Blocked, ClosedArticle, CommentStatus, Cutoffs, Decision, DecisionOutcome, ERASED_EMAIL,
        ERASED_NAME, Erasure, NewBlock, QueueEvent, SweepReport, audit_action,
    },
    privacy::Rekeying,
    secret_files,
    spam::{Label, Policy, RecentReply},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A store on one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    // One process owns a SQLite file, so its own commits are all the news.
    events: broadcast::Sender<QueueEvent>,
    submissions: mpsc::Sender<Submission>,
}

/// A new comment waiting for the group commit, and who waits for it.
struct Submission {
    comment: StoredComment,
    actor: String,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The most submissions one transaction takes.
const GROUP_COMMIT_MAX: usize = 256;

/// Comments per `INSERT` when seeding: 27 values each stays below SQLite's
/// limit of 32,766 bound values per statement.
const SEED_ROWS_PER_STATEMENT: usize = 500;

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`.
    ///
    /// A database made here is readable by its owner only, and so are the `-wal` and `-shm`
    /// files SQLite makes beside it (with the database's mode); an existing one that group or
    /// others may read or write is refused.
    pub async fn open(url: &str) -> StoreResult<Self> {
        if let Some(path) = crate::config::sqlite_path(url) {
            secret_files::create_private(&path)?;
            let wal = with_suffix(&path, "-wal");
            let shm = with_suffix(&path, "-shm");
            secret_files::check_paths(&[path, wal, shm])?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged reply survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Erased and expired personal data must not linger in the free
            // space of pages: overwrite it with zeros.
            .pragma("secure_delete", "on");
        // A connection to a local file cannot go stale: no ping before each
        // use, which on SQLite is one more hand-off to the connection's thread.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(super::migration_error)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (submissions, queue) = mpsc::channel(GROUP_COMMIT_MAX * 4);
        tokio::spawn(group_commit(writer.clone(), queue, events.clone()));
        Ok(SqliteStore {
            reader,
            writer,
            events,
            submissions,
        })
    }
}

/// Stores new comments in groups: whatever submissions are waiting when the
/// writer is free go into one transaction, so concurrent replies share one
/// fsync instead of queueing for one each. Nobody is answered before the
/// commit that holds their reply; with one submitter at a time, a group is
/// one reply and nothing waits for company. Ends when the store is dropped.
async fn group_commit(
    writer: SqlitePool,
    mut queue: mpsc::Receiver<Submission>,
    events: broadcast::Sender<QueueEvent>,
) {
    let mut group = Vec::with_capacity(GROUP_COMMIT_MAX);
    while queue.recv_many(&mut group, GROUP_COMMIT_MAX).await > 0 {
        let results = insert_group(&writer, &group).await;
        for (submission, result) in group.drain(..).zip(results) {
            if result.is_ok() {
                // Nobody listening is fine.
                let _ = events.send(QueueEvent {
                    site: submission.comment.site,
                    comment: submission.comment.id,
                    status: submission.comment.status,
                });
            }
            // The submitter may have gone; its reply is stored all the same.
            let _ = submission.done.send(result);
        }
    }
}

/// One transaction for a group: a reply whose insert fails (a reused
/// idempotency key) fails alone, the others commit together.
async fn insert_group(writer: &SqlitePool, group: &[Submission]) -> Vec<StoreResult<()>> {
    let failed_all = |err: sqlx::Error| {
        let message = err.to_string();
        tracing::error!(error = %message, "group commit failed");
        group
            .iter()
            .map(|_| Err(StoreError::GroupFailed(message.clone())))
            .collect()
    };
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(err) => return failed_all(err),
    };
    let mut results = Vec::with_capacity(group.len());
    for submission in group {
        results.push(insert_one(&mut tx, &submission.comment, &submission.actor).await);
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(err) => failed_all(err),
    }
}

async fn insert_one(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    c: &StoredComment,
    actor: &str,
) -> StoreResult<()> {
    // A savepoint per reply: one that fails is undone whole, comment and
    // audit row together, and the group's transaction goes on.
    let mut one = sqlx::Connection::begin(&mut **tx).await?;
    sqlx::query(concat!(
        "INSERT INTO comments (",
        comment_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
         ?)"
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
    .execute(&mut *one)
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            StoreError::AlreadyExists("idempotency key")
        } else {
            err.into()
        }
    })?;
    sqlx::query(
        "INSERT INTO audit_log (id, site_id, comment_id, actor, action, to_status, created_at) \
         VALUES (?, ?, ?, ?, 'submit', ?, ?)",
    )
    .bind(AuditId::new().0)
    .bind(c.site.0)
    .bind(c.id.0)
    .bind(actor)
    .bind(c.status.as_str())
    .bind(c.created_at)
    .execute(&mut *one)
    .await?;
    one.commit().await?;
    Ok(())
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_site(&self, name: &str, policy: &Policy) -> StoreResult<Site> {
        let site = Site {
            id: SiteId::new(),
            name: name.to_owned(),
            policy: policy.clone(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO sites (id, name, policy, created_at) VALUES (?, ?, ?, ?)")
            .bind(site.id.0)
            .bind(&site.name)
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
            "SELECT id, name, policy, created_at FROM sites WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(Site::from))
    }

    async fn site_by_id(&self, id: SiteId) -> StoreResult<Option<Site>> {
        let row = sqlx::query_as::<_, SiteRow>(
            "SELECT id, name, policy, created_at FROM sites WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(Site::from))
    }

    async fn insert_token(&self, token: &NewToken) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO tokens (id, role, prefix, digest, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token.id.0)
        .bind(token.role.as_str())
        .bind(&token.prefix)
        .bind(&token.digest[..])
        .bind(now())
        .execute(&mut *tx)
        .await?;
        for site in &token.sites {
            sqlx::query("INSERT INTO token_sites (token_id, site_id) VALUES (?, ?)")
                .bind(token.id.0)
                .bind(site.0)
                .execute(&mut *tx)
                .await?;
        }
        for scope in &token.scopes {
            sqlx::query("INSERT INTO token_scopes (token_id, scope) VALUES (?, ?)")
                .bind(token.id.0)
                .bind(scope.as_str())
                .execute(&mut *tx)
                .await?;
        }
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
        let mut tx = self.writer.begin().await?;
        // `substr` rather than LIKE: a prefix may contain `_`, a LIKE wildcard.
        let revoked = sqlx::query(
            "UPDATE tokens SET revoked_at = ?1 \
             WHERE revoked_at IS NULL AND substr(prefix, 1, length(?2)) = ?2 \
             RETURNING id, prefix, role",
        )
        .bind(at)
        .bind(prefix)
        .fetch_all(&mut *tx)
        .await?;
        for token in &revoked {
            let id: uuid::Uuid = token.try_get("id")?;
            let prefix: String = token.try_get("prefix")?;
            let role: String = token.try_get("role")?;
            let role =
                Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
            let sites: Vec<uuid::Uuid> =
                sqlx::query_scalar("SELECT site_id FROM token_sites WHERE token_id = ?")
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

    async fn credential(&self, digest: &[u8; 32]) -> StoreResult<Option<Credential>> {
        let rows = sqlx::query_as::<_, CredentialRow>(
            "SELECT t.id, t.role, t.prefix, s.site_id, \
             (SELECT group_concat(scope) FROM token_scopes WHERE token_id = t.id) AS scopes \
             FROM tokens t \
             LEFT JOIN token_sites s ON s.token_id = t.id \
             WHERE t.digest = ? AND t.revoked_at IS NULL",
        )
        .bind(&digest[..])
        .fetch_all(&self.reader)
        .await?;
        credential_from_rows(rows)
    }

    async fn insert_comment(&self, c: &StoredComment, actor: &str) -> StoreResult<()> {
        let (done, result) = oneshot::channel();
        self.submissions
            .send(Submission {
                comment: c.clone(),
                actor: actor.to_owned(),
                done,
            })
            .await
            .map_err(|_| StoreError::Config("the store is closed".to_owned()))?;
        result
            .await
            .map_err(|_| StoreError::Config("the store is closed".to_owned()))?
    }

    async fn seed_comments(&self, comments: &[StoredComment], actor: &str) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for chunk in comments.chunks(SEED_ROWS_PER_STATEMENT) {
            let (mut insert, mut audit) = seed_statements::<Sqlite>(chunk, actor);
            insert.build().execute(&mut *tx).await?;
            audit.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn comment(&self, id: CommentId) -> StoreResult<Option<StoredComment>> {
        sqlx::query_as::<_, CommentRow>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE id = ?"
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
            " FROM comments WHERE site_id = ? AND idempotency_key = ?"
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
        article: &str,
        order: ThreadOrder,
        after: Option<&ThreadCursor>,
        limit: u32,
    ) -> StoreResult<Arc<ThreadPage>> {
        let mut query = thread_page_query(site, article, order, after, limit);
        let rows = query
            .build_query_as::<ListedRow>()
            .fetch_all(&self.reader)
            .await?;
        listed_from_rows(rows).map(ThreadPage::new)
    }

    async fn count_approved(
        &self,
        site: SiteId,
        articles: &[String],
    ) -> StoreResult<HashMap<String, u64>> {
        let articles = serde_json::to_string(articles)
            .map_err(|err| StoreError::Corrupt(format!("article list: {err}")))?;
        let rows = sqlx::query(
            "SELECT article, COUNT(*) AS n FROM comments \
             WHERE site_id = ? AND status = 'approved' \
             AND article IN (SELECT value FROM json_each(?)) GROUP BY article",
        )
        .bind(site.0)
        .bind(articles)
        .fetch_all(&self.reader)
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
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
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
            .fetch_all(&self.reader)
            .await?;
        comments_from_rows(rows)
    }

    async fn decide(
        &self,
        sites: &[SiteId],
        decision: &Decision<'_>,
    ) -> StoreResult<DecisionOutcome> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query("SELECT site_id, status, features, lesson_label, lesson_weight FROM comments WHERE id = ?")
            .bind(decision.comment.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(DecisionOutcome::NotFound);
        };
        let site = SiteId(row.try_get("site_id")?);
        if !sites.contains(&site) {
            return Ok(DecisionOutcome::NotFound);
        }
        let from = status_from(row.try_get("status")?)?;
        if decision.expected.is_some_and(|expected| expected != from) {
            return Ok(DecisionOutcome::Conflict { actual: from });
        }
        let now = now();
        let to = decision.action.target();
        let taught = lesson(decision.action, from, to);
        match to {
            Some(to) => {
                sqlx::query(
                    "UPDATE comments SET status = ?, updated_at = ?, \
                     lesson_label = COALESCE(?, lesson_label), \
                     lesson_weight = COALESCE(?, lesson_weight) WHERE id = ?",
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
                sqlx::query("DELETE FROM comments WHERE id = ?")
                    .bind(decision.comment.0)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO audit_log \
             (id, site_id, comment_id, actor, action, from_status, to_status, note, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        tx.commit().await?;
        Ok(DecisionOutcome::Applied { from, to })
    }

    async fn history(&self, comment: CommentId) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT id, comment_id, actor, action, from_status, to_status, note, created_at \
             FROM audit_log WHERE comment_id = ? ORDER BY id",
        )
        .bind(comment.0)
        .fetch_all(&self.reader)
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
        // one statement: each aggregate is one row, even over no comments.
        // Each latest reply is the end of a range of an index (the author's
        // in `comments_author_time`, the address's in `comments_ip`), and
        // the counts read only indexes (`comments_author`, whose entries
        // carry the status, and `comments_ip_spam`): however many replies an
        // author or an address has, no row is read.
        let known = sqlx::query(
            "SELECT a.approved, a.spam, a.rejected, a.last, \
                    i.spam AS ip_spam, i.last AS ip_last, \
                    t.spam AS learned_spam, t.ham AS learned_ham \
             FROM (SELECT COALESCE(SUM(status = 'approved'), 0) AS approved, \
                          COALESCE(SUM(status = 'spam'), 0) AS spam, \
                          COALESCE(SUM(status = 'rejected'), 0) AS rejected, \
                          (SELECT max(created_at) FROM comments \
                           WHERE site_id = ?1 AND author_hash = ?2) AS last \
                   FROM comments WHERE site_id = ?1 AND author_hash = ?2) AS a \
             CROSS JOIN (SELECT (SELECT count(*) FROM comments \
                                 WHERE site_id = ?1 AND ip = ?3 AND status = 'spam') AS spam, \
                                (SELECT max(created_at) FROM comments \
                                 WHERE site_id = ?1 AND ip = ?3) AS last) AS i \
             LEFT JOIN spam_totals AS t ON t.site_id = ?1",
        )
        .bind(site.0)
        .bind(author_hash)
        .bind(ip)
        .fetch_one(&self.reader)
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
             WHERE site_id = ?1 AND fingerprint IS NOT NULL AND length(author_hash) = 32 \
             AND NOT (author_hash = ?2 AND article = ?3) ORDER BY id DESC LIMIT ?4",
        )
        .bind(site.0)
        .bind(author_hash)
        .bind(article)
        .bind(i64::from(RECENT_REPLIES))
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(|fingerprint| RecentReply {
            fingerprint: fingerprint as u64,
        })
        .collect();
        let learned_spam = known.try_get::<Option<f64>, _>("learned_spam")?;
        let learned_ham = known.try_get::<Option<f64>, _>("learned_ham")?;
        if let (Some(spam), Some(ham)) = (learned_spam, learned_ham) {
            facts.learned.spam = spam as f32;
            facts.learned.ham = ham as f32;
            let wanted: Vec<i64> = features.iter().map(|&f| f as i64).collect();
            let wanted = serde_json::to_string(&wanted)
                .map_err(|err| StoreError::Corrupt(format!("feature list: {err}")))?;
            let rows = sqlx::query(
                "SELECT feature, spam, ham FROM spam_features \
                 WHERE site_id = ? AND feature IN (SELECT value FROM json_each(?))",
            )
            .bind(site.0)
            .bind(wanted)
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                let feature = row.try_get::<i64, _>("feature")? as u64;
                let spam = row.try_get::<f64, _>("spam")? as f32;
                let ham = row.try_get::<f64, _>("ham")? as f32;
                facts.learned.features.insert(feature, (spam, ham));
            }
        }
        Ok(facts)
    }

    async fn key_check(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT digest FROM key_check WHERE id = 1")
                .fetch_optional(&self.writer)
                .await?,
        )
    }

    async fn claim_key_check(&self, check: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO key_check (id, digest) VALUES (1, ?) ON CONFLICT DO NOTHING")
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
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|(site, sealed)| (SiteId(site), sealed)))
    }

    async fn rekey(&self, rekeying: &Rekeying) -> StoreResult<RekeyReport> {
        let (old_check, new_check) = rekeying.checks();
        let at = now();
        let mut tx = self.writer.begin().await?;
        let checked = sqlx::query("UPDATE key_check SET digest = ? WHERE id = 1 AND digest = ?")
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
                 WHERE id > ? AND length(email_sealed) > 0 ORDER BY id LIMIT ?",
            )
            .bind(after)
            .bind(SWEEP_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let resealed = row.reseal(rekeying)?;
                sqlx::query(
                    "UPDATE comments SET email_sealed = ?, author_hash = ?, avatar_seed = ?, \
                     body_sealed = ? WHERE id = ?",
                )
                .bind(&resealed.email_sealed)
                .bind(&resealed.author_hash.0[..])
                .bind(&resealed.avatar_seed)
                .bind(&resealed.body_sealed)
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
                tally.comment(SiteId(row.site_id), &row.author_hash, &resealed);
            }
            match rows.last() {
                Some(last) if rows.len() == SWEEP_BATCH.unsigned_abs() as usize => after = last.id,
                _ => break,
            }
        }
        for change in tally.block_changes() {
            let statement = match &change.new {
                Some(new) => sqlx::query(
                    "UPDATE blocklist SET value = ?3 \
                     WHERE site_id = ?1 AND kind = 'author' AND value = ?2",
                )
                .bind(change.site.0)
                .bind(&change.old)
                .bind(new),
                None => sqlx::query(
                    "DELETE FROM blocklist WHERE site_id = ?1 AND kind = 'author' AND value = ?2",
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
        }
        tx.commit().await?;
        // What the old key sealed must not stay in the log; `secure_delete` zeroes the pages.
        self.checkpoint().await;
        Ok(tally.report(forgotten))
    }

    async fn use_form_nonce(&self, site: SiteId, nonce: &[u8; 16]) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO form_nonces (site_id, nonce, used_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(site.0)
        .bind(&nonce[..])
        .bind(now())
        .execute(&self.writer)
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
             WHERE site_id = ? AND author_hash = ? AND article = ? AND body_public = ? LIMIT 1",
        )
        .bind(site.0)
        .bind(author_hash)
        .bind(article)
        .bind(body_public)
        .fetch_optional(&self.reader)
        .await?;
        Ok(id.map(CommentId))
    }

    async fn keep_texts_again(&self, keep: &TextKeeper<'_>) -> StoreResult<u64> {
        // The rows of the partial index `comments_unsealed`, then those migration 0005 listed;
        // CROSS JOIN makes SQLite read the list first and find each comment by its key.
        const BATCHES: [&str; 2] = [
            "SELECT id, site_id, body FROM comments \
             WHERE body_sealed IS NULL AND body <> body_public ORDER BY id LIMIT ?",
            "SELECT c.id, c.site_id, c.body FROM texts_to_check t \
             CROSS JOIN comments c ON c.id = t.comment_id WHERE c.body_sealed IS NULL LIMIT ?",
        ];
        let mut kept = 0;
        for batch in BATCHES {
            loop {
                let mut tx = self.writer.begin().await?;
                let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(batch)
                    .bind(SWEEP_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                for (id, site, raw) in &rows {
                    let text = keep(SiteId(*site), CommentId(*id), raw);
                    sqlx::query(
                        "UPDATE comments SET body = ?, body_sealed = ?, body_public = ?, \
                         body_html = ? WHERE id = ?",
                    )
                    .bind(&text.body)
                    .bind(&text.body_sealed)
                    .bind(&text.body_public)
                    .bind(&text.body_html)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM texts_to_check WHERE comment_id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                kept += rows.len() as u64;
                if rows.len() < SWEEP_BATCH.unsigned_abs() as usize {
                    break;
                }
            }
        }
        // What remains listed was sealed already, so kept as now.
        sqlx::query("DELETE FROM texts_to_check")
            .execute(&self.writer)
            .await?;
        if kept > 0 {
            self.checkpoint().await;
        }
        Ok(kept)
    }

    fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.events.subscribe()
    }

    async fn update_policy(
        &self,
        site: SiteId,
        actor: &str,
        edit: &mut PolicyEdit<'_>,
    ) -> StoreResult<Site> {
        let now = now();
        let mut tx = self.writer.begin().await?;
        // The one writer connection runs this transaction alone, so nothing in this process
        // changes the policy between the read and the write; a write by another process in
        // between makes SQLite refuse this one (busy), never lose that one.
        let stored: Site = sqlx::query_as::<_, SiteRow>(
            "SELECT id, name, policy, created_at FROM sites WHERE id = ?",
        )
        .bind(site.0)
        .fetch_one(&mut *tx)
        .await?
        .into();
        let Some((policy, note)) = edit(&stored.policy) else {
            return Ok(stored);
        };
        let row = sqlx::query_as::<_, SiteRow>(
            "UPDATE sites SET policy = ? WHERE id = ? RETURNING id, name, policy, created_at",
        )
        .bind(Json(&policy))
        .bind(site.0)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_log (id, site_id, actor, action, note, created_at) \
             VALUES (?, ?, ?, 'policy', ?, ?)",
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
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT id, comment_id, actor, action, from_status, to_status, note, created_at \
             FROM audit_log WHERE ",
        );
        match comment {
            // `+site_id` keeps SQLite (which has no statistics) from walking
            // the site's whole log for one comment's few rows: it reads
            // `audit_log_comment` instead.
            Some(comment) => {
                query.push("+site_id = ").push_bind(site.0);
                query.push(" AND comment_id = ").push_bind(comment.0);
            }
            None => {
                query.push("site_id = ").push_bind(site.0);
            }
        }
        if let Some(before) = before {
            query.push(" AND id < ").push_bind(before.0);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query
            .build_query_as::<AuditRow>()
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    async fn record_access(&self, access: &Access<'_>) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
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
            " FROM comments WHERE site_id = ? AND author_hash = ? ORDER BY id"
        ))
        .bind(site.0)
        .bind(author_hash)
        .fetch_all(&self.reader)
        .await?;
        comments_from_rows(rows)
    }

    async fn erase_author(&self, erasure: &Erasure<'_>) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let rows = sqlx::query_as::<_, ErasableRow>(
            "SELECT id, body_public, body_html, reasons FROM comments \
             WHERE site_id = ? AND author_hash = ?",
        )
        .bind(erasure.site.0)
        .bind(&erasure.author_hash.0[..])
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let erased = erasure.erase(&row.body_public, &row.body_html, &row.reasons.0);
            sqlx::query(
                "UPDATE comments SET author_name = ?, author_website = NULL, email_sealed = ?, \
                 author_hash = ?, avatar_seed = '', body = ?, body_sealed = NULL, body_public = ?, \
                 body_html = ?, ip = NULL, user_agent = NULL, referrer = NULL, reasons = ?, \
                 idempotency_key = NULL, fingerprint = NULL, features = NULL WHERE id = ?",
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
        tx.commit().await?;
        self.checkpoint().await;
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
        let mut tx = self.writer.begin().await?;
        let added = sqlx::query(
            "INSERT INTO blocklist (site_id, kind, value, created_at, actor) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (site_id, kind, value) DO NOTHING",
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
             WHERE site_id = ? AND kind = ? AND value = ?",
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
            let mut query = QueryBuilder::<Sqlite>::new(concat!(
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
            query.push(" ORDER BY id");
            let pending = query
                .build_query_as::<CommentRow>()
                .fetch_all(&mut *tx)
                .await?;
            let reject_note = format!("blocked {note}");
            for comment in comments_from_rows(pending)? {
                if !picks(&comment) {
                    continue;
                }
                sqlx::query("UPDATE comments SET status = 'rejected', updated_at = ? WHERE id = ?")
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
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(BlockEntry::try_from).collect()
    }

    async fn unblock(&self, block: &NewBlock<'_>) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let removed =
            sqlx::query("DELETE FROM blocklist WHERE site_id = ? AND kind = ? AND value = ?")
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
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(BlockEntry::try_from).collect()
    }

    async fn article_closed(&self, site: SiteId, article: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM closed_articles WHERE site_id = ? AND article = ?")
            .bind(site.0)
            .bind(article)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    async fn close_article(&self, closing: &ArticleClosing<'_>) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let at = now();
        let changed = if closing.closed {
            sqlx::query(
                "INSERT INTO closed_articles (site_id, article, actor, closed_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (site_id, article) DO NOTHING",
            )
            .bind(closing.site.0)
            .bind(closing.article)
            .bind(closing.actor)
            .bind(at)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query("DELETE FROM closed_articles WHERE site_id = ? AND article = ?")
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
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT article, actor, closed_at FROM closed_articles WHERE site_id = ",
        );
        query.push_bind(site.0);
        if let Some(after) = after {
            query.push(" AND article > ").push_bind(after);
        }
        query
            .push(" ORDER BY article LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.reader).await?;
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
                "UPDATE comments SET ip = NULL, user_agent = NULL, referrer = NULL, \
                 idempotency_key = NULL \
                 WHERE id IN (SELECT id FROM comments WHERE created_at < ? \
                 AND (ip IS NOT NULL OR user_agent IS NOT NULL OR referrer IS NOT NULL \
                 OR idempotency_key IS NOT NULL) \
                 LIMIT ?)",
            )
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
                let due = sqlx::query(
                    "SELECT id, site_id FROM comments \
                     WHERE status = 'pending' AND created_at < ? ORDER BY created_at LIMIT ?",
                )
                .bind(before)
                .bind(SWEEP_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                for row in &due {
                    let id = CommentId(row.try_get("id")?);
                    let site = SiteId(row.try_get("site_id")?);
                    let expired = sqlx::query(
                        "UPDATE comments SET status = 'rejected', updated_at = ? \
                         WHERE id = ? AND status = 'pending'",
                    )
                    .bind(now)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if expired == 1 {
                        insert_audit(&mut tx, &NewAuditRow::expired(site, id, now)).await?;
                        report.expired += 1;
                    }
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
                // A reply's `texts_to_check` row goes with it (ON DELETE
                // CASCADE), and approved answers to it lose their parent (ON
                // DELETE SET NULL): the thread cache drops every page.
                let deleted = sqlx::query(
                    "DELETE FROM comments WHERE id IN (SELECT id FROM comments \
                     WHERE status = 'spam' AND updated_at < ? ORDER BY updated_at LIMIT ?) \
                     RETURNING id, site_id",
                )
                .bind(before)
                .bind(SWEEP_BATCH)
                .fetch_all(&mut *tx)
                .await?;
                for row in &deleted {
                    let site = SiteId(row.try_get("site_id")?);
                    let id = CommentId(row.try_get("id")?);
                    insert_audit(&mut tx, &NewAuditRow::spam_deleted(site, id, now)).await?;
                }
                tx.commit().await?;
                report.spam_deleted += deleted.len() as u64;
                if deleted.len() < SWEEP_BATCH.unsigned_abs() as usize {
                    break;
                }
            }
        }
        report.form_nonces_dropped = in_batches(|| async move {
            let done = sqlx::query(
                "DELETE FROM form_nonces WHERE (site_id, nonce) IN \
                 (SELECT site_id, nonce FROM form_nonces WHERE used_at < ? LIMIT ?)",
            )
            .bind(cutoffs.form_nonces_before)
            .bind(SWEEP_BATCH)
            .execute(&self.writer)
            .await?;
            Ok(done.rows_affected())
        })
        .await?;
        if report.client_details_dropped > 0 || report.spam_deleted > 0 {
            self.checkpoint().await;
        }
        Ok(report)
    }
}

impl SqliteStore {
    /// Copies the write-ahead log into the database file and empties it, so
    /// that values just overwritten (erased, swept) are gone from both files.
    /// A reader still holding an old snapshot can keep the log from being
    /// emptied; the next checkpoint finishes the job.
    async fn checkpoint(&self) {
        let result = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.writer)
            .await
            .and_then(|row| row.try_get::<i64, _>(0));
        match result {
            Ok(0) => {}
            Ok(_) => tracing::warn!("the write-ahead log could not be emptied: a reader is busy"),
            Err(err) => tracing::warn!(error = %err, "checkpointing the write-ahead log failed"),
        }
    }
}

async fn insert_audit(
    conn: &mut sqlx::SqliteConnection,
    row: &NewAuditRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log \
         (id, site_id, comment_id, actor, action, from_status, to_status, note, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

/// Adds one lesson to the site's learned statistics: increments only, so
/// that no lesson overwrites another.
async fn teach(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    site: SiteId,
    features: &[u64],
    label: Label,
    weight: f32,
) -> StoreResult<()> {
    let (spam, ham) = match label {
        Label::Spam => (f64::from(weight), 0.0),
        Label::Ham => (0.0, f64::from(weight)),
    };
    sqlx::query(
        "INSERT INTO spam_totals (site_id, spam, ham) VALUES (?, ?, ?) \
         ON CONFLICT (site_id) DO UPDATE SET spam = spam + excluded.spam, ham = ham + excluded.ham",
    )
    .bind(site.0)
    .bind(spam)
    .bind(ham)
    .execute(&mut **tx)
    .await?;
    for &feature in features {
        sqlx::query(
            "INSERT INTO spam_features (site_id, feature, spam, ham) VALUES (?, ?, ?, ?) \
             ON CONFLICT (site_id, feature) DO UPDATE \
             SET spam = spam + excluded.spam, ham = ham + excluded.ham",
        )
        .bind(site.0)
        .bind(feature as i64)
        .bind(spam)
        .bind(ham)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
