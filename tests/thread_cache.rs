//! Approved threads served from memory: every change a reader could see is
//! in the next listing and count, however small the cache.

mod common;

use common::{Backend, Comments, Harness, Moderation, approve, backend_tests, decide, reply_by};
use replyguard::{
    domain::{ERASED_NAME, REMOVED_TEXT, Scope},
    proto::{self, BlockKind, ModerationAction},
    spam::{Mode, Policy},
};

fn moderate_all() -> Policy {
    Policy {
        mode: Mode::ModerateAll,
        ..Policy::default()
    }
}

/// The ids listed under `article`, and the total the listing states.
async fn listed(comments: &mut Comments, article: &str) -> (Vec<String>, u64) {
    let listed = comments
        .list_comments(proto::ListCommentsRequest {
            article: article.to_owned(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    (
        listed.comments.into_iter().map(|c| c.id).collect(),
        listed.total_count,
    )
}

async fn counted(comments: &mut Comments, article: &str) -> u64 {
    comments
        .count_comments(proto::CountCommentsRequest {
            articles: vec![article.to_owned()],
        })
        .await
        .expect("count")
        .into_inner()
        .counts
        .get(article)
        .copied()
        .unwrap_or_default()
}

/// Lists twice (the second from memory where it is kept) and counts; all
/// three must agree with `expected`.
async fn assert_listed(comments: &mut Comments, article: &str, expected: &[&String]) {
    for _ in 0..2 {
        let (ids, total) = listed(comments, article).await;
        let ids: Vec<&String> = ids.iter().collect();
        assert_eq!(ids, expected, "listed under {article}");
        assert_eq!(total, expected.len() as u64, "total under {article}");
    }
    assert_eq!(
        counted(comments, article).await,
        expected.len() as u64,
        "count of {article}"
    );
}

async fn submit(comments: &mut Comments, article: &str, body: &str, email: &str) -> String {
    let request = reply_by(article, body, "Jane Reader", email);
    common::submitted(comments, request).await.0
}

async fn act(moderation: &mut Moderation, action: ModerationAction, id: &str) {
    decide(moderation, action, &[id.to_owned()]).await;
}

async fn a_cached_thread_follows_every_decision(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let a = submit(&mut comments, "story", "The first reply.", "a@example.com").await;
    let b = submit(&mut comments, "story", "A second view.", "b@example.com").await;
    let c = submit(&mut comments, "story", "Third, and last.", "c@example.com").await;
    assert_listed(&mut comments, "story", &[]).await;

    approve(&mut moderation, &[a.clone(), b.clone()]).await;
    assert_listed(&mut comments, "story", &[&a, &b]).await;
    act(&mut moderation, ModerationAction::Reject, &a).await;
    assert_listed(&mut comments, "story", &[&b]).await;
    act(&mut moderation, ModerationAction::Approve, &c).await;
    assert_listed(&mut comments, "story", &[&b, &c]).await;
    act(&mut moderation, ModerationAction::MarkSpam, &c).await;
    assert_listed(&mut comments, "story", &[&b]).await;
    act(&mut moderation, ModerationAction::MarkHam, &c).await;
    assert_listed(&mut comments, "story", &[&b, &c]).await;
    act(&mut moderation, ModerationAction::Delete, &b).await;
    assert_listed(&mut comments, "story", &[&c]).await;
}

async fn a_new_approved_reply_is_listed_at_once(backend: Backend) {
    let h = Harness::new(backend).await;
    // The default policy approves clean replies as they arrive.
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    assert_listed(&mut comments, "story", &[]).await;
    assert_listed(&mut comments, "other", &[]).await;

    let first = submit(
        &mut comments,
        "story",
        "Approved on arrival.",
        "a@example.com",
    )
    .await;
    assert_listed(&mut comments, "story", &[&first]).await;
    assert_listed(&mut comments, "other", &[]).await;
    let second = submit(&mut comments, "story", "Also approved.", "b@example.com").await;
    assert_listed(&mut comments, "story", &[&first, &second]).await;
}

async fn a_cached_thread_shows_an_erasure_at_once(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let jane = submit(&mut comments, "story", "Mine, for now.", "jane@example.com").await;
    let bob = submit(&mut comments, "other", "Bob's reply.", "bob@example.com").await;
    approve(&mut moderation, &[jane.clone(), bob.clone()]).await;
    assert_listed(&mut comments, "story", &[&jane]).await;
    assert_listed(&mut comments, "other", &[&bob]).await;

    let eraser = h.moderator_token(&[site.id], &[Scope::Erase]).await;
    h.moderation(&eraser)
        .await
        .erase_author(proto::EraseAuthorRequest {
            email: "jane@example.com".into(),
            remove_bodies: true,
            ..Default::default()
        })
        .await
        .expect("erase");

    for _ in 0..2 {
        let shown = comments
            .list_comments(proto::ListCommentsRequest {
                article: "story".into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .comments;
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].author_name, ERASED_NAME);
        assert_eq!(shown[0].body, REMOVED_TEXT);
    }
    assert_listed(&mut comments, "other", &[&bob]).await;
}

async fn a_cached_thread_stays_right_through_a_block_that_rejects_pending(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let kept = submit(
        &mut comments,
        "story",
        "An approved reply.",
        "jane@spam.example",
    )
    .await;
    let held = submit(&mut comments, "story", "A held reply.", "bob@spam.example").await;
    approve(&mut moderation, std::slice::from_ref(&kept)).await;
    assert_listed(&mut comments, "story", &[&kept]).await;

    let blocked = moderation
        .block(proto::BlockRequest {
            kind: BlockKind::EmailDomain.into(),
            value: "spam.example".into(),
            reject_pending: true,
            ..Default::default()
        })
        .await
        .expect("block")
        .into_inner();
    assert_eq!(blocked.rejected_ids, vec![held.clone()]);
    assert_listed(&mut comments, "story", &[&kept]).await;
    // A moderator may still overrule the block.
    approve(&mut moderation, std::slice::from_ref(&held)).await;
    assert_listed(&mut comments, "story", &[&kept, &held]).await;
}

async fn a_small_cache_answers_right_for_many_articles(backend: Backend) {
    // A few KiB: far less than the articles below need, so they evict each
    // other all the time.
    let h = Harness::configured(backend, |settings| settings.thread_cache_kib = 4).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let mut threads = Vec::new();
    for article in 0..12 {
        let mut ids = Vec::new();
        for n in 0..2 {
            let body = format!("Reply {n} under article {article}: {}", "words ".repeat(40));
            let email = format!("reader{article}.{n}@example.com");
            ids.push(submit(&mut comments, &format!("a{article}"), &body, &email).await);
        }
        approve(&mut moderation, &ids).await;
        threads.push(ids);
    }
    for _ in 0..2 {
        for (article, ids) in threads.iter().enumerate() {
            let expected: Vec<&String> = ids.iter().collect();
            assert_listed(&mut comments, &format!("a{article}"), &expected).await;
        }
    }
    let all: Vec<String> = (0..12).map(|article| format!("a{article}")).collect();
    let counts = comments
        .count_comments(proto::CountCommentsRequest {
            articles: all.clone(),
        })
        .await
        .expect("count")
        .into_inner()
        .counts;
    assert!(all.iter().all(|article| counts.get(article) == Some(&2)));

    act(&mut moderation, ModerationAction::Reject, &threads[0][0]).await;
    assert_listed(&mut comments, "a0", &[&threads[0][1]]).await;
    let expected: Vec<&String> = threads[11].iter().collect();
    assert_listed(&mut comments, "a11", &expected).await;
}

async fn without_a_cache_every_read_goes_to_the_database(backend: Backend) {
    let h = Harness::configured(backend, |settings| settings.thread_cache_kib = 0).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let id = submit(&mut comments, "story", "Uncached.", "a@example.com").await;
    assert_listed(&mut comments, "story", &[]).await;
    approve(&mut moderation, std::slice::from_ref(&id)).await;
    assert_listed(&mut comments, "story", &[&id]).await;
}

/// Whether a server answers listings from memory, told apart by a change it cannot hear: a
/// second process deciding on the same SQLite file (which a deployment never does: one process
/// owns the file, so its own changes are all the news). A server with a cache keeps listing the
/// page it read; one without reads the change.
async fn listed_after_a_change_behind_the_servers_back(cache_kib: u32) -> usize {
    let h = Harness::configured(Backend::Sqlite, |settings| {
        settings.thread_cache_kib = cache_kib;
    })
    .await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let id = submit(&mut comments, "story", "Read once.", "a@example.com").await;
    approve(&mut moderation, std::slice::from_ref(&id)).await;
    assert_listed(&mut comments, "story", &[&id]).await;

    let elsewhere = replyguard::store::open(&h.settings.database.url)
        .await
        .expect("a second process's store");
    let site_id = elsewhere
        .site_by_name("news.example.com")
        .await
        .expect("site")
        .expect("the site")
        .id;
    let outcome = replyguard::moderation::decide(
        &*elsewhere,
        &[site_id],
        &replyguard::moderation::Decision {
            comment: id.parse().expect("a comment id"),
            action: replyguard::domain::Action::Reject,
            actor: "elsewhere",
            note: None,
            expected: None,
        },
    )
    .await
    .expect("decide");
    assert!(matches!(
        outcome,
        replyguard::domain::DecisionOutcome::Applied { .. }
    ));
    listed(&mut comments, "story").await.0.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_serves_from_memory_and_none_reads_the_database() {
    assert_eq!(
        listed_after_a_change_behind_the_servers_back(1024).await,
        1,
        "a cached server lists the page it read"
    );
    assert_eq!(
        listed_after_a_change_behind_the_servers_back(0).await,
        0,
        "a server without a cache reads the change"
    );
}

backend_tests!(
    a_cached_thread_follows_every_decision,
    a_new_approved_reply_is_listed_at_once,
    a_cached_thread_shows_an_erasure_at_once,
    a_cached_thread_stays_right_through_a_block_that_rejects_pending,
    a_small_cache_answers_right_for_many_articles,
    without_a_cache_every_read_goes_to_the_database,
);
