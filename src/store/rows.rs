//! Rows as both backends return them, and their checked conversion into
//! domain values.
//!
//! The row structs derive sqlx's `FromRow`, which is generic over the
//! database, so SQLite and PostgreSQL decode the same columns the same way.
//! A stored word this build does not know is `StoreError::Corrupt`, never a
//! panic or a silent default.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, QueryBuilder, Type, types::Json};
use uuid::Uuid;

use super::{
    Credential, Lesson, Role, Site, StoreError, StoreResult, StoredComment, ThreadCursor,
    ThreadOrder,
};
use crate::{
    domain::{
        AuditRecord, BlockEntry, BlockKind, BlockSubject, Blocked, CommentStatus, Scope,
        audit_action,
    },
    ids::{AuditId, CommentId, SiteId, TokenId},
    privacy::{Rekeying, Resealed, Sealed},
    spam::{Label, Policy, Reason, Verdict},
};

/// The columns of a [`StoredComment`], in the order of the `INSERT`s'
/// placeholders; the same names on every backend.
macro_rules! comment_columns {
    () => {
        "id, site_id, article, parent_id, root_id, path, depth, status, author_name, \
         author_website, email_sealed, author_hash, avatar_seed, body, body_public, body_html, \
         ip, user_agent, referrer, score, verdict, reasons, idempotency_key, created_at, updated_at, \
         fingerprint, features, body_sealed, reader_hash"
    };
}
pub(super) use comment_columns;

/// [`comment_columns!`] without what only the spam filter reads (`fingerprint`
/// and `features`, a third of a row's bytes), for the pages moderators read.
macro_rules! queue_columns {
    () => {
        "id, site_id, article, parent_id, root_id, path, depth, status, author_name, \
         author_website, email_sealed, author_hash, avatar_seed, body, body_public, body_html, \
         ip, user_agent, referrer, score, verdict, reasons, idempotency_key, created_at, updated_at, \
         NULL AS fingerprint, NULL AS features, body_sealed, reader_hash"
    };
}
pub(super) use queue_columns;

/// The columns of a [`BlockRow`].
macro_rules! block_columns {
    () => {
        "kind, value, actor, created_at, note, expires_at, hits, last_hit_at"
    };
}
pub(super) use block_columns;

/// What a thread page shows the public, for [`ListedRow`].
macro_rules! listed_columns {
    () => {
        "id, site_id, article, parent_id, root_id, path, depth, status, author_name, \
         author_website, avatar_seed, body_public, body_html, verdict, created_at, updated_at"
    };
}

pub(super) fn status_from(word: &str) -> StoreResult<CommentStatus> {
    CommentStatus::parse(word).ok_or_else(|| StoreError::Corrupt(format!("status {word:?}")))
}

fn optional_status(word: Option<&str>) -> StoreResult<Option<CommentStatus>> {
    word.map(status_from).transpose()
}

pub(super) fn role_from(word: &str) -> StoreResult<Role> {
    Role::parse(word).ok_or_else(|| StoreError::Corrupt(format!("role {word:?}")))
}

fn verdict_from(word: &str) -> StoreResult<Verdict> {
    Verdict::parse(word).ok_or_else(|| StoreError::Corrupt(format!("verdict {word:?}")))
}

#[derive(sqlx::FromRow)]
pub(super) struct SiteRow {
    id: Uuid,
    name: String,
    policy: Json<Policy>,
    created_at: DateTime<Utc>,
}

/// The one part of a site's policy an article's clock reads; the rest of the JSON is skipped.
#[derive(serde::Deserialize)]
pub(super) struct AgeLimit {
    #[serde(default)]
    pub(super) close_after_days: u32,
}

impl From<SiteRow> for Site {
    fn from(row: SiteRow) -> Site {
        Site {
            id: SiteId(row.id),
            name: row.name,
            policy: row.policy.0,
            created_at: row.created_at,
        }
    }
}

/// One row of a token joined with one of its sites (none for a token
/// without sites).
#[derive(sqlx::FromRow)]
pub(super) struct CredentialRow {
    id: Uuid,
    role: String,
    prefix: String,
    site_id: Option<Uuid>,
    /// The token's scopes, comma-separated; none for a site key.
    scopes: Option<String>,
}

pub(super) fn scopes_from(list: Option<&str>) -> StoreResult<Vec<Scope>> {
    let mut scopes = list
        .unwrap_or_default()
        .split(',')
        .filter(|word| !word.is_empty())
        .map(|word| {
            Scope::parse(word).ok_or_else(|| StoreError::Corrupt(format!("scope {word:?}")))
        })
        .collect::<StoreResult<Vec<Scope>>>()?;
    scopes.sort();
    Ok(scopes)
}

/// Folds the rows of one token into its credential; `None` when there are none.
pub(super) fn credential_from_rows(rows: Vec<CredentialRow>) -> StoreResult<Option<Credential>> {
    let sites = rows
        .iter()
        .filter_map(|row| row.site_id.map(SiteId))
        .collect();
    let Some(first) = rows.into_iter().next() else {
        return Ok(None);
    };
    Ok(Some(Credential {
        id: TokenId(first.id),
        role: role_from(&first.role)?,
        scopes: scopes_from(first.scopes.as_deref())?,
        prefix: first.prefix,
        sites,
    }))
}

/// A whole comment: what a listing shows, and the rest.
#[derive(sqlx::FromRow)]
pub(super) struct CommentRow {
    #[sqlx(flatten)]
    listed: ListedRow,
    email_sealed: Vec<u8>,
    author_hash: Vec<u8>,
    body: String,
    body_sealed: Option<Vec<u8>>,
    ip: Option<String>,
    user_agent: Option<String>,
    referrer: Option<String>,
    score: f64,
    reasons: Json<Vec<Reason>>,
    idempotency_key: Option<String>,
    fingerprint: Option<i64>,
    features: Option<Vec<u8>>,
    reader_hash: Option<Vec<u8>>,
}

impl TryFrom<CommentRow> for StoredComment {
    type Error = StoreError;

    fn try_from(row: CommentRow) -> StoreResult<StoredComment> {
        Ok(StoredComment {
            email_sealed: row.email_sealed,
            author_hash: row.author_hash,
            body: row.body,
            body_sealed: row.body_sealed,
            ip: row.ip,
            user_agent: row.user_agent,
            referrer: row.referrer,
            score: row.score,
            reasons: row.reasons.0,
            idempotency_key: row.idempotency_key,
            // Stored as the same 64 bits, signed: both databases lack u64.
            fingerprint: row.fingerprint.map(|f| f as u64),
            features: row
                .features
                .as_deref()
                .map(decode_features)
                .unwrap_or_default(),
            reader_hash: row.reader_hash,
            ..StoredComment::try_from(row.listed)?
        })
    }
}

/// Features as stored: little-endian u64s, one after another.
pub(super) fn encode_features(features: &[u64]) -> Vec<u8> {
    features.iter().flat_map(|f| f.to_le_bytes()).collect()
}

pub(super) fn decode_features(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            u64::from_le_bytes(word)
        })
        .collect()
}

/// The query of a thread page on either backend, for [`ListedRow`]s: the
/// approved comments of `article`, threads oldest (or newest) first, each
/// top-down, after `after`, at most `limit`. docs/STORAGE.md gives the plans.
/// With `own_of` (an author hash), that author's pending replies are listed
/// too, each in its place.
pub(super) fn thread_page_query<'a, DB>(
    site: SiteId,
    article: &'a str,
    order: ThreadOrder,
    after: Option<&'a ThreadCursor>,
    limit: u32,
    own_of: Option<&'a [u8]>,
) -> QueryBuilder<DB>
where
    DB: Database,
    Uuid: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    &'a [u8]: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut query = QueryBuilder::<DB>::new(concat!(
        "SELECT ",
        listed_columns!(),
        " FROM comments WHERE site_id = "
    ));
    query.push_bind(site.0);
    query.push(" AND article = ").push_bind(article);
    match own_of {
        None => {
            query.push(" AND status = 'approved'");
        }
        Some(author_hash) => {
            query
                .push(" AND (status = 'approved' OR (status = 'pending' AND author_hash = ")
                .push_bind(author_hash)
                .push("))");
        }
    }
    let root_dir = match order {
        ThreadOrder::OldestFirst => "ASC",
        ThreadOrder::NewestFirst => "DESC",
    };
    match (order, after) {
        (_, None) => {}
        // Exactly the index's order, so the scan starts at the cursor.
        (ThreadOrder::OldestFirst, Some(cursor)) => {
            query
                .push(" AND (root_id, path) > (")
                .push_bind(cursor.root.0)
                .push(", ")
                .push_bind(cursor.path.as_str())
                .push(")");
        }
        // Threads newest first but each read top-down: no row comparison
        // has that order. `root_id <=` is implied by the condition after
        // it; it is there to start the backward scan at the cursor's thread.
        (ThreadOrder::NewestFirst, Some(cursor)) => {
            query
                .push(" AND root_id <= ")
                .push_bind(cursor.root.0)
                .push(" AND (root_id < ")
                .push_bind(cursor.root.0)
                .push(" OR path > ")
                .push_bind(cursor.path.as_str())
                .push(")");
        }
    }
    query
        .push(" ORDER BY root_id ")
        .push(root_dir)
        .push(", path ASC LIMIT CAST(")
        .push_bind(i64::from(limit))
        .push(" AS BIGINT)");
    query
}

/// A comment to store in bulk, with what it teaches the classifier, if anything.
pub(super) trait BulkRow {
    fn comment(&self) -> &StoredComment;
    fn lesson(&self) -> Option<Lesson>;
}

impl BulkRow for StoredComment {
    fn comment(&self) -> &StoredComment {
        self
    }

    fn lesson(&self) -> Option<Lesson> {
        None
    }
}

/// The two statements that store `chunk` in bulk on either backend: the comments in one
/// multi-row `INSERT`, each with its lesson, and a `submit` audit row for each, by `actor`,
/// noted `note`, at the comment's time.
pub(super) fn bulk_statements<'a, DB, R: BulkRow>(
    chunk: &'a [R],
    actor: &'a str,
    note: &'a str,
) -> (QueryBuilder<DB>, QueryBuilder<DB>)
where
    DB: Database,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q, 's> &'s str: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f32>: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> Json<&'r Vec<Reason>>: Encode<'q, DB> + Type<DB>,
{
    let mut insert = QueryBuilder::<DB>::new(concat!(
        "INSERT INTO comments (",
        comment_columns!(),
        ", lesson_label, lesson_weight) "
    ));
    insert.push_values(chunk, |mut row, r| {
        let (c, lesson) = (r.comment(), r.lesson());
        row.push_bind(c.id.0)
            .push_bind(c.site.0)
            .push_bind(&c.article)
            .push_bind(c.parent.map(|p| p.0))
            .push_bind(c.root.0)
            .push_bind(&c.path)
            .push_bind(i64::from(c.depth))
            .push_bind(c.status.as_str())
            .push_bind(&c.author_name)
            .push_bind(&c.author_website)
            .push_bind(&c.email_sealed)
            .push_bind(&c.author_hash)
            .push_bind(&c.avatar_seed)
            .push_bind(&c.body)
            .push_bind(&c.body_public)
            .push_bind(&c.body_html)
            .push_bind(&c.ip)
            .push_bind(&c.user_agent)
            .push_bind(&c.referrer)
            .push_bind(c.score)
            .push_bind(c.verdict.as_str())
            .push_bind(Json(&c.reasons))
            .push_bind(&c.idempotency_key)
            .push_bind(c.created_at)
            .push_bind(c.updated_at)
            .push_bind(c.fingerprint.map(|f| f as i64))
            .push_bind(encode_features(&c.features))
            .push_bind(&c.body_sealed)
            .push_bind(&c.reader_hash)
            .push_bind(lesson.map(|(label, _)| label.as_str().to_owned()))
            .push_bind(lesson.map(|(_, weight)| weight));
    });
    let mut audit = QueryBuilder::<DB>::new(
        "INSERT INTO audit_log \
         (id, site_id, comment_id, actor, action, to_status, note, created_at) ",
    );
    audit.push_values(chunk, |mut row, r| {
        let c = r.comment();
        row.push_bind(AuditId::new().0)
            .push_bind(c.site.0)
            .push_bind(c.id.0)
            .push_bind(actor)
            .push_bind(audit_action::SUBMIT)
            .push_bind(c.status.as_str())
            .push_bind(note)
            .push_bind(c.created_at);
    });
    (insert, audit)
}

/// A comment of a thread page: only what a listing shows, so nothing private
/// is read for the public, and a page is a third of the bytes of full rows.
#[derive(sqlx::FromRow)]
pub(super) struct ListedRow {
    id: Uuid,
    site_id: Uuid,
    article: String,
    parent_id: Option<Uuid>,
    root_id: Uuid,
    path: String,
    // `integer` on PostgreSQL; SQLite's INTEGER decodes into it as well.
    depth: i32,
    status: String,
    author_name: String,
    author_website: Option<String>,
    avatar_seed: String,
    body_public: String,
    body_html: String,
    verdict: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ListedRow> for StoredComment {
    type Error = StoreError;

    /// The private parts left empty, as the thread cache keeps them.
    fn try_from(row: ListedRow) -> StoreResult<StoredComment> {
        Ok(StoredComment {
            id: CommentId(row.id),
            site: SiteId(row.site_id),
            article: row.article,
            parent: row.parent_id.map(CommentId),
            root: CommentId(row.root_id),
            path: row.path,
            depth: u32::try_from(row.depth)
                .map_err(|_| StoreError::Corrupt(format!("depth {}", row.depth)))?,
            status: status_from(&row.status)?,
            author_name: row.author_name,
            author_website: row.author_website,
            email_sealed: Vec::new(),
            author_hash: Vec::new(),
            avatar_seed: row.avatar_seed,
            body: String::new(),
            body_sealed: None,
            body_public: row.body_public,
            body_html: row.body_html,
            ip: None,
            user_agent: None,
            referrer: None,
            score: 0.0,
            verdict: verdict_from(&row.verdict)?,
            reasons: Vec::new(),
            idempotency_key: None,
            created_at: row.created_at,
            updated_at: row.updated_at,
            fingerprint: None,
            features: Vec::new(),
            reader_hash: None,
        })
    }
}

pub(super) fn listed_from_rows(rows: Vec<ListedRow>) -> StoreResult<Vec<StoredComment>> {
    rows.into_iter().map(StoredComment::try_from).collect()
}

pub(super) fn comments_from_rows(rows: Vec<CommentRow>) -> StoreResult<Vec<StoredComment>> {
    rows.into_iter().map(StoredComment::try_from).collect()
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    id: Uuid,
    comment_id: Option<Uuid>,
    actor: String,
    action: String,
    from_status: Option<String>,
    to_status: Option<String>,
    note: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> StoreResult<AuditRecord> {
        Ok(AuditRecord {
            id: AuditId(row.id),
            comment: row.comment_id.map(CommentId),
            actor: row.actor,
            action: row.action,
            from_status: optional_status(row.from_status.as_deref())?,
            to_status: optional_status(row.to_status.as_deref())?,
            note: row.note,
            created_at: row.created_at,
        })
    }
}

/// A database count as the small number the facts keep.
pub(super) fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What an erasure reads of each comment before it replaces it.
#[derive(sqlx::FromRow)]
pub(super) struct ErasableRow {
    pub(super) id: Uuid,
    pub(super) body_public: String,
    pub(super) body_html: String,
    pub(super) reasons: Json<Vec<Reason>>,
}

/// What a re-keying reads of each comment that has an email (not erased).
#[derive(sqlx::FromRow)]
pub(super) struct SealedRow {
    pub(super) id: Uuid,
    pub(super) site_id: Uuid,
    pub(super) email_sealed: Vec<u8>,
    pub(super) author_hash: Vec<u8>,
    pub(super) body_sealed: Option<Vec<u8>>,
}

impl SealedRow {
    /// The comment's values under the new key of `rekeying`.
    pub(super) fn reseal(&self, rekeying: &Rekeying) -> StoreResult<Resealed> {
        rekeying
            .reseal(&Sealed {
                site: SiteId(self.site_id),
                comment: CommentId(self.id),
                email_sealed: &self.email_sealed,
                body_sealed: self.body_sealed.as_deref(),
            })
            .map_err(|_| {
                StoreError::Corrupt(format!(
                    "comment {}: its email or text does not open under the old key",
                    self.id
                ))
            })
    }
}

/// The query of a page of `site`'s blocklist on either backend, for [`BlockRow`]s: the entries
/// after `after` by kind and then value, the primary key's order, at most `limit`.
pub(super) fn blocklist_query<DB>(
    site: SiteId,
    after: Option<&Blocked>,
    limit: u32,
) -> QueryBuilder<DB>
where
    DB: Database,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> &'static str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let mut query = QueryBuilder::<DB>::new(concat!(
        "SELECT ",
        block_columns!(),
        " FROM blocklist WHERE site_id = "
    ));
    query.push_bind(site.0);
    if let Some(after) = after {
        query
            .push(" AND (kind, value) > (")
            .push_bind(after.kind().as_str())
            .push(", ")
            .push_bind(after.value())
            .push(")");
    }
    query
        .push(" ORDER BY kind, value LIMIT CAST(")
        .push_bind(i64::from(limit))
        .push(" AS BIGINT)");
    query
}

/// The query of the entries of `site`'s blocklist that match `subject`, on either backend, for
/// [`BlockRow`]s: primary-key lookups of [`BlockSubject::candidates`], in the order of
/// [`blocklist_query`]. `None` when nothing could match. One `SELECT` per
/// kind, joined by `UNION ALL`: SQLite, which replyguard never `ANALYZE`s, reads an `OR` of
/// the pairs as a scan of the site's whole list.
pub(super) fn blocks_matching_query<DB>(
    site: SiteId,
    subject: &BlockSubject<'_>,
) -> Option<QueryBuilder<DB>>
where
    DB: Database,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> &'static str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let candidates = subject.candidates();
    if candidates.is_empty() {
        return None;
    }
    let mut query = QueryBuilder::<DB>::new("");
    let mut first = true;
    for kind in BlockKind::ALL {
        let mut values = candidates.iter().filter(|c| c.kind() == kind).peekable();
        if values.peek().is_none() {
            continue;
        }
        if !first {
            query.push(" UNION ALL ");
        }
        first = false;
        query
            .push(concat!(
                "SELECT ",
                block_columns!(),
                " FROM blocklist WHERE site_id = "
            ))
            .push_bind(site.0)
            .push(" AND kind = ")
            .push_bind(kind.as_str())
            .push(" AND value IN (");
        let mut list = query.separated(", ");
        for candidate in values {
            list.push_bind(candidate.value());
        }
        query.push(")");
    }
    query.push(" ORDER BY kind, value");
    Some(query)
}

#[derive(sqlx::FromRow)]
pub(super) struct BlockRow {
    kind: String,
    value: String,
    actor: String,
    created_at: DateTime<Utc>,
    note: String,
    expires_at: Option<DateTime<Utc>>,
    hits: i64,
    last_hit_at: Option<DateTime<Utc>>,
}

impl TryFrom<BlockRow> for BlockEntry {
    type Error = StoreError;

    fn try_from(row: BlockRow) -> StoreResult<BlockEntry> {
        let kind = BlockKind::parse(&row.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("block kind {:?}", row.kind)))?;
        let blocked = Blocked::parse(kind, &row.value)
            .map_err(|_| StoreError::Corrupt(format!("blocked {kind} {:?}", row.value)))?;
        Ok(BlockEntry {
            blocked,
            actor: row.actor,
            created_at: row.created_at,
            note: row.note,
            expires_at: row.expires_at,
            hits: row.hits.unsigned_abs(),
            last_hit_at: row.last_hit_at,
        })
    }
}

/// A reply's stored lesson, from its two columns; a damaged pair reads as
/// none, so it is never taken back twice.
pub(super) fn stored_lesson(label: Option<String>, weight: Option<f32>) -> Option<Lesson> {
    Some((Label::parse(label.as_deref()?)?, weight?))
}
