//! The storage suite: the `Store` trait called directly, once per backend,
//! so that SQLite and PostgreSQL are held to one behaviour.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use common::{Backend, TestDatabase, backend_tests};
use replyguard::{
    domain::ArticleKey,
    domain::{
        Access, AccessKind, Action, ArticleClosing, BlockKind, BlockSubject, Blocked,
        CommentStatus, DecisionOutcome, ERASED_NAME, ERASED_REASON, NewBlock, REMOVED_TEXT, Scope,
        SweepReport,
    },
    ids::{CommentId, SiteId, TokenId},
    moderation::{self, Decision, Erasure, FORM_NONCE_RETENTION, Retention},
    privacy::{AuthorHash, KeptText, token_digest},
    spam::{Mode, Policy, REVIEW_WEIGHT, Reason, Verdict},
    store::{
        self, FactsAbout, NewToken, Role, Store, StoreError, StoreOptions, StoredComment,
        ThreadCursor, ThreadOrder,
    },
};

/// An article key, as a host would send it.
fn key(article: &str) -> ArticleKey {
    ArticleKey::parse(article).expect("an article key")
}

async fn open(backend: Backend) -> (TestDatabase, Arc<dyn Store>) {
    let db = TestDatabase::new(backend).await;
    let store = store::open(&db.url).await.expect("store opens");
    (db, store)
}

async fn site(store: &dyn Store, name: &str) -> SiteId {
    store
        .create_site(name, &Policy::default())
        .await
        .expect("site")
        .id
}

fn token(role: Role, prefix: &str, sites: &[SiteId]) -> (String, NewToken) {
    let secret = format!("{prefix}-{}", TokenId::new());
    let record = NewToken {
        id: TokenId::new(),
        role,
        prefix: prefix.to_owned(),
        digest: token_digest(&secret),
        sites: sites.to_vec(),
        scopes: match role {
            Role::Host => Vec::new(),
            Role::Moderator => Scope::DEFAULT.to_vec(),
        },
    };
    (secret, record)
}

/// A plain comment on `article`, a reply to `parent` when given.
fn comment(
    site: SiteId,
    article: &str,
    parent: Option<&StoredComment>,
    status: CommentStatus,
) -> StoredComment {
    let id = CommentId::new();
    let own = id.0.simple().to_string();
    let (root, path, depth) = match parent {
        None => (id, own, 0),
        Some(parent) => (
            parent.root,
            format!("{}.{own}", parent.path),
            parent.depth + 1,
        ),
    };
    let now = store::now();
    StoredComment {
        id,
        site,
        article: article.to_owned(),
        parent: parent.map(|p| p.id),
        root,
        path,
        depth,
        status,
        author_name: "Jane Reader".to_owned(),
        author_website: None,
        email_sealed: vec![0x5e, 0xa1, 0xed],
        author_hash: vec![0xab; 32],
        avatar_seed: "9f86d081884c7d65".to_owned(),
        body: "A reply.".to_owned(),
        body_sealed: None,
        body_public: "A reply.".to_owned(),
        body_html: "<p>A reply.</p>".to_owned(),
        ip: None,
        user_agent: None,
        referrer: None,
        score: 0.0,
        verdict: Verdict::Approve,
        reasons: Vec::new(),
        idempotency_key: None,
        created_at: now,
        updated_at: now,
        fingerprint: Some(0x0f0f_0f0f),
        features: vec![1, 2, 3],
        reader_hash: None,
    }
}

async fn insert(store: &dyn Store, comment: &StoredComment) {
    store
        .insert_comment(comment, "rg_site_test1234")
        .await
        .expect("insert comment");
}

fn decision(comment: CommentId, action: Action) -> Decision<'static> {
    Decision {
        comment,
        action,
        actor: "rg_mod_test1234",
        note: None,
        expected: None,
    }
}

async fn status_of(store: &dyn Store, id: CommentId) -> Option<CommentStatus> {
    store.comment(id).await.expect("read").map(|c| c.status)
}

fn ids(comments: &[StoredComment]) -> Vec<CommentId> {
    comments.iter().map(|c| c.id).collect()
}

async fn a_site_is_found_by_name_and_by_id_with_its_policy(backend: Backend) {
    let (_db, store) = open(backend).await;
    let policy = Policy {
        mode: Mode::ModerateAll,
        hold_threshold: 0.75,
        blocked_terms: vec!["casino".to_owned(), "crypto giveaway".to_owned()],
        ..Policy::default()
    };
    let created = store
        .create_site("news.example.com", &policy)
        .await
        .expect("create");

    for found in [
        store
            .site_by_name("news.example.com")
            .await
            .expect("by name"),
        store.site_by_id(created.id).await.expect("by id"),
    ] {
        let found = found.expect("the site is found");
        assert_eq!(found.id, created.id);
        assert_eq!(found.name, "news.example.com");
        assert_eq!(found.policy, policy);
        assert_eq!(found.created_at, created.created_at);
    }
    assert!(
        store
            .site_by_name("News.example.com")
            .await
            .expect("by name")
            .is_none()
    );
    assert!(
        store
            .site_by_id(SiteId::new())
            .await
            .expect("by id")
            .is_none()
    );
}

async fn a_policy_update_is_stored_with_its_audit_row(backend: Backend) {
    let (db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let policy = Policy {
        mode: Mode::TrustedOnly,
        blocked_ips: vec!["192.0.2.0/24".to_owned()],
        ..Policy::default()
    };

    // An edit that leaves the policy stores nothing and audits nothing.
    let mut shown = Vec::new();
    let unchanged = store
        .update_policy(news, "rg_mod_AbCd1234", &mut |stored| {
            shown.push(stored.clone());
            None
        })
        .await
        .expect("no update");
    assert_eq!(unchanged.policy, Policy::default());
    assert_eq!(shown, [Policy::default()]);
    assert!(db.site_audit("policy").await.is_empty());

    let updated = store
        .update_policy(news, "rg_mod_AbCd1234", &mut |stored| {
            assert_eq!(*stored, Policy::default());
            Some((policy.clone(), "mode, blocked_ips".to_owned()))
        })
        .await
        .expect("update");
    assert_eq!(updated.id, news);
    assert_eq!(updated.name, "news.example.com");
    assert_eq!(updated.policy, policy);

    let found = store.site_by_id(news).await.expect("by id").expect("found");
    assert_eq!(found.policy, policy);
    let untouched = store.site_by_id(blog).await.expect("by id").expect("found");
    assert_eq!(untouched.policy, Policy::default());
    assert_eq!(
        db.site_audit("policy").await,
        [(
            news.0,
            "rg_mod_AbCd1234".to_owned(),
            Some("mode, blocked_ips".to_owned())
        )]
    );
}

async fn a_site_name_is_taken_only_once(backend: Backend) {
    let (_db, store) = open(backend).await;
    site(store.as_ref(), "news.example.com").await;

    let again = store
        .create_site("news.example.com", &Policy::default())
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists("site"))),
        "{again:?}"
    );
    site(store.as_ref(), "blog.example.com").await;
}

async fn a_token_is_found_by_its_digest_with_every_site_it_covers(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let (moderator_secret, moderator) = token(Role::Moderator, "rg_mod_Both1234", &[news, blog]);
    let (host_secret, host) = token(Role::Host, "rg_site_News1234", &[news]);
    let (bare_secret, bare) = token(Role::Moderator, "rg_mod_None1234", &[]);
    for record in [&moderator, &host, &bare] {
        store.insert_token(record).await.expect("insert token");
    }

    let found = store
        .credential(&token_digest(&moderator_secret))
        .await
        .expect("lookup")
        .expect("the moderator token is found");
    assert_eq!(found.id, moderator.id);
    assert_eq!(found.role, Role::Moderator);
    assert_eq!(found.prefix, "rg_mod_Both1234");
    let sites: HashSet<SiteId> = found.sites.into_iter().collect();
    assert_eq!(sites, HashSet::from([news, blog]));

    let found = store
        .credential(&token_digest(&host_secret))
        .await
        .expect("lookup")
        .expect("the site key is found");
    assert_eq!(found.role, Role::Host);
    assert_eq!(found.sites, [news]);

    let found = store
        .credential(&token_digest(&bare_secret))
        .await
        .expect("lookup")
        .expect("a token without sites is found");
    assert!(found.sites.is_empty());

    let unknown = store
        .credential(&token_digest("rg_mod_never-issued"))
        .await
        .expect("lookup");
    assert!(unknown.is_none());
}

async fn revoking_by_prefix_ends_exactly_the_matching_live_tokens(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let mut issued = HashMap::new();
    // `_` in a prefix is a character, not a LIKE wildcard: rgXmod_ must survive.
    for prefix in [
        "rg_mod_AbCd1234",
        "rg_mod_AbCd9999",
        "rgXmod_AbCd1234",
        "rg_mod_Zzzz0000",
    ] {
        let (secret, record) = token(Role::Moderator, prefix, &[news]);
        store.insert_token(&record).await.expect("insert token");
        issued.insert(prefix, secret);
    }

    assert_eq!(store.revoke_tokens("rg_mod_AbCd").await.expect("revoke"), 2);

    for (prefix, live) in [
        ("rg_mod_AbCd1234", false),
        ("rg_mod_AbCd9999", false),
        ("rgXmod_AbCd1234", true),
        ("rg_mod_Zzzz0000", true),
    ] {
        let found = store
            .credential(&token_digest(&issued[prefix]))
            .await
            .expect("lookup");
        assert_eq!(found.is_some(), live, "{prefix}");
    }
    assert_eq!(
        store.revoke_tokens("rg_mod_AbCd").await.expect("revoke"),
        0,
        "a revoked token is not revoked twice"
    );
}

async fn a_tokens_use_is_recorded_at_most_once_a_minute(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let (_, record) = token(Role::Moderator, "rg_mod_Used0000", &[news]);
    store.insert_token(&record).await.expect("insert token");
    let last_use = async || {
        store
            .live_tokens()
            .await
            .expect("tokens")
            .into_iter()
            .find(|token| token.credential.id == record.id)
            .expect("listed")
            .last_used_at
    };
    assert_eq!(last_use().await, None);

    let first = chrono::Utc::now().trunc_subsecs(3);
    store.token_used(record.id, first).await.expect("recorded");
    assert_eq!(last_use().await, Some(first));
    // Within the minute: not written again.
    let soon = first + chrono::Duration::seconds(59);
    store.token_used(record.id, soon).await.expect("recorded");
    assert_eq!(last_use().await, Some(first));
    let later = first + chrono::Duration::seconds(61);
    store.token_used(record.id, later).await.expect("recorded");
    assert_eq!(last_use().await, Some(later));
}

async fn a_comment_reads_back_with_every_field_as_written(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let parent = comment(news, "2026/11/budget", None, CommentStatus::Approved);
    insert(store.as_ref(), &parent).await;

    let mut full = comment(
        news,
        "2026/11/budget",
        Some(&parent),
        CommentStatus::Pending,
    );
    full.author_name = "Zoë 🦀 O'Brien".to_owned();
    full.author_website = Some("https://zoe.example.org/about?x=1&y=2".to_owned());
    full.email_sealed = (0..=255).collect();
    full.author_hash = vec![0x00, 0xff, 0x10, 0x80];
    full.body = "Café au lait — \"quoted\", 'single', \\ back\nsecond line\ttab".to_owned();
    full.body_sealed = Some((0..=255).rev().collect());
    full.body_public = "Write to [email hidden].".to_owned();
    full.body_html =
        "<p>Caf&eacute; <a href=\"https://x.example\" rel=\"nofollow ugc\">x</a></p>".to_owned();
    full.ip = Some("2001:db8::7".to_owned());
    full.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".to_owned());
    full.referrer = Some("https://news.example.com/2026/11/budget".to_owned());
    full.score = 0.1 + 0.2;
    full.verdict = Verdict::Hold;
    full.reasons = vec![
        Reason {
            rule: "links".to_owned(),
            weight: 1.5,
            reason: "2 links".to_owned(),
            log_only: false,
        },
        Reason {
            rule: "shape".to_owned(),
            weight: 1e-7,
            reason: "MOSTLY CAPITALS".to_owned(),
            log_only: true,
        },
    ];
    full.idempotency_key = Some("form-submission-81f2".to_owned());
    insert(store.as_ref(), &full).await;

    let read = store.comment(full.id).await.expect("read").expect("found");
    assert_eq!(format!("{read:#?}"), format!("{full:#?}"));
    let by_key = store
        .comment_by_idempotency_key(news, "form-submission-81f2")
        .await
        .expect("read")
        .expect("found by its key");
    assert_eq!(format!("{by_key:#?}"), format!("{full:#?}"));
    let read = store
        .comment(parent.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(format!("{read:#?}"), format!("{parent:#?}"));

    assert!(
        store
            .comment(CommentId::new())
            .await
            .expect("read")
            .is_none()
    );
}

/// The store refuses a reply to a closed article by itself, in the transaction that would
/// store it: a close that lands after the submission checked the article still holds.
async fn a_reply_to_a_closed_article_is_refused_by_the_transaction_that_would_store_it(
    backend: Backend,
) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let closing = |closed| ArticleClosing {
        site: news,
        article: "story",
        closed,
        actor: "rg_mod_test1234",
        note: None,
        at: None,
    };
    assert!(store.close_article(&closing(true)).await.expect("closes"));

    let refused = comment(news, "story", None, CommentStatus::Approved);
    let result = store.insert_comment(&refused, "rg_site_test1234").await;
    assert!(
        matches!(result, Err(StoreError::ArticleClosed)),
        "{result:?}"
    );
    assert_eq!(status_of(store.as_ref(), refused.id).await, None);
    // Another article of the site takes replies as before, and so does this one reopened.
    insert(
        store.as_ref(),
        &comment(news, "other story", None, CommentStatus::Approved),
    )
    .await;
    assert!(store.close_article(&closing(false)).await.expect("reopens"));
    insert(store.as_ref(), &refused).await;
    assert_eq!(
        status_of(store.as_ref(), refused.id).await,
        Some(CommentStatus::Approved)
    );
}

async fn an_idempotency_key_is_unique_within_one_site_only(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let keyed = |site| {
        let mut c = comment(site, "story", None, CommentStatus::Pending);
        c.idempotency_key = Some("retry-7".to_owned());
        c
    };
    let first = keyed(news);
    insert(store.as_ref(), &first).await;

    let again = store.insert_comment(&keyed(news), "rg_site_test1234").await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists("idempotency key"))),
        "{again:?}"
    );
    let elsewhere = keyed(blog);
    insert(store.as_ref(), &elsewhere).await;
    // Comments without a key never collide.
    for _ in 0..2 {
        insert(
            store.as_ref(),
            &comment(news, "story", None, CommentStatus::Pending),
        )
        .await;
    }

    let found = store
        .comment_by_idempotency_key(news, "retry-7")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found.id, first.id);
    let found = store
        .comment_by_idempotency_key(blog, "retry-7")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found.id, elsewhere.id);
    let missing = store
        .comment_by_idempotency_key(news, "retry-8")
        .await
        .expect("read");
    assert!(missing.is_none());
    assert_eq!(
        store
            .queue_page(news, CommentStatus::Pending, None, None, 10)
            .await
            .expect("queue")
            .len(),
        3,
        "the refused insert left nothing behind"
    );
}

/// Every page of a thread listing, each at most `limit` long.
async fn thread_pages(
    store: &dyn Store,
    site: SiteId,
    article: &str,
    order: ThreadOrder,
    limit: u32,
) -> Vec<StoredComment> {
    let mut seen: Vec<StoredComment> = Vec::new();
    loop {
        let cursor = seen.last().map(|last| ThreadCursor {
            root: last.root,
            path: last.path.clone(),
        });
        let page = store
            .thread_page(site, &key(article), order, cursor.as_ref(), limit)
            .await
            .expect("page");
        let page = &page.comments;
        assert!(page.len() <= limit as usize);
        let done = page.len() < limit as usize;
        seen.extend(page.iter().cloned());
        if done {
            return seen;
        }
    }
}

async fn thread_pages_list_approved_replies_under_their_parents_in_both_orders(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let approved = CommentStatus::Approved;

    // Three threads; in each, a reply, a reply to it, and a later second
    // reply to the top, plus replies that must not be listed.
    let mut threads = Vec::new();
    for _ in 0..3 {
        let top = comment(news, "story", None, approved);
        let reply = comment(news, "story", Some(&top), approved);
        let deeper = comment(news, "story", Some(&reply), approved);
        let pending = comment(news, "story", Some(&top), CommentStatus::Pending);
        let spam = comment(news, "story", Some(&reply), CommentStatus::Spam);
        let second = comment(news, "story", Some(&top), approved);
        for c in [&top, &reply, &deeper, &pending, &spam, &second] {
            insert(store.as_ref(), c).await;
        }
        threads.push(vec![top.id, reply.id, deeper.id, second.id]);
    }
    insert(
        store.as_ref(),
        &comment(news, "another-story", None, approved),
    )
    .await;
    insert(store.as_ref(), &comment(blog, "story", None, approved)).await;
    insert(
        store.as_ref(),
        &comment(news, "story", None, CommentStatus::Rejected),
    )
    .await;

    for (order, thread_order) in [
        (ThreadOrder::OldestFirst, [0, 1, 2]),
        (ThreadOrder::NewestFirst, [2, 1, 0]),
    ] {
        let expected: Vec<CommentId> = thread_order
            .iter()
            .flat_map(|&t| threads[t].clone())
            .collect();
        for limit in [1, 2, 5, 12, 50] {
            let seen = thread_pages(store.as_ref(), news, "story", order, limit).await;
            assert_eq!(ids(&seen), expected, "{order:?}, pages of {limit}");
            assert_eq!(
                seen.iter().take(4).map(|c| c.depth).collect::<Vec<_>>(),
                [0, 1, 2, 1]
            );
        }
    }
    // A page holds what the public sees, and nothing else is read.
    let first = &thread_pages(store.as_ref(), news, "story", ThreadOrder::OldestFirst, 50).await[0];
    assert_eq!(
        (first.author_name.as_str(), first.body_public.as_str()),
        ("Jane Reader", "A reply.")
    );
    assert_eq!(first.body_html, "<p>A reply.</p>");
    assert!(first.email_sealed.is_empty() && first.author_hash.is_empty());
    assert!(first.body.is_empty() && first.features.is_empty() && first.fingerprint.is_none());
    let nothing = store
        .thread_page(
            news,
            &key("no-such-story"),
            ThreadOrder::OldestFirst,
            None,
            10,
        )
        .await
        .expect("page");
    assert!(nothing.comments.is_empty());
}

async fn queue_pages_follow_ids_and_filter_by_status_and_article(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let mut pending = Vec::new();
    let mut pending_odd = Vec::new();
    for i in 0..9 {
        let article = if i % 2 == 0 { "even" } else { "odd" };
        let status = if i % 3 == 2 {
            CommentStatus::Spam
        } else {
            CommentStatus::Pending
        };
        let c = comment(news, article, None, status);
        insert(store.as_ref(), &c).await;
        if status == CommentStatus::Pending {
            pending.push(c.id);
            if article == "odd" {
                pending_odd.push(c.id);
            }
        }
    }
    insert(
        store.as_ref(),
        &comment(blog, "odd", None, CommentStatus::Pending),
    )
    .await;

    for (article, expected) in [(None, &pending), (Some("odd"), &pending_odd)] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .queue_page(
                    news,
                    CommentStatus::Pending,
                    article.map(key).as_ref(),
                    after,
                    2,
                )
                .await
                .expect("page");
            assert!(page.len() <= 2);
            after = page.last().map(|c| c.id);
            let done = page.len() < 2;
            seen.extend(ids(&page));
            if done {
                break;
            }
        }
        assert_eq!(&seen, expected, "{article:?}");
    }
    let spam = store
        .queue_page(news, CommentStatus::Spam, None, None, 50)
        .await
        .expect("spam");
    assert_eq!(spam.len(), 3);
    assert!(spam.iter().all(|c| c.status == CommentStatus::Spam));
    let approved = store
        .queue_page(news, CommentStatus::Approved, None, None, 50)
        .await
        .expect("approved");
    assert!(approved.is_empty());
}

async fn approved_comments_are_counted_per_article_and_per_author(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let by = |site, article: &str, status, author: u8| {
        let mut c = comment(site, article, None, status);
        c.author_hash = vec![author; 32];
        c
    };
    for c in [
        by(news, "a", CommentStatus::Approved, 1),
        by(news, "a", CommentStatus::Approved, 2),
        by(news, "a", CommentStatus::Pending, 1),
        by(news, "b", CommentStatus::Approved, 1),
        by(news, "c", CommentStatus::Spam, 1),
        by(blog, "a", CommentStatus::Approved, 1),
    ] {
        insert(store.as_ref(), &c).await;
    }

    let articles: Vec<String> = ["a", "b", "c", "d"].map(String::from).into();
    let keys: Vec<ArticleKey> = articles.iter().map(|a| key(a)).collect();
    let counts = store.count_approved(news, &keys).await.expect("count");
    assert_eq!(
        counts,
        HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 1)]),
        "articles without approved comments are left out"
    );
    assert!(
        store
            .count_approved(news, &[])
            .await
            .expect("count")
            .is_empty()
    );

    let approved = |site, hash: [u8; 32]| {
        let store = Arc::clone(&store);
        async move {
            store
                .facts(site, &about(&AuthorHash(hash), &key("a")), &[])
                .await
                .expect("facts")
                .author_approved
        }
    };
    assert_eq!(approved(news, [1; 32]).await, 2);
    assert_eq!(approved(news, [2; 32]).await, 1);
    assert_eq!(approved(news, [3; 32]).await, 0);
    assert_eq!(approved(blog, [1; 32]).await, 1);
}

async fn recent_replies_leave_out_the_authors_own_on_the_same_article(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let by = |site, article: &str, author: u8, print: u64| {
        let mut c = comment(site, article, None, CommentStatus::Approved);
        c.author_hash = vec![author; 32];
        c.fingerprint = Some(print);
        c
    };
    for c in [
        by(news, "story", 1, 11),
        by(news, "other-story", 1, 12),
        by(news, "story", 2, 21),
        by(blog, "story", 2, 31),
    ] {
        insert(store.as_ref(), &c).await;
    }
    let mut erased = by(news, "story", 3, 41);
    erased.author_hash = vec![0; 8];
    insert(store.as_ref(), &erased).await;

    let facts = store
        .facts(news, &about(&AuthorHash([1; 32]), &key("story")), &[])
        .await
        .expect("facts");
    let mut prints: Vec<u64> = facts.recent.iter().map(|r| r.fingerprint).collect();
    prints.sort_unstable();
    assert_eq!(
        prints,
        [12, 21],
        "another article's and another author's, not the author's own here, another site's or an erased author's"
    );
}

async fn every_action_moves_the_comment_and_leaves_an_audit_row(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    for (action, target) in [
        (Action::Approve, Some(CommentStatus::Approved)),
        (Action::Reject, Some(CommentStatus::Rejected)),
        (Action::MarkSpam, Some(CommentStatus::Spam)),
        (Action::MarkHam, Some(CommentStatus::Approved)),
        (Action::Delete, None),
    ] {
        let c = comment(news, "story", None, CommentStatus::Pending);
        insert(store.as_ref(), &c).await;
        let outcome = moderation::decide(
            &*store,
            &[news],
            &Decision {
                note: Some("checked twice"),
                ..decision(c.id, action)
            },
        )
        .await
        .expect("decide");
        assert_eq!(
            outcome,
            DecisionOutcome::Applied {
                from: CommentStatus::Pending,
                to: target
            },
            "{action:?}"
        );
        assert_eq!(status_of(store.as_ref(), c.id).await, target, "{action:?}");
        if let Some(target) = target {
            let read = store.comment(c.id).await.expect("read").expect("found");
            assert!(read.updated_at >= c.updated_at);
            assert_eq!(read.created_at, c.created_at);
            assert_eq!(read.status, target);
        }

        let history = store.history(c.id).await.expect("history");
        assert_eq!(history.len(), 2, "{action:?}");
        let submit = &history[0];
        assert_eq!(submit.action, "submit");
        assert_eq!(submit.actor, "rg_site_test1234");
        assert_eq!(submit.from_status, None);
        assert_eq!(submit.to_status, Some(CommentStatus::Pending));
        assert_eq!(submit.note, None);
        assert_eq!(submit.created_at, c.created_at);
        let decided = &history[1];
        assert_eq!(decided.comment, Some(c.id));
        assert_eq!(decided.action, action.as_str());
        assert_eq!(decided.actor, "rg_mod_test1234");
        assert_eq!(decided.from_status, Some(CommentStatus::Pending));
        assert_eq!(decided.to_status, target);
        assert_eq!(decided.note.as_deref(), Some("checked twice"));
        assert!(decided.id > submit.id, "oldest first");
    }
}

async fn a_decision_outside_the_moderators_sites_is_not_found(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let theirs = comment(blog, "story", None, CommentStatus::Pending);
    insert(store.as_ref(), &theirs).await;

    for action in [Action::Approve, Action::Delete] {
        let outcome = moderation::decide(&*store, &[news], &decision(theirs.id, action))
            .await
            .expect("decide");
        assert_eq!(outcome, DecisionOutcome::NotFound, "{action:?}");
    }
    let outcome = moderation::decide(
        &*store,
        &[news, blog],
        &decision(CommentId::new(), Action::Approve),
    )
    .await
    .expect("decide");
    assert_eq!(outcome, DecisionOutcome::NotFound, "an unknown id");

    assert_eq!(
        status_of(store.as_ref(), theirs.id).await,
        Some(CommentStatus::Pending)
    );
    assert_eq!(store.history(theirs.id).await.expect("history").len(), 1);
}

async fn a_decision_expecting_another_status_is_a_conflict_and_changes_nothing(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let c = comment(news, "story", None, CommentStatus::Spam);
    insert(store.as_ref(), &c).await;

    let outcome = moderation::decide(
        &*store,
        &[news],
        &Decision {
            expected: Some(CommentStatus::Pending),
            ..decision(c.id, Action::Delete)
        },
    )
    .await
    .expect("decide");
    assert_eq!(
        outcome,
        DecisionOutcome::Conflict {
            actual: CommentStatus::Spam
        }
    );
    assert_eq!(
        status_of(store.as_ref(), c.id).await,
        Some(CommentStatus::Spam)
    );
    assert_eq!(store.history(c.id).await.expect("history").len(), 1);

    let outcome = moderation::decide(
        &*store,
        &[news],
        &Decision {
            expected: Some(CommentStatus::Spam),
            ..decision(c.id, Action::MarkHam)
        },
    )
    .await
    .expect("decide");
    assert_eq!(
        outcome,
        DecisionOutcome::Applied {
            from: CommentStatus::Spam,
            to: Some(CommentStatus::Approved)
        }
    );
}

async fn two_decisions_on_one_comment_at_once_apply_one_after_the_other(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    for _ in 0..10 {
        let c = comment(news, "story", None, CommentStatus::Pending);
        insert(store.as_ref(), &c).await;
        let expecting_pending = |action| Decision {
            expected: Some(CommentStatus::Pending),
            ..decision(c.id, action)
        };
        let approve = expecting_pending(Action::Approve);
        let spam = expecting_pending(Action::MarkSpam);
        let sites = [news];
        let (first, second) = tokio::join!(
            moderation::decide(&*store, &sites, &approve),
            moderation::decide(&*store, &sites, &spam),
        );
        let outcomes = [first.expect("first"), second.expect("second")];
        let applied: Vec<_> = outcomes
            .iter()
            .filter_map(|o| match o {
                DecisionOutcome::Applied { to, .. } => Some(*to),
                _ => None,
            })
            .collect();
        assert_eq!(applied.len(), 1, "exactly one applies: {outcomes:?}");
        let winner = applied[0].expect("a status");
        assert!(
            outcomes.contains(&DecisionOutcome::Conflict { actual: winner }),
            "the other sees the winner's status: {outcomes:?}"
        );
        assert_eq!(status_of(store.as_ref(), c.id).await, Some(winner));
        assert_eq!(store.history(c.id).await.expect("history").len(), 2);
    }
}

async fn deleting_a_comment_keeps_its_replies_and_its_history(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let top = comment(news, "story", None, CommentStatus::Approved);
    let reply = comment(news, "story", Some(&top), CommentStatus::Approved);
    let other = comment(news, "story", Some(&top), CommentStatus::Pending);
    for c in [&top, &reply, &other] {
        insert(store.as_ref(), c).await;
    }

    let outcome = moderation::decide(&*store, &[news], &decision(top.id, Action::Delete))
        .await
        .expect("decide");
    assert_eq!(
        outcome,
        DecisionOutcome::Applied {
            from: CommentStatus::Approved,
            to: None
        }
    );
    assert!(store.comment(top.id).await.expect("read").is_none());
    for child in [&reply, &other] {
        let read = store.comment(child.id).await.expect("read").expect("kept");
        assert_eq!(read.parent, None, "the parent is gone");
        assert_eq!(read.root, top.id);
        assert_eq!(read.path, child.path);
    }
    let history = store.history(top.id).await.expect("history");
    let actions: Vec<&str> = history.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["submit", "delete"],
        "the record outlives the comment"
    );

    let again = moderation::decide(&*store, &[news], &decision(top.id, Action::Delete))
        .await
        .expect("decide");
    assert_eq!(again, DecisionOutcome::NotFound);
}

async fn opening_a_migrated_database_again_keeps_its_data(backend: Backend) {
    let (db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    drop(store);

    let reopened = store::open(&db.url).await.expect("opens again");
    let found = reopened
        .site_by_name("news.example.com")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(found.id, news);
}

async fn a_database_migrated_by_a_newer_replyguard_is_refused(backend: Backend) {
    let (db, store) = open(backend).await;
    drop(store);
    let future = "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                  execution_time) VALUES (20990101000000, 'from the future', TRUE, ";
    match backend {
        Backend::Sqlite => db.execute(&format!("{future}X'00', 0)")).await,
        Backend::Postgres => db.execute(&format!("{future}'\\x00'::bytea, 0)")).await,
    }

    // Twice: a refused run must not leave the migration lock held.
    for _ in 0..2 {
        let refused = store::open(&db.url).await;
        let Err(err) = refused else {
            panic!("a database with a newer schema was opened");
        };
        assert!(
            matches!(err, StoreError::SchemaTooNew(20990101000000)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the database schema is newer than this replyguard (migration 20990101000000); \
             upgrade replyguard"
        );
    }
}

/// Reasons an earlier release wrote with personal data in them (the client's address, an
/// email's domain, a blocked author's hash) read as today's rules write them once the
/// database is migrated; a website's domain, which is public, and every other reason stay.
async fn reasons_written_with_personal_data_lose_it_on_migration(backend: Backend) {
    let (db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let reason = |rule: &str, text: &str| Reason {
        rule: rule.to_owned(),
        weight: 10.0,
        reason: text.to_owned(),
        log_only: false,
    };
    let mut old = comment(news, "story", None, CommentStatus::Spam);
    old.reasons = vec![
        reason("links", "3 links"),
        reason(
            "blocked-ip",
            "address 198.51.100.7 is blocked (198.51.100.0/24)",
        ),
        reason(
            "blocked-email-domain",
            "email domain mail.spam.example is blocked",
        ),
        reason(
            "moderator-block",
            &format!("blocked by a moderator: author {}", "ab".repeat(32)),
        ),
    ];
    let mut other = comment(news, "story", None, CommentStatus::Spam);
    other.reasons = vec![
        reason("moderator-block", "blocked by a moderator: ip 203.0.113.9"),
        reason(
            "moderator-block",
            "blocked by a moderator: email-domain spam.example",
        ),
        reason(
            "moderator-block",
            "blocked by a moderator: website-domain shop.example",
        ),
    ];
    insert(store.as_ref(), &old).await;
    insert(store.as_ref(), &other).await;
    drop(store);
    db.execute("DELETE FROM _sqlx_migrations WHERE version = 13")
        .await;

    let store = store::open(&db.url).await.expect("migrates again");
    let texts = async |id| {
        let comment = store.comment(id).await.expect("read").expect("kept");
        comment
            .reasons
            .into_iter()
            .map(|r| (r.rule, r.reason))
            .collect::<Vec<_>>()
    };
    let pair = |rule: &str, text: &str| (rule.to_owned(), text.to_owned());
    assert_eq!(
        texts(old.id).await,
        [
            pair("links", "3 links"),
            pair(
                "blocked-ip",
                "the client's address is on the site's blocklist"
            ),
            pair(
                "blocked-email-domain",
                "the email's domain is on the site's blocklist"
            ),
            pair("moderator-block", "blocked by a moderator: author"),
        ]
    );
    assert_eq!(
        texts(other.id).await,
        [
            pair("moderator-block", "blocked by a moderator: ip"),
            pair("moderator-block", "blocked by a moderator: email-domain"),
            pair(
                "moderator-block",
                "blocked by a moderator: website-domain shop.example"
            ),
        ]
    );
}

/// Many inserts at once (on SQLite they share transactions): each answer
/// is that comment's own, a reused idempotency key fails alone, and every
/// other comment is stored with its audit row.
async fn concurrent_inserts_are_answered_each_on_its_own(backend: Backend) {
    let (_db, store) = open(backend).await;
    let site = site(store.as_ref(), "news.example.com").await;
    let mut comments: Vec<StoredComment> = (0..64)
        .map(|_| comment(site, "story", None, CommentStatus::Pending))
        .collect();
    comments[10].idempotency_key = Some("twice".to_owned());
    comments[11].idempotency_key = Some("twice".to_owned());
    let tasks: Vec<_> = comments
        .iter()
        .cloned()
        .map(|c| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { (c.id, store.insert_comment(&c, "test").await) })
        })
        .collect();
    let mut refused = Vec::new();
    for task in tasks {
        let (id, result) = task.await.expect("task");
        match result {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(_)) => refused.push(id),
            Err(other) => panic!("{id}: {other}"),
        }
    }
    assert_eq!(refused.len(), 1, "exactly one of the two keys loses");
    for c in &comments {
        let stored = store.comment(c.id).await.expect("read");
        let history = store.history(c.id).await.expect("history");
        if refused.contains(&c.id) {
            assert!(stored.is_none(), "the refused comment is not stored");
            assert!(history.is_empty(), "nor its audit row");
        } else {
            assert_eq!(stored.expect("stored").body, c.body);
            assert_eq!(history.len(), 1, "one submit row");
        }
    }
}

async fn actions(store: &dyn Store, site: SiteId) -> Vec<(String, String, Option<String>)> {
    store
        .audit_page(site, None, None, None, 500)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| (r.action, r.actor, r.note))
        .collect()
}

async fn a_token_keeps_its_scopes_and_its_changes_are_audited_on_each_site(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let (secret, mut record) = token(Role::Moderator, "rg_mod_Scoped12", &[news, blog]);
    record.scopes = vec![Scope::Moderate, Scope::Erase];
    store.insert_token(&record).await.expect("insert");
    let (key_secret, key) = token(Role::Host, "rg_site_Plain123", &[news]);
    store.insert_token(&key).await.expect("insert");

    let found = store
        .credential(&token_digest(&secret))
        .await
        .expect("read")
        .expect("live");
    assert_eq!(found.scopes, [Scope::Moderate, Scope::Erase]);
    assert!(found.has_scope(Scope::Erase));
    assert!(!found.has_scope(Scope::RevealEmail));
    let site_key = store
        .credential(&token_digest(&key_secret))
        .await
        .expect("read")
        .expect("live");
    assert!(site_key.scopes.is_empty(), "a site key has no scopes");

    assert_eq!(
        store.revoke_tokens("rg_mod_Scoped").await.expect("revoke"),
        1
    );
    for site in [news, blog] {
        let mut log = actions(store.as_ref(), site).await;
        log.retain(|(_, _, note)| {
            note.as_deref()
                .is_some_and(|n| n.contains("rg_mod_Scoped12"))
        });
        assert_eq!(
            log,
            [
                (
                    "token_revoke".to_owned(),
                    "operator".to_owned(),
                    Some("rg_mod_Scoped12 (moderator)".to_owned())
                ),
                (
                    "token_issue".to_owned(),
                    "operator".to_owned(),
                    Some("rg_mod_Scoped12 (moderator: moderate, erase)".to_owned())
                ),
            ]
        );
    }
    let news_log = actions(store.as_ref(), news).await;
    assert!(
        news_log
            .iter()
            .any(|(action, _, note)| action == "token_issue"
                && note.as_deref() == Some("rg_site_Plain123 (host)")),
        "{news_log:?}"
    );
    assert!(
        !actions(store.as_ref(), blog)
            .await
            .iter()
            .any(|(_, _, note)| note
                .as_deref()
                .is_some_and(|n| n.contains("rg_site_Plain123"))),
        "a site's log holds only its own tokens"
    );
}

async fn revoking_nothing_leaves_no_audit_row(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    assert_eq!(
        store
            .revoke_tokens("rg_mod_Nobody99")
            .await
            .expect("revoke"),
        0
    );
    assert!(actions(store.as_ref(), news).await.is_empty());
}

async fn the_audit_log_pages_newest_first_by_site_and_by_comment(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let first = comment(news, "story", None, CommentStatus::Pending);
    let second = comment(news, "story", None, CommentStatus::Pending);
    let theirs = comment(blog, "story", None, CommentStatus::Pending);
    for c in [&first, &second, &theirs] {
        insert(store.as_ref(), c).await;
    }
    moderation::decide(&*store, &[news], &decision(first.id, Action::Approve))
        .await
        .expect("decide");
    moderation::decide(&*store, &[blog], &decision(theirs.id, Action::Reject))
        .await
        .expect("decide");
    store
        .record_access(&Access {
            site: news,
            kind: AccessKind::RevealEmail,
            comment: Some(second.id),
            actor: "rg_mod_test1234",
            note: "a legal request",
        })
        .await
        .expect("access");

    // Newest first: reveal(second), approve(first), submit(second), submit(first).
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .audit_page(news, None, None, before, 3)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page.into_iter().map(|r| (r.action, r.comment)));
    }
    assert_eq!(
        seen,
        [
            ("reveal_email".to_owned(), Some(second.id)),
            ("approve".to_owned(), Some(first.id)),
            ("submit".to_owned(), Some(second.id)),
            ("submit".to_owned(), Some(first.id)),
        ]
    );

    let one = store
        .audit_page(news, Some(second.id), None, None, 50)
        .await
        .expect("one comment");
    let actions: Vec<&str> = one.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["reveal_email", "submit"]);
    assert_eq!(one[0].note.as_deref(), Some("a legal request"));
    assert!(
        store
            .audit_page(news, Some(theirs.id), None, None, 50)
            .await
            .expect("foreign")
            .is_empty(),
        "another site's comment is not in this site's log"
    );
    let history = store.history(second.id).await.expect("history");
    assert_eq!(
        history.last().map(|r| r.action.as_str()),
        Some("reveal_email")
    );
}

/// A comment by `author` with every personal datum filled in.
fn personal(site: SiteId, author: [u8; 32], status: CommentStatus) -> StoredComment {
    StoredComment {
        author_hash: author.to_vec(),
        author_website: Some("https://jane.example/".to_owned()),
        ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("Mozilla/5.0".to_owned()),
        referrer: Some("https://news.example.com/story".to_owned()),
        body: "Mail me at jane@example.com.".to_owned(),
        body_public: "Mail me at [email hidden].".to_owned(),
        body_html: "<p>Mail me at [email hidden].</p>".to_owned(),
        reasons: vec![Reason {
            rule: "links".to_owned(),
            weight: 1.5,
            reason: "links to jane.example".to_owned(),
            log_only: false,
        }],
        idempotency_key: Some(format!("form-{}", CommentId::new())),
        reader_hash: Some(vec![7; 32]),
        ..comment(site, "story", None, status)
    }
}

async fn erasing_an_author_anonymises_each_of_their_comments_with_one_audit_row(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let jane = AuthorHash([1; 32]);
    let ours = [
        personal(news, jane.0, CommentStatus::Approved),
        personal(news, jane.0, CommentStatus::Pending),
    ];
    let someone_else = personal(news, [2; 32], CommentStatus::Approved);
    let elsewhere = personal(blog, jane.0, CommentStatus::Approved);
    for c in ours.iter().chain([&someone_else, &elsewhere]) {
        insert(store.as_ref(), c).await;
    }

    let erasure = Erasure {
        site: news,
        author_hash: &jane,
        remove_bodies: false,
        actor: "rg_mod_test1234",
    };
    assert_eq!(store.erase_author(&erasure).await.expect("erase"), 2);

    let mut hashes = HashSet::new();
    for before in &ours {
        let after = store.comment(before.id).await.expect("read").expect("kept");
        assert_eq!(after.author_name, ERASED_NAME);
        assert!(after.email_sealed.is_empty());
        assert_ne!(after.author_hash, jane.0);
        assert_eq!(after.author_hash.len(), 32);
        hashes.insert(after.author_hash.clone());
        assert_eq!(after.avatar_seed, "");
        assert_eq!(after.author_website, None);
        assert_eq!(after.ip, None);
        assert_eq!(after.user_agent, None);
        assert_eq!(after.referrer, None);
        assert_eq!(after.idempotency_key, None);
        assert_eq!(after.reader_hash, None, "nor the host's reader");
        assert_eq!(
            after.fingerprint, None,
            "nothing derived from the words stays"
        );
        assert!(after.features.is_empty());
        assert_eq!(
            after.body, "Mail me at [email hidden].",
            "the masked text stays"
        );
        assert_eq!(after.body_public, before.body_public);
        assert_eq!(after.reasons[0].rule, "links");
        assert_eq!(after.reasons[0].weight, 1.5);
        assert_eq!(after.reasons[0].reason, ERASED_REASON);
        assert_eq!(after.status, before.status);
        assert_eq!(after.path, before.path);
    }
    assert_eq!(hashes.len(), 2, "erased comments do not link to each other");
    for untouched in [&someone_else, &elsewhere] {
        let read = store
            .comment(untouched.id)
            .await
            .expect("read")
            .expect("kept");
        assert_eq!(read.author_name, untouched.author_name);
        assert_eq!(read.ip, untouched.ip);
        assert_eq!(read.email_sealed, untouched.email_sealed);
        assert_eq!(read.reader_hash, untouched.reader_hash);
    }
    assert!(
        store
            .comments_by_author(news, &jane)
            .await
            .expect("by author")
            .is_empty()
    );
    assert_eq!(
        store
            .comments_by_author(blog, &jane)
            .await
            .expect("by author")
            .len(),
        1,
        "another site's comments are another site's"
    );
    let log: Vec<_> = actions(store.as_ref(), news)
        .await
        .into_iter()
        .filter(|(action, _, _)| action == "erase_author")
        .collect();
    assert_eq!(
        log,
        [(
            "erase_author".to_owned(),
            "rg_mod_test1234".to_owned(),
            Some("2 comments anonymised, text kept".to_owned())
        )]
    );

    let removing = Erasure {
        site: blog,
        author_hash: &jane,
        remove_bodies: true,
        actor: "rg_mod_test1234",
    };
    assert_eq!(store.erase_author(&removing).await.expect("erase"), 1);
    let read = store
        .comment(elsewhere.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(read.body, REMOVED_TEXT);
    assert_eq!(read.body_public, REMOVED_TEXT);
    assert!(!read.body_html.contains("Mail me"));
}

async fn a_block_is_listed_once_and_rejects_only_the_pending_replies_it_picks(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let from = |site, ip: &str, status| StoredComment {
        ip: Some(ip.to_owned()),
        ..comment(site, "story", None, status)
    };
    let pending = from(news, "203.0.113.7", CommentStatus::Pending);
    let approved = from(news, "203.0.113.7", CommentStatus::Approved);
    let other_ip = from(news, "198.51.100.1", CommentStatus::Pending);
    let other_site = from(blog, "203.0.113.7", CommentStatus::Pending);
    for c in [&pending, &approved, &other_ip, &other_site] {
        insert(store.as_ref(), c).await;
    }
    let blocked = Blocked::parse(BlockKind::Ip, "203.0.113.7").expect("an address");
    let picks = |c: &StoredComment| {
        blocked.matches(&BlockSubject {
            author_hash: &c.author_hash,
            ip: c.ip.as_deref(),
            ..BlockSubject::default()
        })
    };
    let block = NewBlock {
        site: news,
        blocked: &blocked,
        actor: "rg_mod_test1234",
        note: Some("flooding"),
        expires_at: None,
    };

    let outcome = store.block(&block, Some(&picks)).await.expect("block");
    assert!(outcome.added);
    assert_eq!(outcome.rejected, [pending.id]);
    assert_eq!(outcome.entry.blocked, blocked);
    assert_eq!(outcome.entry.actor, "rg_mod_test1234");
    assert_eq!(
        status_of(store.as_ref(), pending.id).await,
        Some(CommentStatus::Rejected)
    );
    for (c, status) in [
        (&approved, CommentStatus::Approved),
        (&other_ip, CommentStatus::Pending),
        (&other_site, CommentStatus::Pending),
    ] {
        assert_eq!(status_of(store.as_ref(), c.id).await, Some(status));
    }
    let history = store.history(pending.id).await.expect("history");
    let rejected = history.last().expect("a row");
    assert_eq!(rejected.action, "reject");
    assert_eq!(rejected.from_status, Some(CommentStatus::Pending));
    assert_eq!(rejected.to_status, Some(CommentStatus::Rejected));
    assert_eq!(
        rejected.note.as_deref(),
        Some("blocked ip 203.0.113.7: flooding")
    );

    let again = store.block(&block, None).await.expect("block again");
    assert!(!again.added, "listed once");
    assert_eq!(again.entry.created_at, outcome.entry.created_at);
    let blocks: Vec<_> = actions(store.as_ref(), news)
        .await
        .into_iter()
        .filter(|(action, _, _)| action == "block")
        .collect();
    assert_eq!(blocks.len(), 1, "one row for one entry: {blocks:?}");
    assert_eq!(blocks[0].2.as_deref(), Some("ip 203.0.113.7: flooding"));

    let listed = store.blocklist(news, None, 100).await.expect("blocklist");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].blocked, blocked);
    assert!(
        store
            .blocklist(blog, None, 100)
            .await
            .expect("blocklist")
            .is_empty()
    );
}

/// A reply meets the entries of its site's blocklist that match it, and no other, among many.
async fn a_reply_finds_only_the_blocklist_entries_that_match_it(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let author = "07".repeat(32);
    let many: Vec<String> = (0..300)
        .map(|n| format!("10.0.{}.{}", n / 256, n % 256))
        .collect();
    let entries = [
        (news, BlockKind::Ip, "203.0.113.7"),
        (news, BlockKind::Ip, "2001:db8::1"),
        (news, BlockKind::EmailDomain, "example.com"),
        (news, BlockKind::EmailDomain, "ample.com"),
        (news, BlockKind::WebsiteDomain, "pills.example"),
        (news, BlockKind::WebsiteDomain, "shop.pills.example.org"),
        (news, BlockKind::Author, author.as_str()),
        (blog, BlockKind::Ip, "198.51.100.1"),
    ]
    .into_iter()
    .chain(many.iter().map(|ip| (news, BlockKind::Ip, ip.as_str())));
    for (site, kind, value) in entries {
        let blocked = Blocked::parse(kind, value).expect("an entry");
        let block = NewBlock {
            site,
            blocked: &blocked,
            actor: "rg_mod_test1234",
            note: None,
            expires_at: None,
        };
        store.block(&block, None).await.expect("block");
    }

    let reply = BlockSubject {
        author_hash: &[7; 32],
        ip: Some("2001:0db8:0::1"),
        email: Some("jane@Mail.Example.com"),
        website: Some("https://shop.pills.example/buy"),
    };
    let found = store.blocks_matching(news, &reply).await.expect("lookup");
    let matching: Vec<_> = store
        .blocklist(news, None, 1000)
        .await
        .expect("blocklist")
        .into_iter()
        .filter(|entry| entry.blocked.matches(&reply))
        .collect();
    assert_eq!(found, matching, "the same entries, in the same order");
    let values: Vec<String> = found.iter().map(|e| e.blocked.to_string()).collect();
    assert_eq!(values.len(), 4, "{values:?}");

    let elsewhere = BlockSubject {
        author_hash: &[8; 32],
        ip: Some("198.51.100.1"),
        email: Some("jane@ample.org"),
        website: Some("https://pills.example.org/"),
    };
    let none = store
        .blocks_matching(news, &elsewhere)
        .await
        .expect("lookup");
    assert!(none.is_empty(), "{none:?}");
    let on_blog = store
        .blocks_matching(blog, &elsewhere)
        .await
        .expect("lookup");
    assert_eq!(on_blog.len(), 1, "the address is blocked on the blog only");
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a time")
        .with_timezone(&Utc)
}

async fn the_sweep_drops_old_client_details_and_expires_old_pending_replies(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let now = at("2026-03-31T12:00:00.123456Z");
    let aged = |days: i64, status| {
        let created = now - TimeDelta::days(days);
        StoredComment {
            ip: Some("203.0.113.7".to_owned()),
            user_agent: Some("Mozilla/5.0".to_owned()),
            referrer: Some("https://news.example.com/".to_owned()),
            idempotency_key: Some(format!("{status:?}-{days}")),
            created_at: created,
            updated_at: created,
            ..comment(news, "story", None, status)
        }
    };
    let old_pending = aged(40, CommentStatus::Pending);
    let old_approved = aged(40, CommentStatus::Approved);
    let waiting = aged(25, CommentStatus::Pending);
    let recent = aged(10, CommentStatus::Pending);
    // Sent with nothing but an idempotency key: its key goes all the same.
    let keyed_only = StoredComment {
        ip: None,
        user_agent: None,
        referrer: None,
        ..aged(40, CommentStatus::Spam)
    };
    for c in [&old_pending, &old_approved, &waiting, &recent, &keyed_only] {
        insert(store.as_ref(), c).await;
    }

    let retention = Retention {
        client_details_days: 30,
        expire_pending_days: Some(20),
        delete_spam_days: None,
    };
    let report = store
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep");
    assert_eq!(
        report,
        SweepReport {
            client_details_dropped: 3,
            expired: 2,
            spam_deleted: 0,
            form_nonces_dropped: 0,
            blocks_ended: 0,
            mails_dropped: 0,
        }
    );
    for c in [&old_pending, &old_approved, &keyed_only] {
        let read = store.comment(c.id).await.expect("read").expect("kept");
        assert_eq!(
            (
                read.ip,
                read.user_agent,
                read.referrer,
                read.idempotency_key
            ),
            (None, None, None, None)
        );
        let key = c.idempotency_key.as_deref().expect("a key");
        let by_key = store.comment_by_idempotency_key(news, key).await;
        assert!(by_key.expect("lookup").is_none(), "{key} is gone");
    }
    for c in [&waiting, &recent] {
        let read = store.comment(c.id).await.expect("read").expect("kept");
        assert_eq!(read.ip, c.ip, "younger than the retention period");
        assert_eq!(read.idempotency_key, c.idempotency_key);
        let key = c.idempotency_key.as_deref().expect("a key");
        let by_key = store.comment_by_idempotency_key(news, key).await;
        assert_eq!(by_key.expect("lookup").map(|found| found.id), Some(c.id));
    }
    for c in [&old_pending, &waiting] {
        let read = store.comment(c.id).await.expect("read").expect("kept");
        assert_eq!(read.status, CommentStatus::Rejected);
        assert_eq!(read.updated_at, now);
        let history = store.history(c.id).await.expect("history");
        let expired = history.last().expect("a row");
        assert_eq!(expired.action, "expire");
        assert_eq!(expired.actor, "system");
        assert_eq!(expired.note.as_deref(), Some("expired"));
        assert_eq!(expired.from_status, Some(CommentStatus::Pending));
        assert_eq!(expired.to_status, Some(CommentStatus::Rejected));
        assert_eq!(expired.created_at, now);
    }
    assert_eq!(
        status_of(store.as_ref(), old_approved.id).await,
        Some(CommentStatus::Approved),
        "only pending replies expire"
    );
    assert_eq!(
        status_of(store.as_ref(), recent.id).await,
        Some(CommentStatus::Pending)
    );

    let again = store
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep again");
    assert_eq!(
        again,
        SweepReport::default(),
        "a second sweep finds nothing"
    );
    assert_eq!(
        store.history(old_pending.id).await.expect("history").len(),
        2
    );
}

async fn without_an_expiry_the_sweep_leaves_pending_replies_waiting(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let now = at("2026-03-31T12:00:00Z");
    let created = now - TimeDelta::days(400);
    let ancient = StoredComment {
        created_at: created,
        updated_at: created,
        ..comment(news, "story", None, CommentStatus::Pending)
    };
    let ancient_spam = StoredComment {
        created_at: created,
        updated_at: created,
        ..comment(news, "story", None, CommentStatus::Spam)
    };
    insert(store.as_ref(), &ancient).await;
    insert(store.as_ref(), &ancient_spam).await;
    let keep = Retention {
        client_details_days: 30,
        expire_pending_days: None,
        delete_spam_days: None,
    };
    let report = store.sweep(now, &keep.cutoffs(now)).await.expect("sweep");
    assert_eq!(report, SweepReport::default());
    assert_eq!(
        status_of(store.as_ref(), ancient.id).await,
        Some(CommentStatus::Pending)
    );
    assert_eq!(
        status_of(store.as_ref(), ancient_spam.id).await,
        Some(CommentStatus::Spam),
        "spam is kept for good unless told otherwise"
    );
}

async fn the_sweep_deletes_spam_that_sat_in_the_spam_queue_long_enough(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let now = at("2026-03-31T12:00:00.123456Z");
    let aged = |site, created: i64, changed: i64, status| StoredComment {
        created_at: now - TimeDelta::days(created),
        updated_at: now - TimeDelta::days(changed),
        ..comment(site, "story", None, status)
    };
    let old_spam = aged(news, 40, 20, CommentStatus::Spam);
    // Sent 40 days ago, marked spam by a moderator 5 days ago: its days
    // count from then.
    let lately_marked = aged(news, 40, 5, CommentStatus::Spam);
    let old_approved = aged(news, 40, 40, CommentStatus::Approved);
    let old_rejected = aged(news, 40, 40, CommentStatus::Rejected);
    let old_pending = aged(news, 40, 40, CommentStatus::Pending);
    let on_the_blog = aged(blog, 30, 16, CommentStatus::Spam);
    let reply_to_spam = StoredComment {
        created_at: now - TimeDelta::days(19),
        updated_at: now - TimeDelta::days(19),
        ..comment(news, "story", Some(&old_spam), CommentStatus::Approved)
    };
    for c in [
        &old_spam,
        &lately_marked,
        &old_approved,
        &old_rejected,
        &old_pending,
        &on_the_blog,
        &reply_to_spam,
    ] {
        insert(store.as_ref(), c).await;
    }

    let retention = Retention {
        client_details_days: 30,
        expire_pending_days: None,
        delete_spam_days: Some(15),
    };
    let report = store
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep");
    assert_eq!(report.spam_deleted, 2, "{report:?}");
    assert_eq!(report.expired, 0);
    for (c, site) in [(&old_spam, news), (&on_the_blog, blog)] {
        assert!(store.comment(c.id).await.expect("read").is_none());
        let history = store.history(c.id).await.expect("history");
        let deleted = history.last().expect("the record outlives the reply");
        assert_eq!(
            (
                deleted.action.as_str(),
                deleted.actor.as_str(),
                deleted.note.as_deref()
            ),
            ("delete", "system", Some("spam retention"))
        );
        assert_eq!(deleted.from_status, Some(CommentStatus::Spam));
        assert_eq!(deleted.to_status, None);
        assert_eq!(deleted.created_at, now);
        let audit = store
            .audit_page(site, Some(c.id), None, None, 10)
            .await
            .expect("audit");
        assert_eq!(
            audit.len(),
            history.len(),
            "written on the reply's own site"
        );
    }
    for (c, status) in [
        (&lately_marked, CommentStatus::Spam),
        (&old_approved, CommentStatus::Approved),
        (&old_rejected, CommentStatus::Rejected),
        (&old_pending, CommentStatus::Pending),
        (&reply_to_spam, CommentStatus::Approved),
    ] {
        assert_eq!(status_of(store.as_ref(), c.id).await, Some(status));
    }
    let orphan = store
        .comment(reply_to_spam.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(orphan.parent, None, "the parent is gone");
    let queue = store
        .queue_page(news, CommentStatus::Spam, None, None, 10)
        .await
        .expect("queue");
    let left: Vec<_> = queue.iter().map(|c| c.id).collect();
    assert_eq!(left, [lately_marked.id]);

    let again = store
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep again");
    assert_eq!(
        again,
        SweepReport::default(),
        "a second sweep finds nothing"
    );
}

/// An approved answer to a reply later marked spam is listed with its
/// parent; once the sweep deletes the spam, a cached page must not still
/// name it.
async fn deleting_spam_drops_the_cached_pages_of_its_answers(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let options = StoreOptions {
        caches: Some(1 << 20),
        ..StoreOptions::default()
    };
    let cached = store::open_with(&db.url, &options)
        .await
        .expect("store opens");
    let news = site(cached.as_ref(), "news.example.com").await;
    let now = store::now();
    let marked = now - TimeDelta::days(20);
    let spam = StoredComment {
        created_at: marked,
        updated_at: marked,
        ..comment(news, "story", None, CommentStatus::Spam)
    };
    let answer = comment(news, "story", Some(&spam), CommentStatus::Approved);
    for c in [&spam, &answer] {
        insert(cached.as_ref(), c).await;
    }
    let parents = || async {
        let page = cached
            .thread_page(news, &key("story"), ThreadOrder::OldestFirst, None, 10)
            .await
            .expect("page");
        page.comments.iter().map(|c| c.parent).collect::<Vec<_>>()
    };
    assert_eq!(parents().await, [Some(spam.id)]);
    assert_eq!(parents().await, [Some(spam.id)], "now from memory");

    let retention = Retention {
        client_details_days: 30,
        expire_pending_days: None,
        delete_spam_days: Some(15),
    };
    let report = cached
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep");
    assert_eq!(report.spam_deleted, 1);
    assert_eq!(parents().await, [None], "the parent is gone");
}

/// More than one batch of each: the sweep keeps going until none is left.
async fn the_sweep_works_through_a_backlog_in_batches(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let now = at("2026-03-31T12:00:00Z");
    let created = now - TimeDelta::days(90);
    for _ in 0..1100 {
        let c = StoredComment {
            ip: Some("203.0.113.7".to_owned()),
            created_at: created,
            updated_at: created,
            ..comment(news, "story", None, CommentStatus::Pending)
        };
        insert(store.as_ref(), &c).await;
    }
    for _ in 0..600 {
        let c = StoredComment {
            created_at: created,
            updated_at: created,
            ..comment(news, "story", None, CommentStatus::Spam)
        };
        insert(store.as_ref(), &c).await;
    }
    let retention = Retention {
        client_details_days: 30,
        expire_pending_days: Some(30),
        delete_spam_days: Some(30),
    };
    let report = store
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep");
    assert_eq!(
        report,
        SweepReport {
            client_details_dropped: 1100,
            expired: 1100,
            spam_deleted: 600,
            form_nonces_dropped: 0,
            blocks_ended: 0,
            mails_dropped: 0,
        }
    );
    for status in [CommentStatus::Pending, CommentStatus::Spam] {
        let left = store
            .queue_page(news, status, None, None, 10)
            .await
            .expect("queue");
        assert!(left.is_empty(), "{status:?}");
    }
}

/// A used form token's nonce is kept while the token can still be sent, so that it is
/// accepted once, and forgotten after; more than one batch of them.
async fn the_sweep_forgets_the_nonces_of_expired_form_tokens(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let blog = site(store.as_ref(), "blog.example.com").await;
    let nonces: Vec<[u8; 16]> = (0u16..1100)
        .map(|n| {
            let mut nonce = [7u8; 16];
            nonce[..2].copy_from_slice(&n.to_le_bytes());
            nonce
        })
        .collect();
    for nonce in &nonces {
        assert!(store.use_form_nonce(news, nonce).await.expect("use"));
    }
    assert!(store.use_form_nonce(blog, &nonces[0]).await.expect("use"));
    let retention = Retention {
        client_details_days: 30,
        expire_pending_days: None,
        delete_spam_days: None,
    };

    let now = store::now();
    let report = store
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep");
    assert_eq!(report, SweepReport::default(), "every token is still good");
    assert!(!store.use_form_nonce(news, &nonces[0]).await.expect("use"));

    let later =
        now + TimeDelta::from_std(FORM_NONCE_RETENTION).expect("days") + TimeDelta::seconds(1);
    let report = store
        .sweep(later, &retention.cutoffs(later))
        .await
        .expect("sweep");
    assert_eq!(report.form_nonces_dropped, 1101);
    assert!(
        store.use_form_nonce(news, &nonces[0]).await.expect("use"),
        "forgotten: its token is refused as expired before its nonce is looked at"
    );
    let again = store
        .sweep(now, &retention.cutoffs(now))
        .await
        .expect("sweep");
    assert_eq!(again, SweepReport::default(), "the one used since is kept");
}

async fn texts_an_earlier_release_kept_are_kept_again_in_batches_and_only_once(backend: Backend) {
    let (db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let public = "Call [phone hidden].";
    let mut clear = Vec::new();
    for _ in 0..1100 {
        let c = StoredComment {
            body: "Call 020 7946 0958.".to_owned(),
            body_public: public.to_owned(),
            ..comment(news, "story", None, CommentStatus::Pending)
        };
        insert(store.as_ref(), &c).await;
        clear.push(c.id);
    }
    // Listed by migration 0005 for an `@` the earlier masking let through.
    let missed = StoredComment {
        body: "Mail _ann@example.org_".to_owned(),
        body_public: "Mail _ann@example.org_".to_owned(),
        ..comment(news, "story", None, CommentStatus::Approved)
    };
    insert(store.as_ref(), &missed).await;
    db.execute(
        "INSERT INTO texts_to_check (comment_id) SELECT id FROM comments WHERE body LIKE 'Mail%'",
    )
    .await;
    let sealed_already = StoredComment {
        body: public.to_owned(),
        body_sealed: Some(b"sealed before".to_vec()),
        body_public: public.to_owned(),
        ..comment(news, "story", None, CommentStatus::Pending)
    };
    insert(store.as_ref(), &sealed_already).await;
    let plain = comment(news, "story", None, CommentStatus::Pending);
    insert(store.as_ref(), &plain).await;

    // Stands in for `KeptText::new`: what it keeps is easy to recognise.
    let keep = |site: SiteId, id: CommentId, raw: &str| {
        assert_eq!(site, news);
        KeptText {
            body: format!("clear {raw}"),
            body_sealed: Some(format!("{id}:{raw}").into_bytes()),
            body_public: format!("public {raw}"),
            body_html: format!("html {raw}"),
        }
    };
    assert_eq!(store.keep_texts_again(&keep).await.expect("keep"), 1101);
    assert_eq!(store.keep_texts_again(&keep).await.expect("keep"), 0);

    for (id, raw) in [
        (clear[0], "Call 020 7946 0958."),
        (clear[1099], "Call 020 7946 0958."),
        (missed.id, "Mail _ann@example.org_"),
    ] {
        let read = store.comment(id).await.expect("read").expect("found");
        assert_eq!(
            (
                read.body,
                read.body_sealed,
                read.body_public,
                read.body_html
            ),
            (
                format!("clear {raw}"),
                Some(format!("{id}:{raw}").into_bytes()),
                format!("public {raw}"),
                format!("html {raw}")
            )
        );
    }
    for untouched in [&sealed_already, &plain] {
        let read = store
            .comment(untouched.id)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(
            (read.body, read.body_sealed, read.body_public),
            (
                untouched.body.clone(),
                untouched.body_sealed.clone(),
                untouched.body_public.clone()
            )
        );
    }
}

/// What `facts` is asked about a reply by `author_hash` under `article`, from no address.
fn about<'a>(author_hash: &'a AuthorHash, article: &'a ArticleKey) -> FactsAbout<'a> {
    FactsAbout {
        author_hash,
        article,
        ip: None,
        body_public: "",
    }
}

/// The learned (spam, ham) totals and per-feature weights of `site` for the
/// features of [`comment`].
async fn learned(store: &dyn Store, site: SiteId) -> ((f32, f32), Vec<(f32, f32)>) {
    let facts = store
        .facts(
            site,
            &about(&AuthorHash([0xcd; 32]), &key("story")),
            &[1, 2, 3],
        )
        .await
        .expect("facts");
    let learned = facts.learned;
    let features = [1, 2, 3].iter().map(|f| learned.get(*f)).collect();
    ((learned.spam, learned.ham), features)
}

async fn a_reversed_decision_takes_its_earlier_lesson_back(backend: Backend) {
    let (_db, store) = open(backend).await;
    let site = site(&*store, "news.example.com").await;
    let reply = comment(site, "/a", None, CommentStatus::Pending);
    insert(&*store, &reply).await;

    moderation::decide(&*store, &[site], &decision(reply.id, Action::MarkSpam))
        .await
        .expect("mark spam");
    assert_eq!(
        learned(&*store, site).await,
        ((1.0, 0.0), vec![(1.0, 0.0); 3])
    );

    // The moderator changes their mind: the reply now teaches ham alone.
    moderation::decide(&*store, &[site], &decision(reply.id, Action::MarkHam))
        .await
        .expect("mark ham");
    assert_eq!(
        learned(&*store, site).await,
        ((0.0, 1.0), vec![(0.0, 1.0); 3])
    );

    // A decision that leaves the reply where it is teaches nothing new.
    moderation::decide(&*store, &[site], &decision(reply.id, Action::Approve))
        .await
        .expect("approve again");
    assert_eq!(
        learned(&*store, site).await,
        ((0.0, 1.0), vec![(0.0, 1.0); 3])
    );

    // Rejecting it later replaces the ham lesson with the weaker spam one.
    moderation::decide(&*store, &[site], &decision(reply.id, Action::Reject))
        .await
        .expect("reject");
    assert_eq!(
        learned(&*store, site).await,
        ((REVIEW_WEIGHT, 0.0), vec![(REVIEW_WEIGHT, 0.0); 3])
    );

    // Taken back exactly, among other lessons of the same words: a second reply marked ham
    // and a third approved, whose approval is then reversed, leave the second's lesson as it
    // was, to the last bit, in PostgreSQL's `real` as in SQLite's `REAL`.
    let second = comment(site, "/b", None, CommentStatus::Pending);
    let third = comment(site, "/c", None, CommentStatus::Pending);
    for reply in [&second, &third] {
        insert(&*store, reply).await;
    }
    for (id, action) in [
        (second.id, Action::MarkHam),
        (third.id, Action::Approve),
        (third.id, Action::MarkSpam),
        (third.id, Action::MarkHam),
        (third.id, Action::Reject),
    ] {
        moderation::decide(&*store, &[site], &decision(id, action))
            .await
            .expect("decide");
    }
    let taught = (REVIEW_WEIGHT + REVIEW_WEIGHT, 1.0);
    assert_eq!(learned(&*store, site).await, (taught, vec![taught; 3]));
}

/// A block that rejects a long queue reads it in batches and misses none of it: every pending
/// reply of the address, past the first batch too, and none it skipped in an earlier batch.
async fn a_block_rejects_a_queue_longer_than_one_batch(backend: Backend) {
    let (_db, store) = open(backend).await;
    let news = site(store.as_ref(), "news.example.com").await;
    let replies: Vec<StoredComment> = (0..1_203)
        .map(|i| StoredComment {
            // Every third one from another address: kept pending between the rejected ones.
            ip: Some(
                if i % 3 == 0 {
                    "198.51.100.1"
                } else {
                    "203.0.113.7"
                }
                .to_owned(),
            ),
            ..comment(news, "story", None, CommentStatus::Pending)
        })
        .collect();
    store
        .seed_comments(&replies, "rg_site_test1234")
        .await
        .expect("seed");
    let blocked = Blocked::parse(BlockKind::Ip, "203.0.113.7").expect("an address");
    let picks = |c: &StoredComment| c.ip.as_deref() == Some("203.0.113.7");
    let block = NewBlock {
        site: news,
        blocked: &blocked,
        actor: "rg_mod_test1234",
        note: None,
        expires_at: None,
    };
    let outcome = store.block(&block, Some(&picks)).await.expect("block");
    let mut expected: Vec<CommentId> = replies.iter().filter(|c| picks(c)).map(|c| c.id).collect();
    expected.sort_unstable_by_key(|id| id.0);
    let mut rejected = outcome.rejected.clone();
    rejected.sort_unstable_by_key(|id| id.0);
    assert_eq!(rejected.len(), 802);
    assert_eq!(rejected, expected);
    let still_pending = store
        .queue_page(news, CommentStatus::Pending, None, None, 2_000)
        .await
        .expect("queue");
    assert_eq!(still_pending.len(), 401);
}

backend_tests!(
    a_block_rejects_a_queue_longer_than_one_batch,
    concurrent_inserts_are_answered_each_on_its_own,
    a_reversed_decision_takes_its_earlier_lesson_back,
    a_token_keeps_its_scopes_and_its_changes_are_audited_on_each_site,
    revoking_nothing_leaves_no_audit_row,
    the_audit_log_pages_newest_first_by_site_and_by_comment,
    erasing_an_author_anonymises_each_of_their_comments_with_one_audit_row,
    a_block_is_listed_once_and_rejects_only_the_pending_replies_it_picks,
    the_sweep_drops_old_client_details_and_expires_old_pending_replies,
    without_an_expiry_the_sweep_leaves_pending_replies_waiting,
    the_sweep_deletes_spam_that_sat_in_the_spam_queue_long_enough,
    deleting_spam_drops_the_cached_pages_of_its_answers,
    the_sweep_works_through_a_backlog_in_batches,
    a_reply_finds_only_the_blocklist_entries_that_match_it,
    the_sweep_forgets_the_nonces_of_expired_form_tokens,
    texts_an_earlier_release_kept_are_kept_again_in_batches_and_only_once,
    a_site_is_found_by_name_and_by_id_with_its_policy,
    a_policy_update_is_stored_with_its_audit_row,
    a_site_name_is_taken_only_once,
    a_token_is_found_by_its_digest_with_every_site_it_covers,
    revoking_by_prefix_ends_exactly_the_matching_live_tokens,
    a_tokens_use_is_recorded_at_most_once_a_minute,
    a_comment_reads_back_with_every_field_as_written,
    an_idempotency_key_is_unique_within_one_site_only,
    a_reply_to_a_closed_article_is_refused_by_the_transaction_that_would_store_it,
    thread_pages_list_approved_replies_under_their_parents_in_both_orders,
    queue_pages_follow_ids_and_filter_by_status_and_article,
    approved_comments_are_counted_per_article_and_per_author,
    recent_replies_leave_out_the_authors_own_on_the_same_article,
    every_action_moves_the_comment_and_leaves_an_audit_row,
    a_decision_outside_the_moderators_sites_is_not_found,
    a_decision_expecting_another_status_is_a_conflict_and_changes_nothing,
    two_decisions_on_one_comment_at_once_apply_one_after_the_other,
    deleting_a_comment_keeps_its_replies_and_its_history,
    opening_a_migrated_database_again_keeps_its_data,
    a_database_migrated_by_a_newer_replyguard_is_refused,
    reasons_written_with_personal_data_lose_it_on_migration,
);

/// Needs no PostgreSQL: nothing listens on port 1.
#[tokio::test]
async fn a_postgres_store_that_cannot_connect_fails_fast_as_unavailable() {
    let options = StoreOptions {
        acquire_timeout: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let started = Instant::now();
    let result = store::open_with("postgres://postgres@127.0.0.1:1/test", &options).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up after {:?}",
        started.elapsed()
    );
}
