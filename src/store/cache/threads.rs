//! The cache of what articles' public listings show: pages of approved threads, approved
//! counts and articles' clocks (when each closes), per site, within a byte budget, with the tickets that keep a
//! read begun before a change from storing what it read.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex, MutexGuard},
};

use crate::{
    domain::ArticleClock,
    ids::SiteId,
    store::{StoredComment, ThreadCursor, ThreadOrder, ThreadPage},
};

/// A listed comment with what the public never sees left out.
pub(super) fn public_only(comment: StoredComment) -> StoredComment {
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
        reader_hash: None,
        ..comment
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
    pub(crate) fn new(order: ThreadOrder, after: Option<&ThreadCursor>, limit: u32) -> PageKey {
        PageKey {
            order,
            after: after.cloned(),
            limit,
        }
    }

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
    /// What decides when the article closes, once read.
    clock: Option<ArticleClock>,
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
                clock: None,
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
    pub(crate) fn counts<'a>(
        &self,
        site: SiteId,
        articles: impl IntoIterator<Item = &'a str>,
    ) -> (HashMap<String, u64>, Vec<String>) {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let mut state = self.lock();
        let mut cached = state.sites.get_mut(&site);
        for article in articles {
            let entry = cached.as_mut().and_then(|a| a.get_mut(article));
            match entry.and_then(|entry| {
                entry.used = true;
                entry.count
            }) {
                Some(0) => {}
                Some(n) => {
                    found.insert(article.to_owned(), n);
                }
                None => missing.push(article.to_owned()),
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

    /// What decides when an article closes, if that is cached.
    pub(crate) fn clock(&self, site: SiteId, article: &str) -> Option<ArticleClock> {
        let mut state = self.lock();
        let entry = state.sites.get_mut(&site)?.get_mut(article)?;
        entry.used = true;
        entry.clock
    }

    pub(crate) fn put_clock(
        &self,
        ticket: Ticket,
        site: SiteId,
        article: &str,
        clock: ArticleClock,
    ) {
        let mut state = self.lock();
        if !Self::valid(&state, ticket) {
            return;
        }
        state.article(site, article).clock = Some(clock);
        state.evict(self.max_bytes);
    }

    /// Drops one article's pages, count and clock, and voids the
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
    use crate::{domain::CommentStatus, ids::CommentId, spam::Verdict};

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
            reader_hash: None,
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
        let (found, missing) = cache.counts(site, ["story"]);
        assert!(found.is_empty());
        assert_eq!(missing, ["story"]);
        cache.put_count(ticket, site, "story", 1);
        cache.put_count(ticket, site, "nothing", 0);
        let articles = ["story".to_owned(), "nothing".to_owned()];
        let (found, missing) = cache.counts(site, articles.iter().map(String::as_str));
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
            assert_eq!(cache.counts(site, ["story"]).1.len(), 1);
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
        let (counts, missing) = cache.counts(site, ["long"]);
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
