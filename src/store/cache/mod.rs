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

mod credentials;
mod threads;

use std::{collections::HashMap, sync::Arc, time::Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    task::JoinHandle,
};

use self::{
    credentials::CredentialCache,
    threads::{PageKey, ThreadCache, public_only},
};
use super::{
    Comments, Credential, Facts, Judge, Keys, ListingEvent, ListingEvents, Moderating, NewToken,
    PolicyEdit, RekeyReport, ReplyFilter, ServingMark, Site, Sites, Store, StoreResult,
    StoredComment, StoredFacts, TextKeeper, ThreadCursor, ThreadOrder, ThreadPage,
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
