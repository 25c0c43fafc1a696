//! The SQLite store: the embedded default, one file, WAL mode.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one
//! connection (no `SQLITE_BUSY` between our own writers) and reads through a
//! separate pool that WAL lets run beside it. New replies reach that writer
//! in groups, one transaction each ([`group_commit`]). The SQL itself is
//! [`super::sql`]'s; this file holds what only SQLite does.

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    Row, Sqlite, SqliteConnection,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use super::{
    EVENT_BUFFER, ListingEvents, ServingMark, StoreError, StoreResult, StoredComment,
    cache::Caches,
    rows::comment_columns,
    sql::{Backend, BoundQuery, SqlStore, facts_query, insert_comment_rows, shared_query},
};
use crate::{
    domain::QueueEvent,
    ids::SiteId,
    privacy::Resealed,
    secret_files::{self, with_suffix},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A store on one SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

/// What a SQLite store keeps beside its pools.
pub struct SqliteState {
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

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) and migrates the database at `url`.
    ///
    /// A database made here is readable by its owner only, and so are the `-wal` and `-shm`
    /// files SQLite makes beside it (with the database's mode); an existing one that group or
    /// others may read or write is refused.
    pub async fn open(url: &str) -> StoreResult<Self> {
        if let Some(path) = secret_files::sqlite_path(url) {
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
        Ok(SqlStore {
            reader,
            writer,
            state: SqliteState {
                events,
                submissions,
            },
            caches: Caches::none(),
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

/// One transaction for a group: a reply refused on its own (a reused idempotency key, a
/// closed article) fails alone, the others commit together; any other failure fails the
/// group whole, and nothing of it is stored.
async fn insert_group(writer: &SqlitePool, group: &[Submission]) -> Vec<StoreResult<()>> {
    let mut conn = match writer.acquire().await {
        Ok(conn) => conn,
        Err(err) => return failed_all(group, err.into()),
    };
    match insert_together(&mut conn, group).await {
        Ok(results) => results,
        Err(err) => {
            // SQLite may have rolled the transaction back by itself (it does when the disk is
            // full) with sqlx none the wiser, and the next group would then commit nothing: a
            // connection that failed is closed, never used again.
            conn.close_on_drop();
            failed_all(group, err)
        }
    }
}

/// The group's replies in one transaction, with a savepoint each; `Err` when the group as a
/// whole failed.
async fn insert_together(
    conn: &mut SqliteConnection,
    group: &[Submission],
) -> StoreResult<Vec<StoreResult<()>>> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut results = Vec::with_capacity(group.len());
    for submission in group {
        match insert_one(&mut tx, &submission.comment, &submission.actor).await {
            refused @ Err(StoreError::AlreadyExists(_) | StoreError::ArticleClosed) => {
                results.push(refused);
            }
            Err(err) => return Err(err),
            Ok(()) => results.push(Ok(())),
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// Every submission of a failed group refused: with the cause when it is the disk, which the
/// caller can act on.
fn failed_all(group: &[Submission], err: StoreError) -> Vec<StoreResult<()>> {
    let message = err.to_string();
    tracing::error!(error = %message, "group commit failed");
    group
        .iter()
        .map(|_| match &err {
            StoreError::DiskFull(cause) => Err(StoreError::DiskFull(cause.clone())),
            _ => Err(StoreError::GroupFailed(message.clone())),
        })
        .collect()
}

async fn insert_one(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    comment: &StoredComment,
    actor: &str,
) -> StoreResult<()> {
    // One statement stores it all or, refused, nothing: no savepoint needed for the group's
    // transaction to go on without it.
    insert_comment_rows::<Sqlite>(&mut **tx, comment, actor).await
}

#[async_trait]
impl Backend for Sqlite {
    type State = SqliteState;

    // One writer: nothing to wait for.
    const FOR_UPDATE: &'static str = "";
    const FOR_UPDATE_SKIP_LOCKED: &'static str = "";
    const NEW_ID: &'static str = "randomblob(16)";
    const POSITION: &'static str = "instr";
    const SITE_ID_UNINDEXED: &'static str = "+site_id";
    // 31 values each stays below SQLite's limit of 32,766 bound values per statement.
    const SEED_ROWS_PER_STATEMENT: usize = 500;
    const REVOKE_TOKENS: &'static str = "UPDATE tokens SET revoked_at = $1 \
         WHERE revoked_at IS NULL AND substr(prefix, 1, length($2)) = $2 \
         RETURNING id, prefix, role";
    const CREDENTIAL: &'static str = "SELECT t.id, t.role, t.prefix, s.site_id, \
         (SELECT group_concat(scope) FROM token_scopes WHERE token_id = t.id) AS scopes \
         FROM tokens t LEFT JOIN token_sites s ON s.token_id = t.id \
         WHERE t.digest = $1 AND t.revoked_at IS NULL";
    const COUNT_APPROVED: &'static str = "SELECT article, COUNT(*) AS n FROM comments \
         WHERE site_id = $1 AND status = 'approved' \
         AND article IN (SELECT value FROM json_each($2)) GROUP BY article";
    // Five statements in one call: sqlx runs them one after another on the connection's
    // thread, binding each `$n` to the same value in each. A digest's due time is written as
    // sqlx writes one (RFC 3339 in UTC), which orders as text as the times do. `instr`, not `LIKE`: SQLite prepares
    // a statement again whenever the pattern bound to a `LIKE` changes.
    const INSERT_REPLY: &'static str = concat!(
        "INSERT INTO comments (",
        comment_columns!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29 \
         WHERE NOT EXISTS (SELECT 1 FROM closed_articles \
         WHERE site_id = $2 AND article = $3 AND closed_at <= $24); \
         INSERT INTO audit_log \
         (id, site_id, comment_id, actor, action, from_status, to_status, note, created_at) \
         SELECT $30, $2, $1, $31, $32, NULL, $33, NULL, $24 \
         WHERE EXISTS (SELECT 1 FROM comments WHERE id = $1); \
         INSERT INTO webhook_deliveries (id, endpoint_id, site_id, event, comment_id, article, \
         actor, state, attempts, created_at, next_attempt_at) \
         SELECT randomblob(16), e.id, e.site_id, $34, $1, $3, $31, 'pending', 0, $24, $24 \
         FROM webhook_endpoints e WHERE e.site_id = $2 AND e.disabled_at IS NULL \
         AND instr(e.events, $35) > 0 AND EXISTS (SELECT 1 FROM comments WHERE id = $1); \
         INSERT INTO mail_outbox (id, site_id, kind, notice_id, recipient_sealed, \
         recipient_hash, event, comment_id, state, attempts, created_at, next_attempt_at) \
         SELECT randomblob(16), $2, 'notice', n.id, n.email_sealed, n.email_hash, $34, $1, \
         'pending', 0, $24, CASE WHEN n.digest_minutes = 0 THEN $24 ELSE coalesce(\
             (SELECT min(o.next_attempt_at) FROM mail_outbox o \
              WHERE o.notice_id = n.id AND o.state = 'pending'), \
             strftime('%Y-%m-%dT%H:%M:%f+00:00', $24, '+' || n.digest_minutes || ' minutes')) END \
         FROM mail_notices n WHERE n.site_id = $2 AND instr(n.events, $35) > 0 \
         AND EXISTS (SELECT 1 FROM comments WHERE id = $1); \
         INSERT INTO mail_outbox (id, site_id, kind, notice_id, recipient_sealed, \
         recipient_hash, event, comment_id, state, attempts, created_at, next_attempt_at) \
         SELECT randomblob(16), r.site_id, 'answer', NULL, r.email_sealed, r.author_hash, \
         'comment.answered', $1, 'pending', 0, $24, $24 \
         FROM reply_watches rw JOIN comments p ON p.id = rw.comment_id \
         JOIN mail_readers r ON r.site_id = p.site_id AND r.author_hash = p.author_hash \
         WHERE rw.comment_id = $4 AND $8 = 'approved' AND r.state = 'confirmed' \
         AND p.author_hash <> $12 \
         AND (SELECT count(*) FROM mail_outbox o WHERE o.site_id = r.site_id \
             AND o.recipient_hash = r.author_hash AND o.kind = 'answer' \
             AND o.created_at > $36) < $37 \
         AND EXISTS (SELECT 1 FROM comments WHERE id = $1)"
    );
    const FACTS: &'static str = facts_query!(
        "group_concat(fingerprint || ':' || hex(substr(author_hash, 1, 8)))",
        "SELECT json_group_array(json_array(feature, spam, ham)) FROM spam_features \
         WHERE site_id = $1 AND feature IN (SELECT value FROM json_each($6))"
    );
    const SHARED_LEARNED: &'static str = shared_query!(
        "SELECT json_group_array(json_array(s.feature, \
             max(s.spam - COALESCE(f.shared_spam, 0), 0), \
             max(s.ham - COALESCE(f.shared_ham, 0), 0)))",
        "IN (SELECT value FROM json_each($2))"
    );
    const IMPORTED: &'static str = "SELECT i.source_id, c.id, c.root_id, c.path, c.depth, c.article \
         FROM imported_comments i LEFT JOIN comments c ON c.id = i.comment_id \
         WHERE i.site_id = $1 AND i.source = $2 \
         AND i.source_id IN (SELECT value FROM json_each($3))";
    const DROP_CLIENT_DETAILS: &'static str = "UPDATE comments SET ip = NULL, user_agent = NULL, \
         referrer = NULL, idempotency_key = NULL \
         WHERE id IN (SELECT id FROM comments WHERE created_at < $1 \
         AND (ip IS NOT NULL OR user_agent IS NOT NULL OR referrer IS NOT NULL \
         OR idempotency_key IS NOT NULL) LIMIT CAST($2 AS BIGINT))";
    const DELETE_SPAM: &'static str = "DELETE FROM comments WHERE id IN (SELECT id FROM comments \
         WHERE status = 'spam' AND updated_at < $1 ORDER BY updated_at LIMIT CAST($2 AS BIGINT)) \
         RETURNING id, site_id";
    const DROP_FORM_NONCES: &'static str = "DELETE FROM form_nonces WHERE (site_id, nonce) IN \
         (SELECT site_id, nonce FROM form_nonces WHERE used_at < $1 LIMIT CAST($2 AS BIGINT))";
    // CROSS JOIN makes SQLite read the list first and find each comment by its key.
    const TEXTS_TO_KEEP: [&'static str; 2] = [
        "SELECT id, site_id, body, body_public FROM comments \
         WHERE body_sealed IS NULL AND body <> body_public ORDER BY id LIMIT CAST($1 AS BIGINT)",
        "SELECT c.id, c.site_id, c.body, c.body_public FROM texts_to_check t \
         CROSS JOIN comments c ON c.id = t.comment_id WHERE c.body_sealed IS NULL \
         LIMIT CAST($1 AS BIGINT)",
    ];

    fn bind_texts<'q>(query: BoundQuery<'q, Self>, texts: &[String]) -> BoundQuery<'q, Self> {
        query.bind(serde_json::Value::from(texts).to_string())
    }

    fn bind_features<'q>(query: BoundQuery<'q, Self>, features: &[u64]) -> BoundQuery<'q, Self> {
        let features: Vec<i64> = features.iter().map(|&f| f as i64).collect();
        query.bind(serde_json::Value::from(features).to_string())
    }

    async fn insert_comment(
        store: &SqlStore<Self>,
        comment: &StoredComment,
        actor: &str,
    ) -> StoreResult<()> {
        let (done, result) = oneshot::channel();
        store
            .state
            .submissions
            .send(Submission {
                comment: comment.clone(),
                actor: actor.to_owned(),
                done,
            })
            .await
            .map_err(|_| StoreError::Config("the store is closed".to_owned()))?;
        result
            .await
            .map_err(|_| StoreError::Config("the store is closed".to_owned()))?
    }

    async fn listing_changed(
        _: &SqliteState,
        _: &mut SqliteConnection,
        _: SiteId,
        _: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        // One process owns the file: no other replica caches its listings.
        Ok(())
    }

    async fn closing_article(
        _: &mut SqliteConnection,
        _: SiteId,
        _: &str,
    ) -> Result<(), sqlx::Error> {
        // One writer: a close and a reply's transaction never overlap.
        Ok(())
    }

    async fn teach(
        conn: &mut SqliteConnection,
        site: SiteId,
        features: &[u64],
        spam: f32,
        ham: f32,
        shared: bool,
    ) -> Result<(), sqlx::Error> {
        let (spam, ham) = (f64::from(spam), f64::from(ham));
        let (shared_spam, shared_ham) = if shared { (spam, ham) } else { (0.0, 0.0) };
        sqlx::query(
            "INSERT INTO spam_totals (site_id, spam, ham, shared_spam, shared_ham) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (site_id) DO UPDATE SET spam = spam + excluded.spam, \
             ham = ham + excluded.ham, shared_spam = shared_spam + excluded.shared_spam, \
             shared_ham = shared_ham + excluded.shared_ham",
        )
        .bind(site.0)
        .bind(spam)
        .bind(ham)
        .bind(shared_spam)
        .bind(shared_ham)
        .execute(&mut *conn)
        .await?;
        for &feature in features {
            sqlx::query(
                "INSERT INTO spam_features (site_id, feature, spam, ham, shared_spam, shared_ham) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (site_id, feature) DO UPDATE \
                 SET spam = spam + excluded.spam, ham = ham + excluded.ham, \
                 shared_spam = shared_spam + excluded.shared_spam, \
                 shared_ham = shared_ham + excluded.shared_ham",
            )
            .bind(site.0)
            .bind(feature as i64)
            .bind(spam)
            .bind(ham)
            .bind(shared_spam)
            .bind(shared_ham)
            .execute(&mut *conn)
            .await?;
        }
        if !shared {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO shared_spam_totals (id, spam, ham) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET spam = spam + excluded.spam, ham = ham + excluded.ham",
        )
        .bind(spam)
        .bind(ham)
        .execute(&mut *conn)
        .await?;
        for &feature in features {
            sqlx::query(
                "INSERT INTO shared_spam_features (feature, spam, ham) VALUES ($1, $2, $3) \
                 ON CONFLICT (feature) DO UPDATE \
                 SET spam = spam + excluded.spam, ham = ham + excluded.ham",
            )
            .bind(feature as i64)
            .bind(spam)
            .bind(ham)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn rekey_alone(_: &mut SqliteConnection) -> StoreResult<()> {
        // The server holds the file's lock while it serves (`server::SqliteLock`), and so does
        // a rotation: nothing else can be writing.
        Ok(())
    }

    async fn reseal(
        conn: &mut SqliteConnection,
        batch: &[(Uuid, Resealed)],
    ) -> Result<(), sqlx::Error> {
        for (id, resealed) in batch {
            sqlx::query(
                "UPDATE comments SET email_sealed = $1, author_hash = $2, avatar_seed = $3, \
                 body_sealed = $4 WHERE id = $5",
            )
            .bind(&resealed.email_sealed)
            .bind(&resealed.author_hash.0[..])
            .bind(&resealed.avatar_seed)
            .bind(&resealed.body_sealed)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn scrubbed(store: &SqlStore<Self>) {
        store.checkpoint().await;
    }

    fn subscribe(state: &SqliteState) -> broadcast::Receiver<QueueEvent> {
        state.events.subscribe()
    }

    fn listing_events(_: &SqliteState) -> Option<ListingEvents> {
        None
    }

    async fn mark_serving(_: &SqlStore<Self>) -> StoreResult<Option<ServingMark>> {
        // The server locks the file instead (`server::SqliteLock`).
        Ok(None)
    }
}

impl SqlStore<Sqlite> {
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
