//! A store in front of another that answers the public's reads (pages of
//! approved threads, approved counts) from memory, within a byte budget.
//!
//! Every change of a comment's status or content that goes through it drops
//! the cached pages of that comment's site (or, for a new approved reply, its
//! article) before the change is acknowledged; changes made by other
//! replicas arrive as the inner store's [`ListingEvent`]s. A read that began
//! before a drop never stores what it read, and while the inner store cannot
//! hear other replicas nothing is served from memory. Cached pages hold only
//! what a listing shows: never an email, an address or a spam assessment.
//!
//! It also keeps the credentials it has read, each for
//! [`CREDENTIAL_RECHECK`](super::CREDENTIAL_RECHECK), so that a busy caller's
//! token is read once in that time, not on every call.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    task::JoinHandle,
};

use super::{
    CREDENTIAL_RECHECK, Comments, Credential, Facts, Judge, Keys, ListingEvent, ListingEvents,
    Moderating, NewToken, PolicyEdit, RekeyReport, ReplyFilter, ServingMark, Site, Sites, Store,
    StoreResult, StoredComment, StoredFacts, TextKeeper, ThreadCursor, ThreadOrder, ThreadPage,
};
use crate::{
    ids::{AuditId, CommentId, SiteId},
    moderation::{
        Access, ArticleClosing, AuditRecord, BlockEntry, BlockOutcome, BlockSubject, Blocked,
        ClosedArticle, Cutoffs, DecisionOutcome, Erasure, NewBlock, QueueEvent, SweepReport,
    },
    privacy::Rekeying,
    spam::Policy,
};

/// A [`Store`] that keeps approved thread pages and counts in memory.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    cache: Arc<ThreadCache>,
    credentials: CredentialCache,
    follower: Option<JoinHandle<()>>,
}

impl CachedStore {
    /// Wraps `inner` with a cache of at most about `max_bytes`; 0 keeps
    /// nothing. Must be called within a Tokio runtime.
    pub fn new(inner: Arc<dyn Store>, max_bytes: usize) -> CachedStore {
        let cache = Arc::new(ThreadCache::new(max_bytes));
        let follower = inner
            .listing_events()
            .map(|ListingEvents { events, listening }| {
                if !listening {
                    cache.interrupt();
                }
                tokio::spawn(follow(Arc::clone(&cache), events))
            });
        CachedStore {
            inner,
            cache,
            credentials: CredentialCache::default(),
            follower,
        }
    }
}

impl Drop for CachedStore {
    fn drop(&mut self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

/// Applies other replicas' changes to the cache, for as long as it lives.
async fn follow(cache: Arc<ThreadCache>, mut events: broadcast::Receiver<ListingEvent>) {
    loop {
        match events.recv().await {
            Ok(ListingEvent::Changed {
                site,
                article: Some(article),
            }) => cache.invalidate_article(site, &article),
            Ok(ListingEvent::Changed {
                site,
                article: None,
            }) => cache.invalidate_site(site),
            Ok(ListingEvent::Interrupted) => {
                tracing::warn!("listing changes unheard: serving threads from the database");
                cache.interrupt();
            }
            Ok(ListingEvent::Resumed) => {
                tracing::info!("listing changes heard again: caching threads");
                cache.resume();
            }
            Err(RecvError::Lagged(missed)) => {
                // The missed events named pages that may be stale now.
                tracing::warn!(missed, "the thread cache fell behind; dropping it");
                cache.clear();
            }
            Err(RecvError::Closed) => {
                // Nothing will tell us of changes any more.
                cache.interrupt();
                return;
            }
        }
    }
}

/// A listed comment with what the public never sees left out.
fn public_only(comment: StoredComment) -> StoredComment {
    StoredComment {
        email_sealed: Vec::new(),
        author_hash: Vec::new(),
        body: String::new(),
        body_sealed: None,
        ip: None,
        user_agent: None,
        referrer: None,
        score: 0.0,
        reasons: Vec::new(),
        idempotency_key: None,
        fingerprint: None,
        features: Vec::new(),
        ..comment
    }
}

#[async_trait]
impl Sites for CachedStore {
    async fn create_site(&self, name: &str, policy: &Policy) -> StoreResult<Site> {
        self.inner.create_site(name, policy).await
    }

    async fn site_by_name(&self, name: &str) -> StoreResult<Option<Site>> {
        self.inner.site_by_name(name).await
    }

    async fn site_by_id(&self, id: SiteId) -> StoreResult<Option<Site>> {
        self.inner.site_by_id(id).await
    }

    async fn update_policy(
        &self,
        site: SiteId,
        actor: &str,
        edit: &mut PolicyEdit<'_>,
    ) -> StoreResult<Site> {
        self.inner.update_policy(site, actor, edit).await
    }

    async fn insert_token(&self, token: &NewToken) -> StoreResult<()> {
        let result = self.inner.insert_token(token).await;
        self.credentials.forget_unknown(&token.digest);
        result
    }

    async fn revoke_tokens(&self, prefix: &str) -> StoreResult<u64> {
        let result = self.inner.revoke_tokens(prefix).await;
        self.credentials.clear();
        result
    }

    async fn credential(&self, digest: &[u8; 32]) -> StoreResult<Option<Credential>> {
        let asked = Instant::now();
        if let Some(credential) = self.credentials.get(digest, asked) {
            return Ok(Some(credential));
        }
        if self.credentials.known_unknown(digest, asked) {
            return Ok(None);
        }
        let generation = self.credentials.generation();
        let found = self.inner.credential(digest).await?;
        match &found {
            Some(credential) => self.credentials.put(*digest, credential, asked, generation),
            None => self.credentials.put_unknown(*digest, asked),
        }
        Ok(found)
    }
}

#[async_trait]
impl Comments for CachedStore {
    async fn insert_comment(&self, comment: &StoredComment, actor: &str) -> StoreResult<()> {
        let result = self.inner.insert_comment(comment, actor).await;
        // Also on failure: a commit whose answer was lost may have happened.
        if comment.status == crate::moderation::CommentStatus::Approved {
            self.cache
                .invalidate_article(comment.site, &comment.article);
        }
        result
    }

    async fn seed_comments(&self, comments: &[StoredComment], actor: &str) -> StoreResult<()> {
        let result = self.inner.seed_comments(comments, actor).await;
        // Also on failure, as for one reply: some batches may have committed.
        let mut sites: Vec<SiteId> = comments.iter().map(|c| c.site).collect();
        sites.sort_unstable_by_key(|site| site.0);
        sites.dedup();
        for site in sites {
            self.cache.invalidate_site(site);
        }
        result
    }

    async fn comment(&self, id: CommentId) -> StoreResult<Option<StoredComment>> {
        self.inner.comment(id).await
    }

    async fn comment_by_idempotency_key(
        &self,
        site: SiteId,
        key: &str,
    ) -> StoreResult<Option<StoredComment>> {
        self.inner.comment_by_idempotency_key(site, key).await
    }

    async fn thread_page(
        &self,
        site: SiteId,
        article: &str,
        order: ThreadOrder,
        after: Option<&ThreadCursor>,
        limit: u32,
    ) -> StoreResult<Arc<ThreadPage>> {
        let key = PageKey {
            order,
            after: after.cloned(),
            limit,
        };
        if let Some(page) = self.cache.page(site, article, &key) {
            return Ok(page);
        }
        let ticket = self.cache.ticket(site);
        let loaded = self
            .inner
            .thread_page(site, article, order, after, limit)
            .await?;
        let comments = Arc::try_unwrap(loaded)
            .map_or_else(|shared| shared.comments.clone(), |page| page.comments);
        let page = ThreadPage::new(comments.into_iter().map(public_only).collect());
        if let Some(ticket) = ticket {
            self.cache
                .put_page(ticket, site, article, key, Arc::clone(&page));
        }
        Ok(page)
    }

    async fn count_approved(
        &self,
        site: SiteId,
        articles: &[String],
    ) -> StoreResult<HashMap<String, u64>> {
        let ticket = self.cache.ticket(site);
        let (mut found, missing) = self.cache.counts(site, articles);
        if missing.is_empty() {
            return Ok(found);
        }
        let loaded = self.inner.count_approved(site, &missing).await?;
        for article in missing {
            let n = loaded.get(&article).copied().unwrap_or(0);
            if let Some(ticket) = ticket {
                self.cache.put_count(ticket, site, &article, n);
            }
            if n > 0 {
                found.insert(article, n);
            }
        }
        Ok(found)
    }

    async fn queue_page(
        &self,
        site: SiteId,
        status: crate::moderation::CommentStatus,
        article: Option<&str>,
        after: Option<CommentId>,
        limit: u32,
    ) -> StoreResult<Vec<StoredComment>> {
        self.inner
            .queue_page(site, status, article, after, limit)
            .await
    }

    async fn comments_by_author(
        &self,
        site: SiteId,
        author_hash: &[u8],
    ) -> StoreResult<Vec<StoredComment>> {
        self.inner.comments_by_author(site, author_hash).await
    }

    async fn history(&self, comment: CommentId) -> StoreResult<Vec<AuditRecord>> {
        self.inner.history(comment).await
    }

    async fn audit_page(
        &self,
        site: SiteId,
        comment: Option<CommentId>,
        before: Option<AuditId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.inner.audit_page(site, comment, before, limit).await
    }

    fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.inner.subscribe()
    }

    fn listing_events(&self) -> Option<ListingEvents> {
        self.inner.listing_events()
    }
}

#[async_trait]
impl Facts for CachedStore {
    async fn facts(
        &self,
        site: SiteId,
        author_hash: &[u8],
        article: &str,
        ip: Option<&str>,
        features: &[u64],
    ) -> StoreResult<StoredFacts> {
        self.inner
            .facts(site, author_hash, article, ip, features)
            .await
    }

    async fn use_form_nonce(&self, site: SiteId, nonce: &[u8; 16]) -> StoreResult<bool> {
        self.inner.use_form_nonce(site, nonce).await
    }

    async fn duplicate_of(
        &self,
        site: SiteId,
        article: &str,
        author_hash: &[u8],
        body_public: &str,
    ) -> StoreResult<Option<CommentId>> {
        self.inner
            .duplicate_of(site, article, author_hash, body_public)
            .await
    }

    async fn blocks_matching(
        &self,
        site: SiteId,
        subject: &BlockSubject<'_>,
    ) -> StoreResult<Vec<BlockEntry>> {
        self.inner.blocks_matching(site, subject).await
    }

    async fn article_closed(&self, site: SiteId, article: &str) -> StoreResult<bool> {
        let ticket = self.cache.ticket(site);
        if let Some(closed) = self.cache.closed(site, article) {
            return Ok(closed);
        }
        let closed = self.inner.article_closed(site, article).await?;
        if let Some(ticket) = ticket {
            self.cache.put_closed(ticket, site, article, closed);
        }
        Ok(closed)
    }
}

#[async_trait]
impl Moderating for CachedStore {
    async fn decide(
        &self,
        sites: &[SiteId],
        comment: CommentId,
        judge: &Judge<'_>,
    ) -> StoreResult<DecisionOutcome> {
        let outcome = self.inner.decide(sites, comment, judge).await;
        if !matches!(
            outcome,
            Ok(DecisionOutcome::NotFound | DecisionOutcome::Conflict { .. })
        ) {
            // Which of the moderator's sites holds the comment is the inner
            // store's knowledge; dropping them all is cheap at a moderator's pace.
            for site in sites {
                self.cache.invalidate_site(*site);
            }
        }
        outcome
    }

    async fn record_access(&self, access: &Access<'_>) -> StoreResult<()> {
        self.inner.record_access(access).await
    }

    async fn erase_author(&self, erasure: &Erasure<'_>) -> StoreResult<u64> {
        let result = self.inner.erase_author(erasure).await;
        self.cache.invalidate_site(erasure.site);
        result
    }

    async fn block(
        &self,
        block: &NewBlock<'_>,
        reject_pending: Option<&ReplyFilter<'_>>,
    ) -> StoreResult<BlockOutcome> {
        let result = self.inner.block(block, reject_pending).await;
        // Only pending replies are rejected, which no listing shows; dropped
        // all the same, so that every status change drops its site's pages.
        if reject_pending.is_some() {
            self.cache.invalidate_site(block.site);
        }
        result
    }

    async fn blocklist(
        &self,
        site: SiteId,
        after: Option<&Blocked>,
        limit: u32,
    ) -> StoreResult<Vec<BlockEntry>> {
        self.inner.blocklist(site, after, limit).await
    }

    async fn unblock(&self, block: &NewBlock<'_>) -> StoreResult<bool> {
        self.inner.unblock(block).await
    }

    async fn close_article(&self, closing: &ArticleClosing<'_>) -> StoreResult<bool> {
        let result = self.inner.close_article(closing).await;
        // Dropped even on an error: the change may have been committed.
        self.cache.invalidate_article(closing.site, closing.article);
        result
    }

    async fn closed_articles(
        &self,
        site: SiteId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ClosedArticle>> {
        self.inner.closed_articles(site, after, limit).await
    }

    async fn sweep(&self, now: DateTime<Utc>, cutoffs: &Cutoffs) -> StoreResult<SweepReport> {
        let result = self.inner.sweep(now, cutoffs).await;
        // Expiry rejects pending replies only, and deleted spam changes
        // only the parent of its approved answers; as with blocks, dropped
        // anyway.
        if cutoffs.expire_pending_before.is_some() || cutoffs.delete_spam_before.is_some() {
            self.cache.clear();
        }
        result
    }
}

#[async_trait]
impl Keys for CachedStore {
    async fn key_check(&self) -> StoreResult<Option<Vec<u8>>> {
        self.inner.key_check().await
    }

    async fn claim_key_check(&self, check: &[u8]) -> StoreResult<Vec<u8>> {
        self.inner.claim_key_check(check).await
    }

    async fn newest_sealed_email(&self) -> StoreResult<Option<(SiteId, Vec<u8>)>> {
        self.inner.newest_sealed_email().await
    }

    async fn rekey(&self, rekeying: &Rekeying) -> StoreResult<RekeyReport> {
        let report = self.inner.rekey(rekeying).await?;
        // Listings show avatar seeds, which the new key changed.
        self.cache.clear();
        Ok(report)
    }

    async fn mark_serving(&self) -> StoreResult<Option<ServingMark>> {
        self.inner.mark_serving().await
    }

    async fn keep_texts_again(&self, keep: &TextKeeper<'_>) -> StoreResult<u64> {
        let kept = self.inner.keep_texts_again(keep).await?;
        if kept > 0 {
            // A public text may have changed; this runs when a server starts, before any read.
            self.cache.clear();
        }
        Ok(kept)
    }
}

/// How many generation counters the sites share: a change on one site
/// voids the loads in flight of the few others on its counter, too.
const STRIPES: usize = 64;

/// What a cached article's entry costs beyond its pages, about.
const ENTRY_OVERHEAD: usize = 256;

/// Which page of an article's thread.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PageKey {
    order: ThreadOrder,
    after: Option<ThreadCursor>,
    limit: u32,
}

impl PageKey {
    fn bytes(&self) -> usize {
        std::mem::size_of::<PageKey>() + self.after.as_ref().map_or(0, |c| c.path.len())
    }
}

/// Proof that a load began after every invalidation so far that could
/// concern its site: only then may what it read be cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    epoch: u64,
    stripe: usize,
    generation: u64,
}

/// The cached pages and count of one article.
struct Article {
    /// Tells a stale eviction-queue slot from the entry's own.
    id: u64,
    /// Read since the eviction hand last passed: spared once.
    used: bool,
    bytes: usize,
    pages: HashMap<PageKey, Arc<ThreadPage>>,
    count: Option<u64>,
    /// Whether the article is closed to new replies, once read.
    closed: Option<bool>,
}

/// The cache itself: articles' pages and counts within a byte budget,
/// evicted in about least-recently-used order (a clock).
pub(crate) struct ThreadCache {
    max_bytes: usize,
    hasher: RandomState,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped when everything is dropped.
    epoch: u64,
    /// Bumped when a site's pages are dropped, per stripe of sites.
    generations: Vec<u64>,
    /// While set, nothing is served or stored.
    bypass: bool,
    sites: HashMap<SiteId, HashMap<String, Article>>,
    /// Articles in the order the eviction hand visits them.
    clock: VecDeque<(SiteId, String, u64)>,
    entries: usize,
    next_id: u64,
    bytes: usize,
}

impl State {
    fn remove_site(&mut self, site: SiteId) {
        if let Some(articles) = self.sites.remove(&site) {
            self.entries -= articles.len();
            self.bytes -= articles.values().map(|a| a.bytes).sum::<usize>();
        }
    }

    fn remove_article(&mut self, site: SiteId, article: &str) {
        let Some(articles) = self.sites.get_mut(&site) else {
            return;
        };
        if let Some(entry) = articles.remove(article) {
            self.entries -= 1;
            self.bytes -= entry.bytes;
        }
        if articles.is_empty() {
            self.sites.remove(&site);
        }
    }

    fn clear(&mut self) {
        self.epoch += 1;
        self.sites.clear();
        self.clock.clear();
        self.entries = 0;
        self.bytes = 0;
    }

    /// The entry of an article, made if missing.
    fn article(&mut self, site: SiteId, article: &str) -> &mut Article {
        let exists = self
            .sites
            .get(&site)
            .is_some_and(|articles| articles.contains_key(article));
        let id = self.next_id + 1;
        let bytes = ENTRY_OVERHEAD + article.len();
        if !exists {
            self.next_id = id;
            self.clock.push_back((site, article.to_owned(), id));
            self.entries += 1;
            self.bytes += bytes;
        }
        self.sites
            .entry(site)
            .or_default()
            .entry(article.to_owned())
            .or_insert_with(|| Article {
                id,
                used: false,
                bytes,
                pages: HashMap::new(),
                count: None,
                closed: None,
            })
    }

    /// Evicts until within `max_bytes`: an article read since the hand last
    /// passed is spared once.
    fn evict(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some((site, article, id)) = self.clock.pop_front() else {
                break;
            };
            let Some(entry) = self.sites.get_mut(&site).and_then(|a| a.get_mut(&article)) else {
                continue;
            };
            if entry.id != id {
                continue;
            }
            if entry.used {
                entry.used = false;
                self.clock.push_back((site, article, id));
                continue;
            }
            // Pages past the first go before the first pages and the count,
            // which every reader of the article needs: a reader paging deep
            // through one long thread must not drop its count each time.
            let mut freed = 0;
            entry.pages.retain(|key, page| {
                let deep = key.after.is_some();
                if deep {
                    freed += key.bytes() + page_bytes(page);
                }
                !deep
            });
            if freed > 0 {
                entry.bytes -= freed;
                self.bytes -= freed;
                self.clock.push_back((site, article, id));
                continue;
            }
            self.remove_article(site, &article);
        }
        // Slots of dropped articles: swept out once they outnumber the live.
        if self.clock.len() > 2 * self.entries + 64 {
            let sites = &self.sites;
            self.clock.retain(|(site, article, id)| {
                sites
                    .get(site)
                    .and_then(|a| a.get(article))
                    .is_some_and(|entry| entry.id == *id)
            });
        }
    }
}

impl ThreadCache {
    pub(crate) fn new(max_bytes: usize) -> ThreadCache {
        ThreadCache {
            max_bytes,
            hasher: RandomState::new(),
            state: Mutex::new(State {
                generations: vec![0; STRIPES],
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is completed under the lock before
        // anything can panic, so a poisoned one is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stripe(&self, site: SiteId) -> usize {
        (self.hasher.hash_one(site) % STRIPES as u64) as usize
    }

    /// Taken before a load from the database; `None` when what it reads
    /// must not be kept.
    pub(crate) fn ticket(&self, site: SiteId) -> Option<Ticket> {
        if self.max_bytes == 0 {
            return None;
        }
        let stripe = self.stripe(site);
        let state = self.lock();
        (!state.bypass).then(|| Ticket {
            epoch: state.epoch,
            stripe,
            generation: state.generations[stripe],
        })
    }

    fn valid(state: &State, ticket: Ticket) -> bool {
        !state.bypass
            && state.epoch == ticket.epoch
            && state.generations[ticket.stripe] == ticket.generation
    }

    pub(crate) fn page(
        &self,
        site: SiteId,
        article: &str,
        key: &PageKey,
    ) -> Option<Arc<ThreadPage>> {
        let mut state = self.lock();
        let entry = state.sites.get_mut(&site)?.get_mut(article)?;
        let page = entry.pages.get(key)?;
        entry.used = true;
        Some(Arc::clone(page))
    }

    pub(crate) fn put_page(
        &self,
        ticket: Ticket,
        site: SiteId,
        article: &str,
        key: PageKey,
        page: Arc<ThreadPage>,
    ) {
        let bytes = key.bytes() + page_bytes(&page);
        if bytes > self.max_bytes {
            return;
        }
        let mut state = self.lock();
        if !Self::valid(&state, ticket) {
            return;
        }
        let entry = state.article(site, article);
        let replaced = entry.pages.insert(key.clone(), page);
        let freed = replaced.map_or(0, |old| key.bytes() + page_bytes(&old));
        entry.bytes = entry.bytes + bytes - freed;
        state.bytes = state.bytes + bytes - freed;
        state.evict(self.max_bytes);
    }

    /// The cached counts of `articles` (articles without approved comments
    /// left out), and the articles whose count is not cached.
    pub(crate) fn counts(
        &self,
        site: SiteId,
        articles: &[String],
    ) -> (HashMap<String, u64>, Vec<String>) {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let mut state = self.lock();
        let mut cached = state.sites.get_mut(&site);
        for article in articles {
            let entry = cached.as_mut().and_then(|a| a.get_mut(article.as_str()));
            match entry.and_then(|entry| {
                entry.used = true;
                entry.count
            }) {
                Some(0) => {}
                Some(n) => {
                    found.insert(article.clone(), n);
                }
                None => missing.push(article.clone()),
            }
        }
        (found, missing)
    }

    pub(crate) fn put_count(&self, ticket: Ticket, site: SiteId, article: &str, n: u64) {
        let mut state = self.lock();
        if !Self::valid(&state, ticket) {
            return;
        }
        state.article(site, article).count = Some(n);
        state.evict(self.max_bytes);
    }

    /// Whether an article is closed, if that is cached.
    pub(crate) fn closed(&self, site: SiteId, article: &str) -> Option<bool> {
        let mut state = self.lock();
        let entry = state.sites.get_mut(&site)?.get_mut(article)?;
        entry.used = true;
        entry.closed
    }

    pub(crate) fn put_closed(&self, ticket: Ticket, site: SiteId, article: &str, closed: bool) {
        let mut state = self.lock();
        if !Self::valid(&state, ticket) {
            return;
        }
        state.article(site, article).closed = Some(closed);
        state.evict(self.max_bytes);
    }

    /// Drops one article's pages, count and closed state, and voids the
    /// loads in flight of its site.
    pub(crate) fn invalidate_article(&self, site: SiteId, article: &str) {
        let stripe = self.stripe(site);
        let mut state = self.lock();
        state.generations[stripe] += 1;
        state.remove_article(site, article);
    }

    /// Drops a site's pages and counts, and voids its loads in flight.
    pub(crate) fn invalidate_site(&self, site: SiteId) {
        let stripe = self.stripe(site);
        let mut state = self.lock();
        state.generations[stripe] += 1;
        state.remove_site(site);
    }

    /// Drops everything and voids every load in flight.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Drops everything, and serves and keeps nothing until [`Self::resume`].
    pub(crate) fn interrupt(&self) {
        let mut state = self.lock();
        state.clear();
        state.bypass = true;
    }

    /// Caches again, from nothing: loads begun before are void.
    pub(crate) fn resume(&self) {
        let mut state = self.lock();
        state.clear();
        state.bypass = false;
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Live credentials as they were read, each trusted for
/// [`CREDENTIAL_RECHECK`] from the moment its read began, and the tokens
/// found unknown, each for [`UNKNOWN_FOR`], so that a caller repeating a
/// made-up or revoked token costs no read for it. The unknown are kept
/// apart and bounded on their own, so that random tokens cannot push out
/// live ones. A token is unknown until it is issued, and issued tokens are
/// random: nobody can have asked for one before it existed, so a new token
/// still works at once.
#[derive(Default)]
struct CredentialCache {
    state: Mutex<CredentialState>,
}

#[derive(Default)]
struct CredentialState {
    /// Bumped by every revocation made through this store: a read that
    /// began before one is not kept.
    generation: u64,
    entries: HashMap<[u8; 32], (Instant, Credential)>,
    /// Tokens found unknown, and when.
    unknown: HashMap<[u8; 32], Instant>,
}

/// At most this many credentials are kept; a deployment has a few per site.
const MAX_CREDENTIALS: usize = 4096;

/// How long a token found unknown is answered as unknown without a read.
const UNKNOWN_FOR: Duration = Duration::from_secs(60);

/// At most this many unknown tokens are kept; past it, more cost a read each.
const MAX_UNKNOWN: usize = 16_384;

impl CredentialCache {
    fn lock(&self) -> MutexGuard<'_, CredentialState> {
        // Each change is one map operation, so a poisoned map is whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, digest: &[u8; 32], now: Instant) -> Option<Credential> {
        let state = self.lock();
        let (read, credential) = state.entries.get(digest)?;
        (now.saturating_duration_since(*read) < CREDENTIAL_RECHECK).then(|| credential.clone())
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn put(&self, digest: [u8; 32], credential: &Credential, read: Instant, generation: u64) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_CREDENTIALS {
            state
                .entries
                .retain(|_, (at, _)| read.saturating_duration_since(*at) < CREDENTIAL_RECHECK);
            if state.entries.len() >= MAX_CREDENTIALS {
                return;
            }
        }
        state.entries.insert(digest, (read, credential.clone()));
    }

    fn known_unknown(&self, digest: &[u8; 32], now: Instant) -> bool {
        self.lock()
            .unknown
            .get(digest)
            .is_some_and(|found| now.saturating_duration_since(*found) < UNKNOWN_FOR)
    }

    fn put_unknown(&self, digest: [u8; 32], found: Instant) {
        let mut state = self.lock();
        if state.unknown.len() >= MAX_UNKNOWN {
            state
                .unknown
                .retain(|_, at| found.saturating_duration_since(*at) < UNKNOWN_FOR);
            if state.unknown.len() >= MAX_UNKNOWN {
                return;
            }
        }
        state.unknown.insert(digest, found);
    }

    /// A token issued through this store is known from now on.
    fn forget_unknown(&self, digest: &[u8; 32]) {
        self.lock().unknown.remove(digest);
    }

    fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }
}

/// About what a cached page costs in memory: its comments, and as much
/// again for the wire form the first call that sends it leaves with it.
fn page_bytes(page: &ThreadPage) -> usize {
    2 * page.comments.iter().map(comment_bytes).sum::<usize>()
}

/// About what one cached comment costs in memory.
fn comment_bytes(comment: &StoredComment) -> usize {
    std::mem::size_of::<StoredComment>()
        + comment.article.len()
        + comment.path.len()
        + comment.author_name.len()
        + comment.author_website.as_ref().map_or(0, String::len)
        + comment.avatar_seed.len()
        + comment.body_public.len()
        + comment.body_html.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{moderation::CommentStatus, spam::Verdict};

    fn comment(site: SiteId, article: &str, body: &str) -> StoredComment {
        let id = CommentId::new();
        StoredComment {
            id,
            site,
            article: article.to_owned(),
            parent: None,
            root: id,
            path: id.to_string(),
            depth: 0,
            status: CommentStatus::Approved,
            author_name: "Jane Reader".to_owned(),
            author_website: None,
            email_sealed: vec![1; 64],
            author_hash: vec![2; 32],
            avatar_seed: "seed".to_owned(),
            body: body.to_owned(),
            body_sealed: None,
            body_public: body.to_owned(),
            body_html: body.to_owned(),
            ip: Some("192.0.2.1".to_owned()),
            user_agent: Some("Mozilla/5.0".to_owned()),
            referrer: None,
            score: 0.5,
            verdict: Verdict::Approve,
            reasons: Vec::new(),
            idempotency_key: None,
            created_at: crate::store::now(),
            updated_at: crate::store::now(),
            fingerprint: Some(7),
            features: vec![1, 2, 3],
        }
    }

    fn first_page() -> PageKey {
        PageKey {
            order: ThreadOrder::OldestFirst,
            after: None,
            limit: 51,
        }
    }

    fn page(site: SiteId, article: &str, body: &str) -> Arc<ThreadPage> {
        ThreadPage::new(vec![comment(site, article, body)])
    }

    fn cached(cache: &ThreadCache, site: SiteId, article: &str) -> bool {
        cache.page(site, article, &first_page()).is_some()
    }

    #[test]
    fn a_load_that_began_after_every_change_is_kept() {
        let cache = ThreadCache::new(1 << 20);
        let site = SiteId::new();
        let ticket = cache.ticket(site).expect("caching");
        cache.put_page(
            ticket,
            site,
            "story",
            first_page(),
            page(site, "story", "hi"),
        );
        assert!(cached(&cache, site, "story"));
        let (found, missing) = cache.counts(site, &["story".to_owned()]);
        assert!(found.is_empty());
        assert_eq!(missing, ["story"]);
        cache.put_count(ticket, site, "story", 1);
        cache.put_count(ticket, site, "nothing", 0);
        let articles = ["story".to_owned(), "nothing".to_owned()];
        let (found, missing) = cache.counts(site, &articles);
        assert_eq!(found, HashMap::from([("story".to_owned(), 1)]));
        assert!(missing.is_empty(), "an absence is cached too");
    }

    #[test]
    fn a_load_that_began_before_a_change_is_not_kept() {
        let site = SiteId::new();
        let changes: [fn(&ThreadCache, SiteId); 4] = [
            |cache, site| cache.invalidate_site(site),
            |cache, site| cache.invalidate_article(site, "elsewhere"),
            |cache, _| cache.clear(),
            |cache, _| {
                cache.interrupt();
                cache.resume();
            },
        ];
        for change in changes {
            let cache = ThreadCache::new(1 << 20);
            let ticket = cache.ticket(site).expect("caching");
            change(&cache, site);
            cache.put_page(
                ticket,
                site,
                "story",
                first_page(),
                page(site, "story", "old"),
            );
            cache.put_count(ticket, site, "story", 1);
            assert!(!cached(&cache, site, "story"));
            assert_eq!(cache.counts(site, &["story".to_owned()]).1.len(), 1);
        }
    }

    #[test]
    fn a_change_drops_what_it_concerns() {
        let cache = ThreadCache::new(1 << 20);
        let (news, blog) = (SiteId::new(), SiteId::new());
        let fill = |cache: &ThreadCache| {
            for (site, article) in [(news, "a"), (news, "b"), (blog, "a")] {
                let ticket = cache.ticket(site).expect("caching");
                cache.put_page(
                    ticket,
                    site,
                    article,
                    first_page(),
                    page(site, article, "x"),
                );
            }
        };
        fill(&cache);
        cache.invalidate_article(news, "a");
        assert!(!cached(&cache, news, "a"));
        assert!(cached(&cache, news, "b"));
        assert!(cached(&cache, blog, "a"));
        fill(&cache);
        cache.invalidate_site(news);
        assert!(!cached(&cache, news, "a"));
        assert!(!cached(&cache, news, "b"));
        assert!(cached(&cache, blog, "a"));
        cache.clear();
        assert!(!cached(&cache, blog, "a"));
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn nothing_is_served_or_kept_while_interrupted() {
        let cache = ThreadCache::new(1 << 20);
        let site = SiteId::new();
        let before = cache.ticket(site).expect("caching");
        cache.put_page(
            before,
            site,
            "story",
            first_page(),
            page(site, "story", "x"),
        );
        cache.interrupt();
        assert!(!cached(&cache, site, "story"));
        assert_eq!(cache.ticket(site), None);
        cache.put_page(
            before,
            site,
            "story",
            first_page(),
            page(site, "story", "x"),
        );
        assert!(!cached(&cache, site, "story"));
        cache.resume();
        cache.put_page(
            before,
            site,
            "story",
            first_page(),
            page(site, "story", "x"),
        );
        assert!(
            !cached(&cache, site, "story"),
            "begun before the interruption"
        );
        let after = cache.ticket(site).expect("caching again");
        cache.put_page(after, site, "story", first_page(), page(site, "story", "x"));
        assert!(cached(&cache, site, "story"));
    }

    #[test]
    fn the_budget_holds_and_spares_what_is_read() {
        let budget = 16 * 1024;
        let cache = ThreadCache::new(budget);
        let site = SiteId::new();
        let body = "w".repeat(1000);
        let ticket = cache.ticket(site).expect("caching");
        cache.put_page(ticket, site, "hot", first_page(), page(site, "hot", &body));
        for n in 0..200 {
            let article = format!("a{n}");
            let ticket = cache.ticket(site).expect("caching");
            cache.put_page(
                ticket,
                site,
                &article,
                first_page(),
                page(site, &article, &body),
            );
            assert!(cache.bytes() <= budget, "{} bytes", cache.bytes());
            assert!(cached(&cache, site, "hot"), "read between every insert");
        }
        assert!(cached(&cache, site, "a199"));
        assert!(!cached(&cache, site, "a0"));
        let state = cache.lock();
        assert!(state.entries < 20);
        assert!(state.clock.len() <= 2 * state.entries + 64);
    }

    #[test]
    fn deep_pages_go_before_the_first_page_and_the_count() {
        let cache = ThreadCache::new(64 * 1024);
        let site = SiteId::new();
        let body = "w".repeat(1000);
        let ticket = cache.ticket(site).expect("caching");
        cache.put_count(ticket, site, "long", 5000);
        cache.put_page(
            ticket,
            site,
            "long",
            first_page(),
            page(site, "long", &body),
        );
        for n in 0..200 {
            let deep = PageKey {
                order: ThreadOrder::OldestFirst,
                after: Some(ThreadCursor {
                    root: CommentId::new(),
                    path: format!("{n:08}"),
                }),
                limit: 51,
            };
            let ticket = cache.ticket(site).expect("caching");
            cache.put_page(ticket, site, "long", deep, page(site, "long", &body));
            assert!(cache.bytes() <= 64 * 1024, "{} bytes", cache.bytes());
        }
        assert!(cached(&cache, site, "long"), "the first page stays");
        let (counts, missing) = cache.counts(site, &["long".to_owned()]);
        assert!(missing.is_empty(), "and so does the count");
        assert_eq!(counts.get("long"), Some(&5000));
    }

    #[test]
    fn a_page_over_the_whole_budget_is_not_kept() {
        let cache = ThreadCache::new(1024);
        let site = SiteId::new();
        let ticket = cache.ticket(site).expect("caching");
        cache.put_page(
            ticket,
            site,
            "story",
            first_page(),
            page(site, "story", &"w".repeat(4096)),
        );
        assert!(!cached(&cache, site, "story"));
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = ThreadCache::new(0);
        assert_eq!(cache.ticket(SiteId::new()), None);
    }

    #[test]
    fn churn_does_not_grow_the_eviction_queue() {
        let cache = ThreadCache::new(1 << 20);
        let site = SiteId::new();
        for n in 0..10_000 {
            let article = format!("a{n}");
            let ticket = cache.ticket(site).expect("caching");
            cache.put_count(ticket, site, &article, 1);
            cache.invalidate_article(site, &article);
        }
        let state = cache.lock();
        assert_eq!(state.entries, 0);
        assert!(state.clock.len() <= 2 + 64, "{} slots", state.clock.len());
    }

    fn credential() -> Credential {
        Credential {
            id: crate::ids::TokenId::new(),
            role: crate::store::Role::Host,
            prefix: "rg_site_AbCdEfGh".to_owned(),
            sites: vec![SiteId::new()],
            scopes: Vec::new(),
        }
    }

    #[test]
    fn a_credential_is_trusted_for_the_recheck_time_from_its_read() {
        let cache = CredentialCache::default();
        let read = Instant::now();
        cache.put([1; 32], &credential(), read, cache.generation());
        assert!(cache.get(&[1; 32], read).is_some());
        assert!(cache.get(&[1; 32], read + CREDENTIAL_RECHECK / 2).is_some());
        assert!(cache.get(&[1; 32], read + CREDENTIAL_RECHECK).is_none());
        assert!(cache.get(&[2; 32], read).is_none());
    }

    #[test]
    fn a_read_that_began_before_a_revocation_is_not_kept() {
        let cache = CredentialCache::default();
        let read = Instant::now();
        let generation = cache.generation();
        cache.put([1; 32], &credential(), read, generation);
        cache.clear();
        assert!(cache.get(&[1; 32], read).is_none(), "revoked here");
        cache.put([3; 32], &credential(), read, generation);
        assert!(
            cache.get(&[3; 32], read).is_none(),
            "read before the revocation"
        );
    }

    #[test]
    fn an_unknown_token_is_remembered_for_a_minute_and_forgotten_once_issued() {
        let cache = CredentialCache::default();
        let found = Instant::now();
        cache.put_unknown([1; 32], found);
        assert!(cache.known_unknown(&[1; 32], found + UNKNOWN_FOR / 2));
        assert!(!cache.known_unknown(&[1; 32], found + UNKNOWN_FOR));
        assert!(!cache.known_unknown(&[2; 32], found));
        cache.forget_unknown(&[1; 32]);
        assert!(!cache.known_unknown(&[1; 32], found));
    }

    #[test]
    fn unknown_tokens_are_bounded_apart_from_live_ones() {
        let cache = CredentialCache::default();
        let found = Instant::now();
        for n in 0..MAX_UNKNOWN as u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            cache.put_unknown(digest, found);
        }
        cache.put_unknown([0xff; 32], found);
        assert!(!cache.known_unknown(&[0xff; 32], found), "full");
        cache.put([0xee; 32], &credential(), found, cache.generation());
        assert!(
            cache.get(&[0xee; 32], found).is_some(),
            "live ones still kept"
        );
        let later = found + UNKNOWN_FOR;
        cache.put_unknown([0xff; 32], later);
        assert!(
            cache.known_unknown(&[0xff; 32], later),
            "expired ones make room"
        );
    }

    #[test]
    fn the_credential_cache_is_bounded() {
        let cache = CredentialCache::default();
        let old = Instant::now();
        for n in 0..MAX_CREDENTIALS as u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            cache.put(digest, &credential(), old, 0);
        }
        let full = old + CREDENTIAL_RECHECK / 2;
        cache.put([0xff; 32], &credential(), full, 0);
        assert!(
            cache.get(&[0xff; 32], full).is_none(),
            "full of live entries"
        );
        let later = old + CREDENTIAL_RECHECK;
        cache.put([0xff; 32], &credential(), later, 0);
        assert!(
            cache.get(&[0xff; 32], later).is_some(),
            "expired ones make room"
        );
        assert_eq!(cache.lock().entries.len(), 1);
    }

    #[test]
    fn cached_pages_hold_nothing_private() {
        let site = SiteId::new();
        let public = public_only(comment(site, "story", "text"));
        assert!(public.email_sealed.is_empty() && public.author_hash.is_empty());
        assert!(public.ip.is_none() && public.user_agent.is_none());
        assert!(public.body.is_empty() && public.features.is_empty());
        assert_eq!(public.body_public, "text");
    }
}
