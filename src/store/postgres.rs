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
//!
//! The SQL itself is [`super::sql`]'s; this file holds what only PostgreSQL
//! does: the pool, `LISTEN/NOTIFY` between replicas, advisory locks, and the
//! statements that bind arrays.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use sqlx::{
    PgConnection, Postgres,
    error::DatabaseError,
    postgres::{PgConnectOptions, PgDatabaseError, PgListener, PgPool, PgPoolOptions},
};
use tokio::{
    sync::{broadcast, oneshot},
    task::JoinHandle,
};
use uuid::Uuid;

use super::{
    EVENT_BUFFER, HeldMark, ListingEvent, ListingEvents, ServingMark, StoreError, StoreOptions,
    StoreResult, StoredComment,
    cache::Caches,
    rows::comment_columns,
    sql::{Backend, BoundQuery, SqlStore, facts_query, insert_comment_rows, shared_query},
};
use crate::{
    domain::{CommentStatus, QueueEvent},
    ids::SiteId,
    privacy::Resealed,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A store on one PostgreSQL database (or one schema of it, when the URL
/// sets `search_path`).
pub type PostgresStore = SqlStore<Postgres>;

/// The key of one article's advisory lock, from `$1` (the site) and `$2` (the article): the
/// `closed_articles` table's oid, so that each schema has its own, and the article's hash.
macro_rules! article_lock {
    () => {
        "'closed_articles'::regclass::oid::int, hashtext($1::text || ' ' || $2)"
    };
}

/// How often a server's serving lock is checked: the longest a restarted PostgreSQL goes
/// without it, and a rotation could start under a running replica.
const SERVING_CHECK: Duration = Duration::from_millis(250);

const TAKE_SERVING_LOCK: &str =
    "SELECT pg_advisory_lock_shared('key_check'::regclass::oid::bigint)";

/// A server's mark on the database: a task that holds the serving lock shared on a connection
/// of its own, and takes it again on a new one when PostgreSQL restarts under it.
struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Serving {
    fn hold(pool: PgPool, mut connection: PgConnection) -> Serving {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut check = tokio::time::interval(SERVING_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = check.tick() => {}
                }
                if sqlx::query("SELECT 1")
                    .execute(&mut connection)
                    .await
                    .is_ok()
                {
                    continue;
                }
                tracing::warn!("the serving lock was lost with its connection; taking it again");
                connection = tokio::select! {
                    _ = &mut stopped => return,
                    again = take_serving_lock_again(&pool) => again,
                };
                tracing::info!("the serving lock is held again");
            }
            // Unlocked before the connection goes, since the server ends a session only once
            // it has seen the connection close.
            let unlocked =
                sqlx::query("SELECT pg_advisory_unlock_shared('key_check'::regclass::oid::bigint)")
                    .execute(&mut connection)
                    .await;
            if let Err(err) = unlocked {
                tracing::warn!(error = %err, "releasing the serving lock failed; it goes with the connection");
            }
            let _ = sqlx::Connection::close(connection).await;
        });
        Serving { stop, task }
    }
}

/// A new connection holding the serving lock, however long PostgreSQL takes to come back.
async fn take_serving_lock_again(pool: &PgPool) -> PgConnection {
    loop {
        match take_serving_lock(pool).await {
            Ok(connection) => return connection,
            Err(err) => {
                tracing::warn!(error = %err, "cannot take the serving lock yet");
                tokio::time::sleep(SERVING_CHECK).await;
            }
        }
    }
}

async fn take_serving_lock(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query(TAKE_SERVING_LOCK)
        .execute(&mut connection)
        .await?;
    Ok(connection)
}

#[async_trait]
impl HeldMark for Serving {
    async fn release(self: Box<Self>) {
        let Serving { stop, task } = *self;
        let _ = stop.send(());
        let _ = task.await;
    }
}

impl SqlStore<Postgres> {
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
        Ok(SqlStore {
            reader: pool.clone(),
            writer: pool,
            state: events,
            caches: Caches::none(),
        })
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

#[async_trait]
impl Backend for Postgres {
    type State = Arc<Events>;

    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_UPDATE_SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const NEW_ID: &'static str = "gen_random_uuid()";
    const POSITION: &'static str = "strpos";
    // The statement reads the table as it was when it began: the deliveries join the new row
    // as the first part returns it, not the table.
    const INSERT_REPLY: &'static str = concat!(
        "WITH c AS (INSERT INTO comments (",
        comment_columns!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29 \
         WHERE NOT EXISTS (SELECT 1 FROM closed_articles \
         WHERE site_id = $2 AND article = $3 AND closed_at <= $24) \
         RETURNING id), \
         w AS (INSERT INTO webhook_deliveries (id, endpoint_id, site_id, event, comment_id, \
         article, actor, state, attempts, created_at, next_attempt_at) \
         SELECT gen_random_uuid(), e.id, e.site_id, $34, c.id, $3, $31, 'pending', 0, $24, $24 \
         FROM c CROSS JOIN webhook_endpoints e WHERE e.site_id = $2 AND e.disabled_at IS NULL \
         AND strpos(e.events, $35) > 0), \
         n AS (INSERT INTO mail_outbox (id, site_id, kind, notice_id, recipient_sealed, \
         recipient_hash, event, comment_id, state, attempts, created_at, next_attempt_at) \
         SELECT gen_random_uuid(), $2, 'notice', n.id, n.email_sealed, n.email_hash, $34, c.id, \
         'pending', 0, $24, CASE WHEN n.digest_minutes = 0 THEN $24 ELSE coalesce(\
             (SELECT min(o.next_attempt_at) FROM mail_outbox o \
              WHERE o.notice_id = n.id AND o.state = 'pending'), \
             $24 + n.digest_minutes * interval '1 minute') END \
         FROM c CROSS JOIN mail_notices n WHERE n.site_id = $2 AND strpos(n.events, $35) > 0), \
         a AS (INSERT INTO mail_outbox (id, site_id, kind, notice_id, recipient_sealed, \
         recipient_hash, event, comment_id, state, attempts, created_at, next_attempt_at) \
         SELECT gen_random_uuid(), r.site_id, 'answer', NULL, r.email_sealed, r.author_hash, \
         'comment.answered', c.id, 'pending', 0, $24, $24 \
         FROM c CROSS JOIN reply_watches rw JOIN comments p ON p.id = rw.comment_id \
         JOIN mail_readers r ON r.site_id = p.site_id AND r.author_hash = p.author_hash \
         WHERE rw.comment_id = $4 AND $8 = 'approved' AND r.state = 'confirmed' \
         AND p.author_hash <> $12 \
         AND (SELECT count(*) FROM mail_outbox o WHERE o.site_id = r.site_id \
             AND o.recipient_hash = r.author_hash AND o.kind = 'answer' \
             AND o.created_at > $36) < $37) \
         INSERT INTO audit_log \
         (id, site_id, comment_id, actor, action, from_status, to_status, note, created_at) \
         SELECT $30, $2, c.id, $31, $32, NULL, $33, NULL, $24 FROM c"
    );
    const SITE_ID_UNINDEXED: &'static str = "site_id";
    // 31 values each stays below PostgreSQL's limit of 65,535 bound values per statement.
    const SEED_ROWS_PER_STATEMENT: usize = 1000;
    // On a "C" column `starts_with` is served by the `tokens_prefix` index.
    const REVOKE_TOKENS: &'static str = "UPDATE tokens SET revoked_at = $1 \
         WHERE revoked_at IS NULL AND starts_with(prefix, $2) \
         RETURNING id, prefix, role";
    const CREDENTIAL: &'static str = "SELECT t.id, t.role, t.prefix, s.site_id, \
         (SELECT string_agg(scope, ',') FROM token_scopes WHERE token_id = t.id) AS scopes \
         FROM tokens t LEFT JOIN token_sites s ON s.token_id = t.id \
         WHERE t.digest = $1 AND t.revoked_at IS NULL";
    // One index range per article, whatever the planner's statistics say: `article = ANY($2)`
    // over a table not yet analysed was read as a filter on every approved comment of the site.
    const COUNT_APPROVED: &'static str = "SELECT a.article, c.n FROM unnest($2::text[]) AS a (article) \
         CROSS JOIN LATERAL (SELECT count(*) AS n FROM comments \
             WHERE site_id = $1 AND status = 'approved' AND article = a.article) AS c \
         WHERE c.n > 0";
    const FACTS: &'static str = facts_query!(
        "string_agg(fingerprint::text || ':' || encode(substring(author_hash from 1 for 8), 'hex'), ',')",
        "SELECT json_agg(json_build_array(feature, spam, ham))::text FROM spam_features \
         WHERE site_id = $1 AND feature = ANY($6)"
    );
    const SHARED_LEARNED: &'static str = shared_query!(
        "SELECT json_agg(json_build_array(s.feature, \
             greatest(s.spam - COALESCE(f.shared_spam, 0), 0), \
             greatest(s.ham - COALESCE(f.shared_ham, 0), 0)))::text",
        "= ANY($2)"
    );
    // One primary-key lookup per id, whatever the planner's statistics say: a join of the two
    // tables as they grow during an import, never analysed, was planned as a scan of the site's
    // imported ids (15 s a batch at 300,000 of them; 12 ms so). `LIMIT 1` keeps each lookup a
    // subquery of its own, which the planner would otherwise merge into that join.
    const IMPORTED: &'static str = "SELECT i.source_id, c.id, c.root_id, c.path, c.depth, c.article \
         FROM unnest($3::text[]) AS s (source_id) \
         CROSS JOIN LATERAL (SELECT source_id, comment_id FROM imported_comments \
             WHERE site_id = $1 AND source = $2 AND source_id = s.source_id LIMIT 1) AS i \
         LEFT JOIN LATERAL (SELECT id, root_id, path, depth, article FROM comments \
             WHERE id = i.comment_id LIMIT 1) AS c ON true";
    // `= ANY(ARRAY(…))`, not `IN (…)`: the batch's ids are looked up by primary key instead
    // of joined against a scan of the whole table.
    const DROP_CLIENT_DETAILS: &'static str = "UPDATE comments SET ip = NULL, user_agent = NULL, \
         referrer = NULL, idempotency_key = NULL \
         WHERE id = ANY(ARRAY(SELECT id FROM comments WHERE created_at < $1 \
         AND (ip IS NOT NULL OR user_agent IS NOT NULL OR referrer IS NOT NULL \
         OR idempotency_key IS NOT NULL) LIMIT CAST($2 AS BIGINT)))";
    // SKIP LOCKED: a reply a moderator is deciding now is theirs.
    const DELETE_SPAM: &'static str = "DELETE FROM comments WHERE id = ANY(ARRAY(SELECT id \
         FROM comments WHERE status = 'spam' AND updated_at < $1 \
         ORDER BY updated_at LIMIT CAST($2 AS BIGINT) FOR UPDATE SKIP LOCKED)) \
         AND status = 'spam' RETURNING id, site_id";
    // `ctid = ANY(ARRAY(…))` for the reason above: the batch is looked up by row address.
    const DROP_FORM_NONCES: &'static str = "DELETE FROM form_nonces WHERE ctid = ANY(ARRAY(\
         SELECT ctid FROM form_nonces WHERE used_at < $1 LIMIT CAST($2 AS BIGINT)))";
    // `ORDER BY id` is what makes the planner read the partial index `comments_unsealed`: it
    // cannot estimate `body <> body_public`, and without it scans the whole table at every
    // start. A replica starting at the same time skips the rows this one holds.
    const TEXTS_TO_KEEP: [&'static str; 2] = [
        "SELECT id, site_id, body, body_public FROM comments \
         WHERE body_sealed IS NULL AND body <> body_public ORDER BY id LIMIT CAST($1 AS BIGINT) \
         FOR UPDATE SKIP LOCKED",
        "SELECT c.id, c.site_id, c.body, c.body_public FROM texts_to_check t \
         JOIN comments c ON c.id = t.comment_id WHERE c.body_sealed IS NULL \
         LIMIT CAST($1 AS BIGINT) \
         FOR UPDATE OF c SKIP LOCKED",
    ];

    fn bind_texts<'q>(query: BoundQuery<'q, Self>, texts: &[String]) -> BoundQuery<'q, Self> {
        query.bind(texts.to_vec())
    }

    fn bind_features<'q>(query: BoundQuery<'q, Self>, features: &[u64]) -> BoundQuery<'q, Self> {
        query.bind(features.iter().map(|&f| f as i64).collect::<Vec<i64>>())
    }

    async fn insert_comment(
        store: &SqlStore<Self>,
        comment: &StoredComment,
        actor: &str,
    ) -> StoreResult<()> {
        let mut tx = store.writer.begin().await?;
        // Shared with every reply to the article, alone for a close (`closing_article`): the
        // insert's own statement then sees a close that committed while this waited.
        sqlx::query(concat!(
            "SELECT pg_advisory_xact_lock_shared(",
            article_lock!(),
            ")"
        ))
        .bind(comment.site.0)
        .bind(comment.article.as_str())
        .execute(&mut *tx)
        .await?;
        insert_comment_rows::<Postgres>(&mut tx, comment, actor).await?;
        // Delivered to every replica's listener when, and only if, the
        // transaction commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&store.state.channel)
            .bind(encode_event(&QueueEvent {
                site: comment.site,
                comment: comment.id,
                status: comment.status,
            }))
            .execute(&mut *tx)
            .await?;
        if comment.status == CommentStatus::Approved {
            notify_listing(
                &mut tx,
                &store.state.channel,
                comment.site,
                Some(&comment.article),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn listing_changed(
        state: &Arc<Events>,
        conn: &mut PgConnection,
        site: SiteId,
        article: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        notify_listing(conn, &state.channel, site, article).await
    }

    async fn closing_article(
        conn: &mut PgConnection,
        site: SiteId,
        article: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "SELECT pg_advisory_xact_lock(",
            article_lock!(),
            ")"
        ))
        .bind(site.0)
        .bind(article)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn teach(
        conn: &mut PgConnection,
        site: SiteId,
        features: &[u64],
        spam: f32,
        ham: f32,
        shared: bool,
    ) -> Result<(), sqlx::Error> {
        let (shared_spam, shared_ham) = if shared { (spam, ham) } else { (0.0, 0.0) };
        sqlx::query(
            "INSERT INTO spam_totals (site_id, spam, ham, shared_spam, shared_ham) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (site_id) DO UPDATE \
             SET spam = spam_totals.spam + excluded.spam, ham = spam_totals.ham + excluded.ham, \
             shared_spam = spam_totals.shared_spam + excluded.shared_spam, \
             shared_ham = spam_totals.shared_ham + excluded.shared_ham",
        )
        .bind(site.0)
        .bind(spam)
        .bind(ham)
        .bind(shared_spam)
        .bind(shared_ham)
        .execute(&mut *conn)
        .await?;
        // Sorted, as features are: concurrent lessons lock rows in one order.
        let features: Vec<i64> = features.iter().map(|&f| f as i64).collect();
        sqlx::query(
            "INSERT INTO spam_features (site_id, feature, spam, ham, shared_spam, shared_ham) \
             SELECT $1, feature, $3, $4, $5, $6 FROM unnest($2::bigint[]) AS feature \
             ON CONFLICT (site_id, feature) DO UPDATE \
             SET spam = spam_features.spam + excluded.spam, ham = spam_features.ham + excluded.ham, \
             shared_spam = spam_features.shared_spam + excluded.shared_spam, \
             shared_ham = spam_features.shared_ham + excluded.shared_ham",
        )
        .bind(site.0)
        .bind(&features)
        .bind(spam)
        .bind(ham)
        .bind(shared_spam)
        .bind(shared_ham)
        .execute(&mut *conn)
        .await?;
        if !shared {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO shared_spam_totals (id, spam, ham) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET spam = shared_spam_totals.spam + excluded.spam, \
             ham = shared_spam_totals.ham + excluded.ham",
        )
        .bind(spam)
        .bind(ham)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO shared_spam_features (feature, spam, ham) \
             SELECT feature, $2, $3 FROM unnest($1::bigint[]) AS feature \
             ON CONFLICT (feature) DO UPDATE \
             SET spam = shared_spam_features.spam + excluded.spam, \
             ham = shared_spam_features.ham + excluded.ham",
        )
        .bind(&features)
        .bind(spam)
        .bind(ham)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn rekey_alone(conn: &mut PgConnection) -> StoreResult<()> {
        // The serving lock (see `mark_serving`), alone, to the end of the transaction.
        let alone: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock('key_check'::regclass::oid::bigint)",
        )
        .fetch_one(conn)
        .await?;
        if alone {
            Ok(())
        } else {
            Err(StoreError::Serving)
        }
    }

    async fn reseal(
        conn: &mut PgConnection,
        batch: &[(Uuid, Resealed)],
    ) -> Result<(), sqlx::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        // One statement per batch: the columns as arrays, unnested side by side.
        let mut ids = Vec::with_capacity(batch.len());
        let mut emails = Vec::with_capacity(batch.len());
        let mut hashes = Vec::with_capacity(batch.len());
        let mut seeds = Vec::with_capacity(batch.len());
        let mut bodies = Vec::with_capacity(batch.len());
        for (id, resealed) in batch {
            ids.push(*id);
            emails.push(resealed.email_sealed.clone());
            hashes.push(resealed.author_hash.0.to_vec());
            seeds.push(resealed.avatar_seed.clone());
            bodies.push(resealed.body_sealed.clone());
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
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn scrubbed(_: &SqlStore<Self>) {
        // PostgreSQL's vacuum reclaims dead rows in its own time; see docs/DEPLOYMENT.md.
    }

    fn subscribe(state: &Arc<Events>) -> broadcast::Receiver<QueueEvent> {
        state.sender.subscribe()
    }

    fn listing_events(state: &Arc<Events>) -> Option<ListingEvents> {
        // Subscribed first: an interruption after the flag is read still
        // arrives as an event.
        let events = state.listing.subscribe();
        let listening = state.listening.load(Ordering::SeqCst);
        Some(ListingEvents { events, listening })
    }

    async fn mark_serving(store: &SqlStore<Self>) -> StoreResult<Option<ServingMark>> {
        // An advisory lock every server holds shared on a connection of its own while it serves,
        // and `rekey` takes alone. Its key is the `key_check` table's oid, so each database, and
        // each schema of one, has its own.
        let connection = take_serving_lock(&store.writer).await?;
        Ok(Some(ServingMark {
            held: Box::new(Serving::hold(store.writer.clone(), connection)),
        }))
    }
}

/// The replica's end of `LISTEN/NOTIFY`: a task that hears every replica's
/// commits and hands them to this replica's watchers and caches. It stops
/// with the last clone of the store.
pub struct Events {
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
    use crate::ids::CommentId;

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
