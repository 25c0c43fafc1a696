//! Storage: the traits the domain talks to (one per concern, [`Store`] their
//! union), written once in `sql/` for both backends, with what really differs
//! in `sqlite.rs` and `postgres.rs`, and the caches of the public's reads in
//! `cache/`.
//!
//! Every query lives here, and no rule does: what a change writes comes from
//! the layer above. A write that the service acknowledges is committed before
//! the method returns; a moderation change and its audit row are one
//! transaction.

mod cache;
mod postgres;
mod rekey;
mod rows;
mod sql;
mod sqlite;

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

pub use postgres::PostgresStore;
pub use rekey::RekeyReport;
pub use sql::SqlStore;
pub use sqlite::SqliteStore;

use uuid::Uuid;

use crate::{
    domain::{
        Access, Action, ArticleClock, ArticleClosing, ArticleKey, AttemptOutcome, AuditRecord,
        AuthorMail, BlockEntry, BlockOutcome, BlockSubject, Blocked, ClosedArticle, CommentStatus,
        Cutoffs, DecisionOutcome, Delivery, EXPIRED_NOTE, EditOutcome, Mail, MailOutcome,
        MailPages, NewBlock, NewReport, Notice, QueueEvent, ReplyWatch, ReportOutcome,
        ReportedComment, SPAM_DELETED_NOTE, SYSTEM_ACTOR, Scope, SweepReport, Webhook,
        audit_action,
    },
    ids::{AuditId, CommentId, IdPrefix, SiteId, TokenId},
    privacy::{AuthorHash, KeptText, PrivacyError, Rekeying, Vault},
    spam::{Label, LearnedStats, Policy, Reason, RecentReply, Verdict},
};

/// A storage failure, in the terms the service answers with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness rule was broken (a name or key that exists already).
    #[error("already exists: {0}")]
    AlreadyExists(&'static str),
    /// A reply was not stored because its article is closed: checked in the transaction that
    /// would have stored it, so no reply lands after a close has been answered.
    #[error("the article is closed")]
    ArticleClosed,
    /// The stored data is not what this version understands.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A newer replyguard migrated the database: running this one on it
    /// could misread or damage what the newer one wrote.
    #[error(
        "the database schema is newer than this replyguard (migration {0}); upgrade replyguard"
    )]
    SchemaTooNew(i64),
    /// Migrating failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL or settings cannot be used.
    #[error("{0}")]
    Config(String),
    /// The transaction that held a group of replies did not commit; none
    /// of them is stored.
    #[error("group commit failed: {0}")]
    GroupFailed(String),
    /// The disk holding the database is full: nothing was written, reads go on, and writes
    /// succeed again once space is freed.
    #[error("the database is out of disk space: {0}")]
    DiskFull(String),
    /// A server marked itself as serving the database ([`Keys::mark_serving`]), or another
    /// rotation holds it.
    #[error(
        "a replica is serving this database, or another rotation is running: stop every replica \
         first"
    )]
    Serving,
    /// The data is not stored under the key given to re-key it.
    #[error("the secret key given is not the one this database was written with")]
    WrongKey,
    /// Anything else the database said.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    /// The SQLite database, or its `-wal` or `-shm`, is open to group or others.
    #[error(transparent)]
    Exposed(#[from] crate::secret_files::CheckError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err),
            sqlx::Error::Database(ref db) if is_disk_full(db.as_ref()) => {
                StoreError::DiskFull(db.message().to_owned())
            }
            sqlx::Error::Database(ref db) if postgres::is_retryable(db.as_ref()) => {
                StoreError::Unavailable(err)
            }
            other => StoreError::Other(other),
        }
    }
}

/// Whether the database refused a write for want of disk space: SQLite's `SQLITE_FULL`,
/// PostgreSQL's `disk_full`.
fn is_disk_full(err: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(err.code().as_deref(), Some("13" | "53100"))
}

/// A failed migration run, in the terms the service answers with: a
/// database that cannot be reached is `Unavailable`, like any other call.
fn migration_error(err: sqlx::migrate::MigrateError) -> StoreError {
    match err {
        sqlx::migrate::MigrateError::Execute(err) => err.into(),
        // Applied but unknown to this build: migrations are never removed,
        // so a newer build added it.
        sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::SchemaTooNew(version),
        other => StoreError::Migrate(other),
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The current time at the precision every backend keeps (PostgreSQL's
/// `timestamptz` holds microseconds), so that what the service answers with
/// equals what a later read returns.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// What [`Keys::mark_serving`] holds: a connection of its own, which ends the mark when it
/// is released, or, if the process ends first, when the database sees the connection close.
pub struct ServingMark {
    held: Box<dyn HeldMark>,
}

/// The backend's part of a [`ServingMark`].
#[async_trait]
trait HeldMark: Send + Sync {
    async fn release(self: Box<Self>);
}

impl ServingMark {
    /// Ends the mark before returning, so that a rotation started next finds it gone.
    pub async fn release(self) {
        self.held.release().await;
    }
}

/// One article host.
#[derive(Clone, Debug)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    pub policy: Policy,
    pub created_at: DateTime<Utc>,
}

/// A change to a site's policy, made to the policy as stored (see [`Sites::update_policy`]):
/// the policy to store instead and the note for its audit row, or `None` to leave it.
pub type PolicyEdit<'a> = dyn FnMut(&Policy) -> Option<(Policy, String)> + Send + 'a;

/// What a credential lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An article host's backend: the `Comments` service of one site.
    Host,
    /// A moderator: the `Moderation` service of the token's sites.
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(word: &str) -> Option<Role> {
        match word {
            "host" => Some(Role::Host),
            "moderator" => Some(Role::Moderator),
            _ => None,
        }
    }
}

/// A credential to record; only its digest is kept.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub id: TokenId,
    pub role: Role,
    pub prefix: String,
    pub digest: [u8; 32],
    pub sites: Vec<SiteId>,
    /// What a moderator token may do; a site key has none.
    pub scopes: Vec<Scope>,
}

/// Who issues and revokes credentials, in the audit log: the operator, with
/// direct access to the database.
pub const OPERATOR_ACTOR: &str = "operator";

/// How long a server may accept a credential it has read without reading it
/// again: a revocation is in force on every server this long after it is
/// committed, which [`revoke_tokens_everywhere`] waits for.
pub const CREDENTIAL_RECHECK: Duration = Duration::from_millis(250);

/// Revokes as [`Sites::revoke_tokens`] does, then waits until no running
/// server, in this process or another, can still accept the tokens.
pub async fn revoke_tokens_everywhere(store: &dyn Store, prefix: &str) -> StoreResult<u64> {
    let revoked = store.revoke_tokens(prefix).await?;
    if revoked > 0 {
        tokio::time::sleep(CREDENTIAL_RECHECK).await;
    }
    Ok(revoked)
}

/// A page of an approved thread, shared between the thread cache and every
/// call that sends it.
#[derive(Debug, Default)]
pub struct ThreadPage {
    pub comments: Vec<StoredComment>,
    /// The page as the API sends it, made by the first call that sends it
    /// and kept as long as the page is: the store never reads it.
    pub wire: OnceLock<bytes::Bytes>,
}

impl ThreadPage {
    pub fn new(comments: Vec<StoredComment>) -> Arc<ThreadPage> {
        Arc::new(ThreadPage {
            comments,
            wire: OnceLock::new(),
        })
    }
}

/// A live credential, found by its digest.
#[derive(Clone, Debug)]
pub struct Credential {
    pub id: TokenId,
    pub role: Role,
    pub prefix: String,
    pub sites: Vec<SiteId>,
    pub scopes: Vec<Scope>,
}

impl Credential {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Keeps one reply's raw text as this release does, given its site and id.
pub type TextKeeper<'a> = dyn Fn(SiteId, CommentId, &str) -> KeptText + Send + Sync + 'a;

/// Picks, among a site's pending replies, those a block rejects.
pub type ReplyFilter<'a> = dyn Fn(&StoredComment) -> bool + Send + Sync + 'a;

/// A comment as stored, with everything moderators may see.
#[derive(Clone, Debug)]
pub struct StoredComment {
    pub id: CommentId,
    pub site: SiteId,
    pub article: String,
    pub parent: Option<CommentId>,
    pub root: CommentId,
    pub path: String,
    pub depth: u32,
    pub status: CommentStatus,
    pub author_name: String,
    pub author_website: Option<String>,
    pub email_sealed: Vec<u8>,
    pub author_hash: Vec<u8>,
    pub avatar_seed: String,
    /// The text as it may be kept in the clear: the raw text, or, when that holds contact
    /// details, the public text, with the raw one in `body_sealed`. Empty in public listings.
    pub body: String,
    /// The raw text sealed with [`crate::privacy::Vault::seal_body`], when it holds contact
    /// details; see [`StoredComment::raw_body`].
    pub body_sealed: Option<Vec<u8>>,
    pub body_public: String,
    pub body_html: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    pub score: f64,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    /// What is kept of the host's idempotency key: its keyed hash
    /// ([`crate::privacy::Vault::idempotency_tag`]); earlier releases kept it as sent. Dropped
    /// with the client details by the retention sweep.
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// SimHash of the text, for near-duplicates.
    pub fingerprint: Option<u64>,
    /// The classifier's features, so that a decision teaches what was seen.
    pub features: Vec<u64>,
    /// The keyed hash of the host's id of the signed-in reader who sent it
    /// ([`crate::privacy::Vault::reader_hash`]), when the host vouched for one.
    pub reader_hash: Option<Vec<u8>>,
}

impl StoredComment {
    /// The text as the reader wrote it, for moderators: opened from `body_sealed` when it holds
    /// contact details.
    pub fn raw_body(&self, vault: &Vault) -> Result<Cow<'_, str>, PrivacyError> {
        match &self.body_sealed {
            Some(sealed) => Ok(Cow::Owned(vault.open_body(self.site, self.id, sealed)?)),
            None => Ok(Cow::Borrowed(&self.body)),
        }
    }
}

/// An author's edit of a comment, as [`Comments::edit_comment`] stores it: what
/// [`crate::submission`] made of the new text.
#[derive(Clone, Copy, Debug)]
pub struct CommentEdit<'a> {
    /// The comment as the edit read it.
    pub before: &'a StoredComment,
    /// The same comment with its new text, fingerprint, features, assessment, status and
    /// `updated_at`.
    pub after: &'a StoredComment,
    /// Who sent it: the site key's prefix.
    pub actor: &'a str,
    /// The audit row's note ([`crate::domain::edit_note`]).
    pub note: &'a str,
}

/// The new reply that [`Facts::facts`] is asked about.
#[derive(Clone, Copy, Debug)]
pub struct FactsAbout<'a> {
    pub author_hash: &'a AuthorHash,
    pub article: &'a ArticleKey,
    pub ip: Option<&'a str>,
    /// Its text as the public sees it, contact details masked (the raw text of a reply that
    /// holds them is sealed): what a repeat is compared by.
    pub body_public: &'a str,
}

/// What storage knows about a new reply's author, address and site before
/// it is assessed; the pipeline turns it into [`crate::spam::Facts`].
#[derive(Clone, Debug, Default)]
pub struct StoredFacts {
    pub author_approved: u32,
    pub author_spam: u32,
    pub author_rejected: u32,
    pub author_last: Option<DateTime<Utc>>,
    pub ip_spam: u32,
    pub ip_last: Option<DateTime<Utc>>,
    /// The site's most recent replies, newest first.
    pub recent: Vec<RecentReply>,
    /// The site's learned statistics for the asked-for features.
    pub learned: LearnedStats,
    /// An earlier reply of this author on this article with the same public text.
    pub duplicate_of: Option<CommentId>,
    /// Whether the site's blocklist has any entry: when not, nothing is looked up in it.
    pub any_blocks: bool,
    /// Whether the author confirmed their address for mail (`ConfirmEmail`).
    pub author_confirmed: bool,
}

/// How many replies of one author (and reader, if the host vouched for one) stand at one
/// status ([`Comments::author_records`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorTally {
    pub author_hash: Vec<u8>,
    pub reader_hash: Option<Vec<u8>>,
    pub status: CommentStatus,
    pub count: u32,
}

/// A signed-in reader's replies on a site by status ([`Facts::reader_record`]): the record a
/// reply's trust rests on when the host vouches for its reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderRecord {
    pub approved: u32,
    pub spam: u32,
    pub rejected: u32,
}

/// A lesson for the classifier: what a reply was, and how much that counts.
pub type Lesson = (Label, f32);

/// A change to the learned statistics: a lesson (a weight below zero takes one back), and
/// whether it changes the deployment's shared counts too (`--shared-learning`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Teaching {
    pub lesson: Lesson,
    pub shared: bool,
}

/// A comment as a decision finds it, read in the decision's transaction.
#[derive(Clone, Copy, Debug)]
pub struct Deciding {
    pub site: SiteId,
    pub status: CommentStatus,
    /// What the comment taught the classifier last, if anything.
    pub lesson: Option<Lesson>,
    /// Whether that lesson also taught the deployment's shared counts.
    pub lesson_shared: bool,
}

/// What one decision changes, in its transaction.
#[derive(Clone, Debug)]
pub struct DecisionChange<'a> {
    /// The comment's new status; `None` deletes it.
    pub to: Option<CommentStatus>,
    /// The lesson to keep with the comment, replacing the one it kept; `None` keeps that one.
    pub lesson: Option<Lesson>,
    /// Whether `lesson` also teaches the deployment's shared counts (kept with it).
    pub lesson_shared: bool,
    /// What to add to the site's learned statistics, and to the shared ones where it says so.
    pub taught: Vec<Teaching>,
    pub audit: NewAuditRow<'a>,
}

/// Given a comment as a decision finds it, what the decision changes, or the outcome it is
/// refused with: [`crate::moderation`]'s rules, applied by [`Moderating::decide`].
pub type Judge<'a> =
    dyn Fn(&Deciding) -> Result<DecisionChange<'a>, DecisionOutcome> + Send + Sync + 'a;

/// How many recent replies the near-duplicate rule compares against.
pub const RECENT_REPLIES: u32 = 200;

/// Oldest or newest threads first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThreadOrder {
    OldestFirst,
    NewestFirst,
}

/// Where a page of a thread listing starts: after this comment's path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThreadCursor {
    pub root: CommentId,
    pub path: String,
}

/// News for a cache of what articles' public listings show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListingEvent {
    /// Some process changed the approved comments of one article, or of
    /// any article of the site when `article` is `None`.
    Changed {
        site: SiteId,
        article: Option<String>,
    },
    /// The store stopped hearing other processes' changes: until
    /// `Resumed`, changes may go unheard.
    Interrupted,
    /// The store hears every change again; some made meanwhile went unheard.
    Resumed,
}

/// A subscription to [`ListingEvent`]s, and whether the store heard every
/// change when it was made (no `Interrupted` without its `Resumed`).
pub struct ListingEvents {
    pub events: tokio::sync::broadcast::Receiver<ListingEvent>,
    pub listening: bool,
}

/// What the rest of the service needs from a database: every concern's part.
pub trait Store:
    Sites + Comments + Facts + Moderating + Keys + Webhooks + Mailing + Importing + 'static
{
}

impl<T> Store for T where
    T: Sites + Comments + Facts + Moderating + Keys + Webhooks + Mailing + Importing + 'static
{
}

/// Sites and the credentials that reach them.
#[async_trait]
pub trait Sites: Send + Sync {
    /// Creates a site; `AlreadyExists` if the name is taken.
    async fn create_site(&self, name: &str, policy: &Policy) -> StoreResult<Site>;

    async fn site_by_name(&self, name: &str) -> StoreResult<Option<Site>>;

    async fn site_by_id(&self, id: SiteId) -> StoreResult<Option<Site>>;

    /// Changes a site's policy: `edit` is given the policy as stored and returns the one to
    /// store with the note for its `policy` audit row, or `None` to leave it. The read, the
    /// write and the audit row are one transaction that holds the site's row, so changes
    /// made at once by several moderators (or replicas) each apply to the one before and
    /// none is lost. Returns the site as it is now.
    async fn update_policy(
        &self,
        site: SiteId,
        actor: &str,
        edit: &mut PolicyEdit<'_>,
    ) -> StoreResult<Site>;

    /// Stores a new credential with its sites and scopes, and a
    /// `token_issue` audit row on each of its sites.
    async fn insert_token(&self, token: &NewToken) -> StoreResult<()>;

    /// Revokes every live token whose prefix starts with `prefix`, with a
    /// `token_revoke` audit row on each of their sites; returns how many.
    /// Servers may accept them for [`CREDENTIAL_RECHECK`] more; see
    /// [`revoke_tokens_everywhere`].
    async fn revoke_tokens(&self, prefix: &str) -> StoreResult<u64>;

    /// The live (not revoked) credential with this digest.
    async fn credential(&self, digest: &[u8; 32]) -> StoreResult<Option<Credential>>;

    /// Every site, by name.
    async fn sites(&self) -> StoreResult<Vec<Site>>;

    /// Every live (not revoked) credential with when it was issued and last used, oldest
    /// first: for the operator's `token list`, which shows prefixes, never tokens.
    async fn live_tokens(&self) -> StoreResult<Vec<LiveToken>>;

    /// Records that `token` was used at `now`, unless a use within [`TOKEN_USE_PRECISION`]
    /// before was recorded already: one write a minute at most, however busy the token.
    async fn token_used(&self, token: TokenId, now: DateTime<Utc>) -> StoreResult<()>;
}

/// How precisely a token's last use is kept.
pub const TOKEN_USE_PRECISION: std::time::Duration = std::time::Duration::from_secs(60);

/// A live credential as the operator's `token list` shows it.
#[derive(Clone, Debug)]
pub struct LiveToken {
    pub credential: Credential,
    pub issued_at: DateTime<Utc>,
    /// To within [`TOKEN_USE_PRECISION`]; `None` if it was never used.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Comments: storing them, reading them back, and hearing of new ones.
#[async_trait]
pub trait Comments: Send + Sync {
    /// Stores a new comment and its `submit` audit row. `AlreadyExists` when
    /// its idempotency key was used on the site already.
    async fn insert_comment(&self, comment: &StoredComment, actor: &str) -> StoreResult<()>;

    /// Stores many comments at once, each with a `submit` audit row by
    /// `actor` noted [`SEEDED_NOTE`], in one transaction: `replyguard seed`
    /// filling a site with generated replies. Publishes no events. The
    /// comments must be new, placed in their threads as the submit pipeline
    /// places them, and without idempotency keys.
    async fn seed_comments(&self, comments: &[StoredComment], actor: &str) -> StoreResult<()>;

    async fn comment(&self, id: CommentId) -> StoreResult<Option<StoredComment>>;

    async fn comment_by_idempotency_key(
        &self,
        site: SiteId,
        key: &str,
    ) -> StoreResult<Option<StoredComment>>;

    /// One page of the approved comments of an article, a parent before its replies.
    async fn thread_page(
        &self,
        site: SiteId,
        article: &ArticleKey,
        order: ThreadOrder,
        after: Option<&ThreadCursor>,
        limit: u32,
    ) -> StoreResult<Arc<ThreadPage>>;

    /// One page of an article as one author sees it: its approved comments and
    /// that author's pending replies, each in its place, a parent before its
    /// replies. Never cached: it is one reader's.
    async fn own_thread_page(
        &self,
        site: SiteId,
        article: &ArticleKey,
        order: ThreadOrder,
        after: Option<&ThreadCursor>,
        limit: u32,
        author_hash: &AuthorHash,
    ) -> StoreResult<Vec<StoredComment>>;

    /// Approved comments per article; absent articles are left out.
    async fn count_approved(
        &self,
        site: SiteId,
        articles: &[ArticleKey],
    ) -> StoreResult<HashMap<String, u64>>;

    /// One page of a queue, oldest first.
    async fn queue_page(
        &self,
        site: SiteId,
        status: CommentStatus,
        article: Option<&ArticleKey>,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<StoredComment>>;

    /// Stores an author's edit of a comment (its new text, assessment and status, with an
    /// `edit` audit row noted `edit.note`), in one transaction that holds its row, unless the
    /// comment's status or last change is no longer `edit.before`'s (`Changed`, nothing
    /// stored). A reply the edit holds or calls spam queues its moderators' notices and its
    /// webhook event; the listings of its article are dropped here and on every replica when
    /// the edit touches an approved reply.
    async fn edit_comment(&self, edit: &CommentEdit<'_>) -> StoreResult<EditOutcome>;

    /// How many replies each author (and each reader the host vouched for) had on a site before
    /// `before`, by status: where a dry run's authors' records start.
    async fn author_records(
        &self,
        site: SiteId,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<AuthorTally>>;

    /// Every comment of one author on a site, oldest first.
    async fn comments_by_author(
        &self,
        site: SiteId,
        author_hash: &AuthorHash,
    ) -> StoreResult<Vec<StoredComment>>;

    /// The ids of a site's comments that start with `prefix`, in order, at most `limit`.
    async fn comment_ids_starting(
        &self,
        site: SiteId,
        prefix: IdPrefix,
        limit: u32,
    ) -> StoreResult<Vec<CommentId>>;

    /// A comment's audit history, oldest first.
    async fn history(&self, comment: CommentId) -> StoreResult<Vec<AuditRecord>>;

    /// One page of a site's audit log, newest first, continuing with the
    /// entries older than `before`; only one comment's when `comment` is set, only one
    /// action's when `action` is.
    async fn audit_page(
        &self,
        site: SiteId,
        comment: Option<CommentId>,
        action: Option<&str>,
        before: Option<AuditId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// New comments as they are committed, by this process or (on a shared
    /// database) any other replica.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<QueueEvent>;

    /// What other processes change in articles' public listings, for a
    /// cache of them; `None` where no other process writes (SQLite: one
    /// process owns the file).
    fn listing_events(&self) -> Option<ListingEvents> {
        None
    }
}

/// What the submit pipeline asks before it stores a reply.
#[async_trait]
pub trait Facts: Send + Sync {
    /// Everything stored that a new reply's assessment reads, in one statement: the author's
    /// and the address's history on the site, its recent replies by other authors or under
    /// other articles, its learned statistics for `features`, an earlier reply this one
    /// repeats, and whether the site blocks anything at all.
    async fn facts(
        &self,
        site: SiteId,
        reply: &FactsAbout<'_>,
        features: &[u64],
    ) -> StoreResult<StoredFacts>;

    /// A signed-in reader's record on a site: their replies by status, found by the keyed hash of
    /// the host's id for them ([`crate::privacy::Vault::reader_hash`]).
    async fn reader_record(&self, site: SiteId, reader_hash: &[u8]) -> StoreResult<ReaderRecord>;

    /// How many replies from client address `ip` on a site, received at `since` or later, are
    /// spam now: what an automatic block counts.
    async fn address_spam_since(
        &self,
        site: SiteId,
        ip: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<u32>;

    /// What the deployment's other sites taught, for `features` (`--shared-learning`): the
    /// shared counts less the part `site` gave to them, never below zero.
    async fn shared_learned(&self, site: SiteId, features: &[u64]) -> StoreResult<LearnedStats>;

    /// Records a form token's nonce; false when it was used before.
    async fn use_form_nonce(&self, site: SiteId, nonce: &[u8; 16]) -> StoreResult<bool>;

    /// The entries of a site's blocklist that match `subject` ([`Blocked::matches`]), in the
    /// order of [`Moderating::blocklist`]: the few a reply's author, address and domains can meet, looked up one by one, so
    /// a long blocklist costs a reply nothing more.
    async fn blocks_matching(
        &self,
        site: SiteId,
        subject: &BlockSubject<'_>,
    ) -> StoreResult<Vec<BlockEntry>>;

    /// Counts a reply that `blocked` of `site` caught, at `at`.
    async fn record_block_hit(
        &self,
        site: SiteId,
        blocked: &Blocked,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// What decides when `article` of `site` closes to new replies: a moderator's close, the
    /// times kept of it, and the site's `close-after-days` (see [`ArticleClock::is_closed`]).
    async fn article_clock(&self, site: SiteId, article: &ArticleKey) -> StoreResult<ArticleClock>;

    /// Keeps what the host said of an article's publication and when its first reply came in,
    /// each where given: a publication time replaces the one kept, a first reply is kept only
    /// if none is. The article's listings are dropped here and on every replica, which hold its
    /// clock with them.
    async fn record_article_dates(
        &self,
        site: SiteId,
        article: &ArticleKey,
        published_at: Option<DateTime<Utc>>,
        first_reply_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
}

/// The transactions of moderation: each change with its audit row, as [`crate::moderation`] decides it.
#[async_trait]
pub trait Moderating: Send + Sync {
    /// Applies one decision to a comment of one of `sites`, in one transaction that holds its
    /// row: reads what [`Deciding`] names, asks `judge` what to change, and stores that (status,
    /// lesson, learned statistics, audit row). `NotFound` when no such comment is on those
    /// sites; what `judge` refuses is answered as it says, with nothing changed.
    async fn decide(
        &self,
        sites: &[SiteId],
        comment: CommentId,
        judge: &Judge<'_>,
    ) -> StoreResult<DecisionOutcome>;

    /// Records a read of personal data. The caller hands the data out only
    /// once this has returned.
    async fn record_access(&self, access: &Access<'_>) -> StoreResult<()>;

    /// Anonymises every comment of one author on a site (see
    /// [`Erasing::erase`]) with one `erase_author` audit row, in one
    /// transaction; returns how many comments it changed. Nothing of the
    /// erased values may stay readable in the database's files.
    async fn erase_author(&self, erasure: &dyn Erasing) -> StoreResult<u64>;

    /// Adds an entry to a site's blocklist (nothing when it is listed
    /// already) with a `block` audit row, and, given a filter, rejects the
    /// site's pending replies it picks with a `reject` row each: all in one
    /// transaction.
    async fn block(
        &self,
        block: &NewBlock<'_>,
        reject_pending: Option<&ReplyFilter<'_>>,
    ) -> StoreResult<BlockOutcome>;

    /// A page of a site's blocklist, by kind and then value: the entries after `after`, at
    /// most `limit`.
    async fn blocklist(
        &self,
        site: SiteId,
        after: Option<&Blocked>,
        limit: u32,
    ) -> StoreResult<Vec<BlockEntry>>;

    /// Takes `block.blocked` off the site's blocklist, with an `unblock` audit row noted
    /// [`NewBlock::audit_note`], in one transaction; false (and no row) when it was not listed.
    async fn unblock(&self, block: &NewBlock<'_>) -> StoreResult<bool>;

    /// Closes an article to new replies (now or from `closing.at` on) or opens it again, with a
    /// `close_article` or `reopen_article` audit row noted [`ArticleClosing::audit_note`], in
    /// one transaction; false (and no row) when it already was so. A close that has not taken
    /// effect yet is moved to the new time.
    async fn close_article(&self, closing: &ArticleClosing<'_>) -> StoreResult<bool>;

    /// Stores a reader's report of a comment of `report.site` that readers can see (approved
    /// or pending), once per reporter, with a `report` audit row; when the comment is approved
    /// and has `report.hold_at` reports or more, it goes back to pending with a `report_hold`
    /// row by `system`: all in one transaction.
    async fn report_comment(&self, report: &NewReport<'_>) -> StoreResult<ReportOutcome>;

    /// A page of a site's reported comments, by id after `after`, with their reports counted.
    async fn reported_comments(
        &self,
        site: SiteId,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<ReportedComment>>;

    /// A page of a site's closed articles, by article key, after `after`.
    async fn closed_articles(
        &self,
        site: SiteId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ClosedArticle>>;

    /// Drops the IP address, user agent, referrer and idempotency key of every reply created
    /// before `cutoffs.client_details_before`; when `cutoffs.expire_pending_before` is set,
    /// rejects every pending reply created before it with an `expire` audit row by `system`
    /// at `now`; when `cutoffs.delete_spam_before` is set, deletes every spam reply whose
    /// status last changed before it, with a `delete` audit row by `system`; forgets the form
    /// nonces used before `cutoffs.form_nonces_before`.
    async fn sweep(&self, now: DateTime<Utc>, cutoffs: &Cutoffs) -> StoreResult<SweepReport>;
}

/// Webhook endpoints, and the outbox of deliveries to them. Deliveries are queued by the
/// changes themselves, in their transactions (a reply stored or decided, an erasure, an article
/// closed or opened); this is the rest.
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// Stores a new endpoint, with a `webhook_add` audit row.
    async fn add_webhook(&self, webhook: &Webhook) -> StoreResult<()>;

    /// The site's endpoints, oldest first.
    async fn webhooks(&self, site: SiteId) -> StoreResult<Vec<Webhook>>;

    /// Removes an endpoint of the site and its deliveries, with a `webhook_remove` audit row;
    /// false when the site has no such endpoint.
    async fn remove_webhook(&self, site: SiteId, id: Uuid, actor: &str) -> StoreResult<bool>;

    /// The site's deliveries (or one endpoint's), newest first, after `after` (a delivery id
    /// from the previous page); only the failed ones when asked.
    async fn deliveries(
        &self,
        site: SiteId,
        webhook: Option<Uuid>,
        failed_only: bool,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;

    /// Makes a delivery of the site pending and due now, whatever became of it, with a
    /// `webhook_redeliver` audit row; `None` when the site has no such delivery. An endpoint
    /// that was disabled is enabled again.
    async fn redeliver(&self, site: SiteId, id: Uuid, actor: &str)
    -> StoreResult<Option<Delivery>>;

    /// Takes up to `limit` deliveries due at `now`, each with its endpoint, and moves their next
    /// attempt to `lease_until`: another worker (another replica) leaves them alone meanwhile,
    /// and takes them again if this one never records an outcome.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Delivery, Webhook)>>;

    /// Records what each attempt of a round came to, in one transaction. `Gone` disables the
    /// endpoint and fails everything still pending for it.
    async fn record_attempts(&self, attempts: &[(Delivery, AttemptOutcome)]) -> StoreResult<()>;
}

/// Mail: the addresses told of a site's events, and the outbox of mails that the changes fill
/// (held replies queue their notices in the transaction that stores them) and the mail worker
/// empties.
#[async_trait]
pub trait Mailing: Send + Sync {
    /// Stores a new notice, with a `notice_add` audit row; `AlreadyExists` when the site
    /// mails that address already.
    async fn add_notice(&self, notice: &Notice) -> StoreResult<()>;

    /// The site's notices, oldest first.
    async fn notices(&self, site: SiteId) -> StoreResult<Vec<Notice>>;

    /// Removes a notice of the site and the mails still to send for it, with a
    /// `notice_remove` audit row; false when the site has no such notice.
    async fn remove_notice(&self, site: SiteId, id: Uuid, actor: &str) -> StoreResult<bool>;

    /// Takes up to `limit` mails due at `now` and moves their next attempt to `lease_until`,
    /// as [`Webhooks::claim_deliveries`] does. A digest's mails share one due time, so they
    /// are taken together.
    async fn claim_mails(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Mail>>;

    /// Records what one attempt at sending `mails` (one message) came to.
    async fn record_mail(&self, mails: &[Uuid], outcome: &MailOutcome) -> StoreResult<()>;

    /// Sets the site's mail pages, with a `mail_pages` audit row.
    async fn set_mail_pages(&self, site: SiteId, pages: &MailPages, actor: &str)
    -> StoreResult<()>;

    /// The site's mail pages, if it has them.
    async fn mail_pages(&self, site: SiteId) -> StoreResult<Option<MailPages>>;

    /// Keeps a reader's wish to be mailed answers to a reply. A reader new to the site (or who
    /// unsubscribed) waits for confirmation, with `watch`'s token; a confirmation mail is
    /// queued for a reader who waits, at most one a day. True when one was queued.
    async fn watch_replies(&self, watch: &ReplyWatch) -> StoreResult<bool>;

    /// Confirms the reader whose links carry the token with this digest; false when the site
    /// sent no such token.
    async fn confirm_reader(&self, site: SiteId, token_digest: &[u8]) -> StoreResult<bool>;

    /// Stops every answer mail to the reader whose links carry the token with this digest,
    /// dropping those not yet sent; false when the site sent no such token.
    async fn unsubscribe_reader(&self, site: SiteId, token_digest: &[u8]) -> StoreResult<bool>;

    /// What is kept for mail about the address with this keyed hash.
    async fn author_mail(&self, site: SiteId, author_hash: &[u8]) -> StoreResult<AuthorMail>;

    /// A reader's link token, sealed, and whether they confirmed their address.
    async fn reader(
        &self,
        site: SiteId,
        author_hash: &[u8],
    ) -> StoreResult<Option<(Vec<u8>, bool)>>;
}

/// The deployment's secret key, and what is stored under it.
#[async_trait]
pub trait Keys: Send + Sync {
    /// The key check stored with the data (`Vault::key_check`), if one is.
    async fn key_check(&self) -> StoreResult<Option<Vec<u8>>>;

    /// Stores `check` as the key check unless one is stored already, and returns the one that
    /// is stored: `check`, or the one another replica stored first.
    async fn claim_key_check(&self, check: &[u8]) -> StoreResult<Vec<u8>>;

    /// The site and sealed email of the newest comment that has one (not erased): to try a key
    /// on data stored before key checks.
    async fn newest_sealed_email(&self) -> StoreResult<Option<(SiteId, Vec<u8>)>>;

    /// Moves everything stored under the secret key to the new key of `rekeying`, in one
    /// transaction, for `replyguard key rotate` with every replica stopped: each comment's email
    /// and sealed text are sealed again and its author hash and avatar seed keyed again (erased
    /// comments are left as they are); blocked authors follow their comments' new hashes, and
    /// those no comment maps are dropped; idempotency keys are forgotten; the key check becomes
    /// the new key's; each site gets a `key_rotate` audit row by `operator`. Changes nothing
    /// when the stored key check is not the old key's (`WrongKey`) or a comment does not open
    /// under it (`Corrupt`).
    async fn rekey(&self, rekeying: &Rekeying) -> StoreResult<RekeyReport>;

    /// Marks this process as serving the database for as long as the mark lives, so that
    /// [`Keys::rekey`] refuses to run beside it (`Serving`): a replica left serving under the
    /// old key would go on sealing under it. Waits while a rotation runs. `None` where the
    /// server marks it otherwise: a SQLite file is locked by the process that serves it
    /// (`server::SqliteLock`).
    async fn mark_serving(&self) -> StoreResult<Option<ServingMark>> {
        Ok(None)
    }

    /// Stores again, as `keep` keeps them, the texts an earlier release kept otherwise: those
    /// with contact details in the clear (the partial index `comments_unsealed`: stored before
    /// migration 0005, or by an older server beside a newer one) and those migration 0005 listed
    /// in `texts_to_check` (an `@` in the text, which the older masking may have missed). Tells
    /// every replica of the sites whose public texts changed; returns how many it stored.
    async fn keep_texts_again(&self, keep: &TextKeeper<'_>) -> StoreResult<u64>;
}

/// Where an imported comment is: enough to place its replies under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedPlace {
    pub id: CommentId,
    pub root: CommentId,
    pub path: String,
    pub depth: u32,
    pub article: String,
}

/// One comment to import: as stored, with its id in the export it came from and what it
/// teaches the site's classifier, if anything.
#[derive(Clone, Debug)]
pub struct ImportedComment {
    pub source_id: String,
    pub comment: StoredComment,
    pub lesson: Option<Lesson>,
}

/// Moving a site in and out: comments brought in from another comment system
/// (`replyguard import`), each remembered by its source (the export's format) and its id there,
/// and a site's comments read out whole (`replyguard export`).
#[async_trait]
pub trait Importing: Send + Sync {
    /// A page of every comment of `site`, whatever its status, oldest first (by id): those
    /// after `after`, at most `limit`.
    async fn site_comments(
        &self,
        site: SiteId,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<StoredComment>>;

    /// Of `ids`, those of `source` imported on `site` already, each with where its comment is
    /// (`None` when the comment was deleted since).
    async fn imported(
        &self,
        site: SiteId,
        source: &str,
        ids: &[String],
    ) -> StoreResult<HashMap<String, Option<ImportedPlace>>>;

    /// Stores `comments` of `site` in one transaction: each with its `submit` audit row by
    /// `actor` noted `note` at the comment's own time, its source id, and its lesson, which is
    /// added to the site's learned statistics. `AlreadyExists` (and nothing stored) when one of
    /// them was imported already.
    async fn import_comments(
        &self,
        site: SiteId,
        source: &str,
        comments: &[ImportedComment],
        actor: &str,
        note: &str,
    ) -> StoreResult<()>;
}

/// The note of the audit row of a comment that `replyguard seed` made, so
/// that generated replies are never taken for readers' ones.
pub const SEEDED_NOTE: &str = "seeded";

/// Rows a sweep changes per statement or transaction, so that a long
/// backlog never holds the database for long.
const SWEEP_BATCH: i64 = 500;

/// Runs a sweep's `batch` (one statement of at most [`SWEEP_BATCH`] rows) again until one
/// changes fewer; returns how many rows they changed in all.
async fn in_batches<F, Fut>(mut batch: F) -> StoreResult<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut changed = 0;
    loop {
        let rows = batch().await?;
        changed += rows;
        if rows < SWEEP_BATCH.unsigned_abs() {
            return Ok(changed);
        }
    }
}

/// How many events a slow watcher may fall behind before it skips some.
pub const EVENT_BUFFER: usize = 1024;

/// How a store reaches its database; SQLite's pools are fixed and ignore it.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The most connections one process keeps to PostgreSQL.
    pub max_connections: u32,
    /// How long a call waits for a connection before it fails as
    /// `Unavailable`: short, so that while the database is down calls fail
    /// fast instead of piling up.
    pub acquire_timeout: Duration,
    /// Keep the public's reads and the credentials read in memory, with about this many bytes
    /// of listings (0 keeps none of them); `None` reads everything from the database.
    pub caches: Option<usize>,
}

/// Connections per process to PostgreSQL when not told otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 10;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: DEFAULT_POOL_SIZE,
            acquire_timeout: Duration::from_secs(5),
            caches: None,
        }
    }
}

/// Opens the store a database URL names, creating and migrating it as needed.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    open_with(url, &StoreOptions::default()).await
}

/// [`open`] with explicit connection settings.
pub async fn open_with(url: &str, options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(cached(SqliteStore::open(url).await?, options))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(cached(PostgresStore::open(url, options).await?, options))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL (expected sqlite:// or postgres://): {url}"
        )))
    }
}

/// `store` with the caches `options` ask for.
fn cached<DB>(store: SqlStore<DB>, options: &StoreOptions) -> Arc<dyn Store>
where
    DB: sql::Backend,
    SqlStore<DB>: Store,
{
    match options.caches {
        Some(max_bytes) => Arc::new(store.with_caches(max_bytes)),
        None => Arc::new(store),
    }
}

/// An erasure as the store applies it, in one transaction that holds the author's comments:
/// [`crate::moderation::Erasure`] says what replaces each.
pub trait Erasing: Send + Sync {
    fn site(&self) -> SiteId;
    /// Whose comments: the keyed hash of the author's normalised email.
    fn author_hash(&self) -> &AuthorHash;
    /// Who asked: the token's prefix.
    fn actor(&self) -> &str;
    /// What replaces one comment's values, given its public text, its HTML and its reasons.
    fn erase(&self, body_public: &str, body_html: &str, reasons: &[Reason]) -> ErasedComment;
    /// The audit row's note, given how many comments were erased.
    fn note(&self, count: u64) -> String;
}

/// The new values of one erased comment.
#[derive(Clone, Debug, PartialEq)]
pub struct ErasedComment {
    /// Random: it matches no email, and no other erased comment.
    pub author_hash: AuthorHash,
    pub body: String,
    pub body_public: String,
    pub body_html: String,
    pub reasons: Vec<Reason>,
}

/// One audit row to insert.
#[derive(Clone, Debug)]
pub struct NewAuditRow<'a> {
    pub site: SiteId,
    pub comment: Option<CommentId>,
    pub actor: &'a str,
    pub action: &'a str,
    pub from: Option<CommentStatus>,
    pub to: Option<CommentStatus>,
    pub note: Option<&'a str>,
    pub at: DateTime<Utc>,
}

impl<'a> NewAuditRow<'a> {
    /// A row about the site rather than one comment (a credential, an erasure, a block), which
    /// changes no status.
    pub fn of_site(
        site: SiteId,
        actor: &'a str,
        action: &'a str,
        note: &'a str,
        at: DateTime<Utc>,
    ) -> Self {
        NewAuditRow {
            site,
            comment: None,
            actor,
            action,
            from: None,
            to: None,
            note: Some(note),
            at,
        }
    }

    /// The retention sweep rejected a pending reply that waited too long.
    fn expired(site: SiteId, comment: CommentId, at: DateTime<Utc>) -> Self {
        NewAuditRow {
            site,
            comment: Some(comment),
            actor: SYSTEM_ACTOR,
            action: audit_action::EXPIRE,
            from: Some(CommentStatus::Pending),
            to: Some(CommentStatus::Rejected),
            note: Some(EXPIRED_NOTE),
            at,
        }
    }

    /// The retention sweep deleted a reply that sat in the spam queue long enough.
    fn spam_deleted(site: SiteId, comment: CommentId, at: DateTime<Utc>) -> Self {
        NewAuditRow {
            site,
            comment: Some(comment),
            actor: SYSTEM_ACTOR,
            action: Action::Delete.as_str(),
            from: Some(CommentStatus::Spam),
            to: None,
            note: Some(SPAM_DELETED_NOTE),
            at,
        }
    }
}

/// The note of a token's audit rows: which token, and what it may do.
fn token_note(prefix: &str, role: Role, scopes: &[Scope]) -> String {
    if scopes.is_empty() {
        format!("{prefix} ({})", role.as_str())
    } else {
        format!("{prefix} ({}: {})", role.as_str(), Scope::list(scopes))
    }
}
