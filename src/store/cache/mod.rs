//! What a store keeps in memory: the public's reads (pages of approved
//! threads, approved counts, articles' clocks) within a byte budget, and the
//! credentials it has read.
//!
//! Every change of a comment's status or content drops the cached pages of
//! that comment's site (or, for a new approved reply, its article) before the
//! change is acknowledged, at the point where the store tells other replicas
//! of it; their changes arrive as the store's [`ListingEvent`]s. A read that began
//! before a drop never stores what it read, and while the inner store cannot
//! hear other replicas nothing is served from memory. Cached pages hold only
//! what a listing shows: never an email, an address or a spam assessment.
//!
//! It also keeps the credentials it has read, each for
//! [`CREDENTIAL_RECHECK`](super::CREDENTIAL_RECHECK), so that a busy caller's
//! token is read once in that time, not on every call.

mod credentials;
mod threads;

use std::{collections::HashMap, future::Future, sync::Arc, time::Instant};

use tokio::{
    sync::broadcast::{self, error::RecvError},
    task::JoinHandle,
};

pub(crate) use self::threads::PageKey;
use self::{
    credentials::CredentialCache,
    threads::{ThreadCache, public_only},
};
use super::{Credential, ListingEvent, ListingEvents, StoreResult, ThreadPage};
use crate::{
    domain::{ArticleClock, ArticleKey},
    ids::SiteId,
};

/// What a store keeps in memory: the public's reads and the credentials it has read. A store
/// opened without caches ([`Caches::none`]) reads everything from the database.
pub(crate) struct Caches {
    threads: Option<Arc<ThreadCache>>,
    credentials: Option<CredentialCache>,
    follower: Option<JoinHandle<()>>,
}

impl Caches {
    /// No caches: every read goes to the database.
    pub(crate) fn none() -> Caches {
        Caches {
            threads: None,
            credentials: None,
            follower: None,
        }
    }

    /// Caches of at most about `max_bytes` of listings (0 keeps none) and of credentials,
    /// following `events`, the other replicas' changes, where there are any. Must be called
    /// within a Tokio runtime.
    pub(crate) fn new(max_bytes: usize, events: Option<ListingEvents>) -> Caches {
        let threads = Arc::new(ThreadCache::new(max_bytes));
        let follower = events.map(|ListingEvents { events, listening }| {
            if !listening {
                threads.interrupt();
            }
            tokio::spawn(follow(Arc::clone(&threads), events))
        });
        Caches {
            threads: Some(threads),
            credentials: Some(CredentialCache::default()),
            follower,
        }
    }

    /// A page of an article's approved thread: from memory, or `load`ed and kept.
    pub(crate) async fn thread_page(
        &self,
        site: SiteId,
        article: &str,
        key: PageKey,
        load: impl Future<Output = StoreResult<Arc<ThreadPage>>>,
    ) -> StoreResult<Arc<ThreadPage>> {
        let Some(cache) = &self.threads else {
            return load.await;
        };
        if let Some(page) = cache.page(site, article, &key) {
            return Ok(page);
        }
        let ticket = cache.ticket(site);
        let loaded = load.await?;
        let comments = Arc::try_unwrap(loaded)
            .map_or_else(|shared| shared.comments.clone(), |page| page.comments);
        let page = ThreadPage::new(comments.into_iter().map(public_only).collect());
        if let Some(ticket) = ticket {
            cache.put_page(ticket, site, article, key, Arc::clone(&page));
        }
        Ok(page)
    }

    /// Approved comments per article: those in memory, and the others `load`ed (given the
    /// articles missing) and kept.
    pub(crate) async fn count_approved<F, Fut>(
        &self,
        site: SiteId,
        articles: &[ArticleKey],
        load: F,
    ) -> StoreResult<HashMap<String, u64>>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = StoreResult<HashMap<String, u64>>>,
    {
        let Some(cache) = &self.threads else {
            return load(articles.iter().map(|a| a.as_str().to_owned()).collect()).await;
        };
        let ticket = cache.ticket(site);
        let (mut found, missing) = cache.counts(site, articles.iter().map(ArticleKey::as_str));
        if missing.is_empty() {
            return Ok(found);
        }
        let loaded = load(missing.clone()).await?;
        for article in missing {
            let n = loaded.get(&article).copied().unwrap_or(0);
            if let Some(ticket) = ticket {
                cache.put_count(ticket, site, &article, n);
            }
            if n > 0 {
                found.insert(article, n);
            }
        }
        Ok(found)
    }

    /// What decides when an article closes: from memory, or `load`ed and kept. It holds times,
    /// not whether the article is closed, so it stays true as time passes.
    pub(crate) async fn article_clock(
        &self,
        site: SiteId,
        article: &str,
        load: impl Future<Output = StoreResult<ArticleClock>>,
    ) -> StoreResult<ArticleClock> {
        let Some(cache) = &self.threads else {
            return load.await;
        };
        let ticket = cache.ticket(site);
        if let Some(clock) = cache.clock(site, article) {
            return Ok(clock);
        }
        let clock = load.await?;
        if let Some(ticket) = ticket {
            cache.put_clock(ticket, site, article, clock);
        }
        Ok(clock)
    }

    /// The live credential with this digest: from memory, or `load`ed and kept for
    /// [`CREDENTIAL_RECHECK`](super::CREDENTIAL_RECHECK).
    pub(crate) async fn credential(
        &self,
        digest: &[u8; 32],
        load: impl Future<Output = StoreResult<Option<Credential>>>,
    ) -> StoreResult<Option<Credential>> {
        let Some(cache) = &self.credentials else {
            return load.await;
        };
        let asked = Instant::now();
        if let Some(credential) = cache.get(digest, asked) {
            return Ok(Some(credential));
        }
        if cache.known_unknown(digest, asked) {
            return Ok(None);
        }
        let generation = cache.generation();
        let found = load.await?;
        match &found {
            Some(credential) => cache.put(*digest, credential, asked, generation),
            None => cache.put_unknown(*digest, asked),
        }
        Ok(found)
    }

    /// Drops, when it goes, what it names: put where a change to listings begins, so that
    /// whatever happens to the change (committed, failed, or committed with its answer lost)
    /// nothing read before it is served after.
    pub(crate) fn dropping<'a>(&'a self, listings: Listings<'a>) -> Dropping<'a> {
        Dropping {
            caches: self,
            listings,
        }
    }

    /// A token with this digest was issued: it is unknown no longer.
    pub(crate) fn issued(&self, digest: &[u8; 32]) {
        if let Some(cache) = &self.credentials {
            cache.forget_unknown(digest);
        }
    }

    /// Tokens were revoked: no credential read before is trusted again.
    pub(crate) fn revoked(&self) {
        if let Some(cache) = &self.credentials {
            cache.clear();
        }
    }

    fn drop_listings(&self, listings: &Listings<'_>) {
        let Some(cache) = &self.threads else {
            return;
        };
        match listings {
            Listings::None => {}
            Listings::Article(site, article) => cache.invalidate_article(*site, article),
            Listings::Site(site) => cache.invalidate_site(*site),
            Listings::Sites(sites) => {
                for site in *sites {
                    cache.invalidate_site(*site);
                }
            }
            Listings::All => cache.clear(),
        }
    }
}

impl Drop for Caches {
    fn drop(&mut self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

/// Which cached listings a change may touch, borrowed from the change's own arguments.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Listings<'a> {
    None,
    Article(SiteId, &'a str),
    Site(SiteId),
    Sites(&'a [SiteId]),
    All,
}

/// See [`Caches::dropping`]; what it names can grow while the change runs.
pub(crate) struct Dropping<'a> {
    caches: &'a Caches,
    listings: Listings<'a>,
}

impl Drop for Dropping<'_> {
    fn drop(&mut self) {
        self.caches.drop_listings(&self.listings);
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
