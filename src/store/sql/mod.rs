//! The SQL both backends share: one implementation of every store trait, generic over the
//! database, written once with `$n` placeholders (SQLite reads them as PostgreSQL does).
//!
//! What really differs between the backends is [`Backend`]: how a new reply reaches the disk
//! (SQLite's group commit, PostgreSQL's `NOTIFY` to the other replicas), row locks, the few
//! statements each dialect writes its own way, and lists bound as one parameter. Every
//! method here runs the same statements, in the same transactions, on either.
//!
//! A limit is bound as `LIMIT CAST($n AS BIGINT)`, never `LIMIT $n`: SQLite (3.51) reads a
//! bare bound limit while it plans, and then prepares the statement again each time a value is
//! bound to it, which cost a submission more than running its statements.
//!
//! Each `impl` states, in its `where` clause, the value types it binds and the rows it reads:
//! sqlx's traits say what a backend can encode and decode, and Rust wants those bounds
//! written where they are used.

mod comments;
mod facts;
mod importing;
mod keys;
mod mailing;
mod moderating;
mod sites;
mod webhooks;

pub(super) use facts::{facts_query, latest, shared_query};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::{
    AssertSqlSafe, Database, Encode, Executor, IntoArguments, Pool, Type, query::Query, types::Json,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    ListingEvents, NewAuditRow, ServingMark, StoreError, StoreResult, StoredComment, cache::Caches,
    rows::encode_features,
};
use crate::{
    domain::{ANSWERS_PER_HOUR, CommentStatus, QueueEvent, WebhookEvent, audit_action},
    ids::{AuditId, CommentId, SiteId},
    privacy::Resealed,
    spam::Reason,
};

/// A store on one database: the shared SQL over the backend's pools.
pub struct SqlStore<DB: Backend> {
    /// Where reads go: on SQLite a pool of read-only connections beside the one writer.
    pub(super) reader: Pool<DB>,
    /// Where writes go: on SQLite one connection, so our own writers never meet `SQLITE_BUSY`.
    pub(super) writer: Pool<DB>,
    /// What the backend keeps beside its pools.
    pub(super) state: DB::State,
    /// What this process keeps in memory of the database.
    pub(super) caches: Caches,
}

impl<DB: Backend> SqlStore<DB> {
    /// Keeps, from now on, about `max_bytes` of the public's reads (0 keeps none) and the
    /// credentials it reads in memory, dropping what any change, here or on another replica,
    /// makes stale. Must be called within a Tokio runtime.
    pub fn with_caches(mut self, max_bytes: usize) -> Self {
        self.caches = Caches::new(max_bytes, DB::listing_events(&self.state));
        self
    }
}

/// A statement with its arguments, into which a [`Backend`] binds a list as one parameter.
pub type BoundQuery<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// How many rows a statement changed: each backend's result says so its own way.
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// What differs between SQLite and PostgreSQL, for the shared SQL.
#[async_trait]
pub trait Backend: Database<QueryResult: RowsAffected> {
    /// What a store keeps beside its pools: its events, its writer's queue.
    type State: Send + Sync + 'static;

    /// Appended to a `SELECT` whose rows a transaction will change: on PostgreSQL a second
    /// transaction on them waits here until the first commits; SQLite's one writer is alone.
    const FOR_UPDATE: &'static str;
    /// As [`Backend::FOR_UPDATE`], for work that any replica may take (sweeps): rows another
    /// transaction holds are left to it.
    const FOR_UPDATE_SKIP_LOCKED: &'static str;
    /// A new random id, in SQL: for the rows one statement makes many of (webhook deliveries).
    const NEW_ID: &'static str;
    /// The function that finds text in text, `f(haystack, needle)`, 0 when it is not there
    /// (`instr`, `strpos`): for matching a bound value without `LIKE`, whose bound pattern
    /// SQLite re-plans for.
    const POSITION: &'static str;
    /// `site_id` in a filter that must not choose an index by it: SQLite, which replyguard
    /// never `ANALYZE`s, would walk a site's whole audit log for one comment's few rows.
    const SITE_ID_UNINDEXED: &'static str;
    /// How many comments one seeding or importing `INSERT` takes (31 values each), below the
    /// backend's limit
    /// of bound values per statement.
    const SEED_ROWS_PER_STATEMENT: usize;
    /// Revokes the live tokens whose prefix starts with `$2` at `$1`, returning `id, prefix,
    /// role`; a prefix may hold `_`, so no `LIKE`.
    const REVOKE_TOKENS: &'static str;
    /// A live token's rows by digest `$1`: `id, role, prefix, site_id, scopes` (comma-joined).
    const CREDENTIAL: &'static str;
    /// `article, n` for the approved comments of site `$1` under each article of the list `$2`
    /// (bound with [`Backend::bind_texts`]) that has any.
    const COUNT_APPROVED: &'static str;
    /// [`super::Facts::facts`]'s statement (`facts_query!`): site `$1`, author hash `$2`,
    /// address `$3`, article `$4`, how many recent replies `$5`, the features `$6` (bound with
    /// [`Backend::bind_features`]), the public text `$7`.
    const FACTS: &'static str;
    /// [`super::Facts::shared_learned`]'s statement (`shared_query!`): site `$1`, the features
    /// `$2` (bound with [`Backend::bind_features`]).
    const SHARED_LEARNED: &'static str;
    /// Drops the client details of at most `$2` replies created before `$1`.
    const DROP_CLIENT_DETAILS: &'static str;
    /// Deletes at most `$2` spam replies unchanged since `$1`, returning `id, site_id`.
    const DELETE_SPAM: &'static str;
    /// Forgets at most `$2` form nonces used before `$1`.
    const DROP_FORM_NONCES: &'static str;
    /// The batches of texts to keep again (at most `$1` each): `id, site_id, body, body_public`
    /// of those with contact details in the clear, then of those migration 0005 listed.
    const TEXTS_TO_KEEP: [&'static str; 2];

    /// Stores a new reply, its `submit` audit row, its webhook deliveries and its mails in one
    /// call to the database: the comment's columns (`comment_columns!`) are `$1` to `$29`, then
    /// the audit row's id `$30`, the actor `$31`, the action `$32`, the status `$33`, the
    /// webhook event `$34`, the text an endpoint's or a notice's events must hold `$35`
    /// (`,comment.held,`; `NULL`: none), the hour before the reply `$36` and the answers a
    /// reader may be mailed in an hour `$37`. The mails are a notice for each moderator's
    /// notice of the site that wants the event (a digest's due when the one it gathers into
    /// is, or its minutes after the reply), and for an approved answer the mail to the author
    /// of its parent when they asked and confirmed (see `mailing::queue_answer`). Nothing is
    /// stored when a moderator's close of the article is in effect at the reply's time: it
    /// changes no row then.
    const INSERT_REPLY: &'static str;

    /// `source_id, id, root_id, path, depth, article` of the comments of site `$1` imported from
    /// source `$2` under each source id of the list `$3` (bound with [`Backend::bind_texts`]);
    /// the comment's columns are NULL for one deleted since.
    const IMPORTED: &'static str;

    /// Binds a list of texts as one parameter, for [`Backend::COUNT_APPROVED`] and
    /// [`Backend::IMPORTED`].
    fn bind_texts<'q>(query: BoundQuery<'q, Self>, texts: &[String]) -> BoundQuery<'q, Self>;
    /// Binds a list of features as one parameter, for [`Backend::FACTS`].
    fn bind_features<'q>(query: BoundQuery<'q, Self>, features: &[u64]) -> BoundQuery<'q, Self>;

    /// Stores a new comment with its `submit` audit row, and tells whoever listens once it is
    /// committed.
    async fn insert_comment(
        store: &SqlStore<Self>,
        comment: &StoredComment,
        actor: &str,
    ) -> StoreResult<()>;
    /// Within a transaction that changes the approved listings of `site` (of one `article`, or
    /// all of them): tells the other replicas, when it commits, to drop what they cached.
    async fn listing_changed(
        state: &Self::State,
        conn: &mut Self::Connection,
        site: SiteId,
        article: Option<&str>,
    ) -> Result<(), sqlx::Error>;
    /// Adds `(spam, ham)` to the site's totals and to each of `features`: increments only, so
    /// that concurrent lessons add up. With `shared`, also to the deployment's shared counts
    /// and to the part of the site's counts it gave to them; the shared totals' one row is
    /// locked after the site's rows and before the shared features, in every lesson.
    async fn teach(
        conn: &mut Self::Connection,
        site: SiteId,
        features: &[u64],
        spam: f32,
        ham: f32,
        shared: bool,
    ) -> Result<(), sqlx::Error>;
    /// Within a transaction that closes or reopens `article`: waits for the replies being
    /// stored under it to commit, and holds back new ones until this commits, so that no reply
    /// is stored under an article after its close was answered.
    async fn closing_article(
        conn: &mut Self::Connection,
        site: SiteId,
        article: &str,
    ) -> Result<(), sqlx::Error>;
    /// Within a re-keying's transaction: makes sure no server is serving the database, and
    /// that no other rotation runs, until it ends (`Serving` otherwise).
    async fn rekey_alone(conn: &mut Self::Connection) -> StoreResult<()>;
    /// Stores a batch of comments' values under a new key.
    async fn reseal(
        conn: &mut Self::Connection,
        batch: &[(Uuid, Resealed)],
    ) -> Result<(), sqlx::Error>;
    /// After personal data was overwritten or deleted: makes sure no copy of it lingers in the
    /// database's files beyond what the backend can help.
    async fn scrubbed(store: &SqlStore<Self>);
    /// See [`super::Comments::subscribe`].
    fn subscribe(state: &Self::State) -> broadcast::Receiver<QueueEvent>;
    /// See [`super::Comments::listing_events`].
    fn listing_events(state: &Self::State) -> Option<ListingEvents>;
    /// See [`super::Keys::mark_serving`].
    async fn mark_serving(store: &SqlStore<Self>) -> StoreResult<Option<ServingMark>>;
}

/// Whether `err` broke a uniqueness rule.
pub(super) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Inserts one audit row, and when it moves a comment to another status, queues the webhook
/// event that tells of it for each of the site's endpoints that wants it: in the caller's
/// transaction, so that an event is sent if and only if its change commits.
pub(super) async fn insert_audit<DB>(
    conn: &mut DB::Connection,
    row: &NewAuditRow<'_>,
) -> Result<(), sqlx::Error>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
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
    .execute(&mut *conn)
    .await?;
    if let (Some(comment), Some(CommentStatus::Approved)) = (row.comment, row.to)
        && row.from != Some(CommentStatus::Approved)
    {
        mailing::queue_answer::<DB>(conn, comment, row.at).await?;
    }
    if let (Some(comment), Some(to)) = (row.comment, row.to)
        && row.from != Some(to)
        && let Some(event) = WebhookEvent::of_status(to)
    {
        let subject = WebhookSubject::Comment(comment);
        queue_webhook_event::<DB>(conn, row.site, event, subject, row.actor, row.at).await?;
    }
    Ok(())
}

/// Keeps the earliest of `comments` under each article as that article's first reply, unless
/// the one kept is earlier: for replies stored in bulk (seeded, imported), which may be older
/// than those the article had. The caller drops the listings (the clocks) of their sites.
pub(super) async fn record_first_replies<'a, DB>(
    conn: &mut DB::Connection,
    comments: impl IntoIterator<Item = &'a StoredComment>,
) -> Result<(), sqlx::Error>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let mut firsts: std::collections::BTreeMap<(SiteId, &str), DateTime<Utc>> = Default::default();
    for c in comments {
        firsts
            .entry((c.site, c.article.as_str()))
            .and_modify(|first| *first = (*first).min(c.created_at))
            .or_insert(c.created_at);
    }
    for ((site, article), first) in firsts {
        sqlx::query(
            "INSERT INTO article_dates (site_id, article, first_reply_at) VALUES ($1, $2, $3) \
             ON CONFLICT (site_id, article) DO UPDATE SET first_reply_at = CASE \
             WHEN article_dates.first_reply_at IS NULL \
             OR excluded.first_reply_at < article_dates.first_reply_at \
             THEN excluded.first_reply_at ELSE article_dates.first_reply_at END",
        )
        .bind(site.0)
        .bind(article)
        .bind(first)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What a webhook event is about.
pub(super) enum WebhookSubject<'a> {
    /// A comment, whose article is read from its row.
    Comment(CommentId),
    /// An article.
    Article(&'a str),
}

/// Queues `event` for each endpoint of `site` that wants it, as a pending delivery due now.
pub(super) async fn queue_webhook_event<DB>(
    conn: &mut DB::Connection,
    site: SiteId,
    event: WebhookEvent,
    subject: WebhookSubject<'_>,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // Matched by position, as `INSERT_REPLY` matches: a bound `LIKE` pattern would have SQLite
    // prepare the statement again on every decision.
    let wanted = format!(",{event},");
    let insert = "INSERT INTO webhook_deliveries (id, endpoint_id, site_id, event, comment_id, \
                  article, actor, state, attempts, created_at, next_attempt_at) ";
    let query = match subject {
        WebhookSubject::Comment(comment) => sqlx::query(AssertSqlSafe(format!(
            "{insert}SELECT {}, e.id, e.site_id, $2, c.id, c.article, $4, 'pending', 0, $5, $5 \
             FROM webhook_endpoints e JOIN comments c ON c.id = $3 \
             WHERE e.site_id = $1 AND e.disabled_at IS NULL AND {}(e.events, $6) > 0",
            DB::NEW_ID,
            DB::POSITION
        )))
        .bind(site.0)
        .bind(event.as_str())
        .bind(comment.0),
        WebhookSubject::Article(article) => sqlx::query(AssertSqlSafe(format!(
            "{insert}SELECT {}, e.id, e.site_id, $2, NULL, $3, $4, 'pending', 0, $5, $5 \
             FROM webhook_endpoints e \
             WHERE e.site_id = $1 AND e.disabled_at IS NULL AND {}(e.events, $6) > 0",
            DB::NEW_ID,
            DB::POSITION
        )))
        .bind(site.0)
        .bind(event.as_str())
        .bind(article),
    };
    query
        .bind(actor)
        .bind(at)
        .bind(wanted.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts a new comment, its `submit` audit row and the webhook deliveries that tell of it, in
/// one statement ([`Backend::INSERT_REPLY`]); `AlreadyExists` when its idempotency key was used
/// on the site already, `ArticleClosed` when its article is closed. The caller's transaction
/// makes them one with the rest of its work.
pub(super) async fn insert_comment_rows<DB>(
    conn: &mut DB::Connection,
    c: &StoredComment,
    actor: &str,
) -> StoreResult<()>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> Json<&'r Vec<Reason>>: Encode<'q, DB> + Type<DB>,
{
    let event = WebhookEvent::of_status(c.status);
    let inserted = sqlx::query(DB::INSERT_REPLY)
        .bind(c.id.0)
        .bind(c.site.0)
        .bind(c.article.as_str())
        .bind(c.parent.map(|p| p.0))
        .bind(c.root.0)
        .bind(c.path.as_str())
        .bind(i64::from(c.depth))
        .bind(c.status.as_str())
        .bind(c.author_name.as_str())
        .bind(c.author_website.as_deref())
        .bind(c.email_sealed.as_slice())
        .bind(c.author_hash.as_slice())
        .bind(c.avatar_seed.as_str())
        .bind(c.body.as_str())
        .bind(c.body_public.as_str())
        .bind(c.body_html.as_str())
        .bind(c.ip.as_deref())
        .bind(c.user_agent.as_deref())
        .bind(c.referrer.as_deref())
        .bind(c.score)
        .bind(c.verdict.as_str())
        .bind(Json(&c.reasons))
        .bind(c.idempotency_key.as_deref())
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.fingerprint.map(|f| f as i64))
        .bind(encode_features(&c.features))
        .bind(c.body_sealed.as_deref())
        .bind(c.reader_hash.as_deref())
        .bind(AuditId::new().0)
        .bind(actor)
        .bind(audit_action::SUBMIT)
        .bind(c.status.as_str())
        .bind(event.map(|event| event.as_str()))
        .bind(event.map(|event| format!(",{event},")))
        .bind(c.created_at - Duration::hours(1))
        .bind(ANSWERS_PER_HOUR)
        .execute(&mut *conn)
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::AlreadyExists("idempotency key")
            } else {
                err.into()
            }
        })?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::ArticleClosed);
    }
    Ok(())
}
