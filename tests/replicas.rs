//! Several replicas of `replyguard serve` on one PostgreSQL: what one
//! replica does, every other sees.

mod common;

use std::time::Duration;

use common::{Backend, Harness, TestSite, approve, reply, watcher::Watcher};
use replyguard::{
    domain::{ERASED_NAME, Scope},
    proto::{self, CommentStatus},
    server::RunningServer,
    spam::{Mode, Policy},
};

/// Replica A with its harness, replica B on the same PostgreSQL database, and
/// a site that holds every reply for a moderator.
async fn two_replicas() -> (Harness, RunningServer, TestSite) {
    let a = Harness::new(Backend::Postgres).await;
    let b = a.replica().await;
    let moderate_all = Policy {
        mode: Mode::ModerateAll,
        ..Policy::default()
    };
    let site = a.site_with("news.example.com", moderate_all).await;
    (a, b, site)
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn two_replicas_share_submissions_decisions_and_live_queues() {
    let (a, b, site) = two_replicas().await;

    // A moderator watches on A; readers post through B.
    let mut watch = a.watch(&site.mod_token).await;
    let mut comments_b = Harness::comments_at(&b, &site.site_key).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let submitted = comments_b
            .submit_comment(common::reply_by(
                "story",
                &format!("Posted through B, {i}."),
                &format!("Reader {i}"),
                &format!("reader{i}@example.com"),
            ))
            .await
            .expect("submit on B")
            .into_inner();
        assert_eq!(submitted.status(), CommentStatus::Pending);
        ids.push(submitted.comment.expect("comment").id);
    }
    for id in &ids {
        let heard = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .expect("A hears of B's reply within 10 s")
            .expect("stream")
            .expect("an item")
            .item
            .expect("item");
        assert_eq!(&heard.comment.expect("comment").id, id);
    }

    // Decided on B, listed on A.
    let mut moderation_b = Harness::moderation_at(&b, &site.mod_token).await;
    approve(&mut moderation_b, &ids[..2]).await;
    let listed = a
        .comments(&site.site_key)
        .await
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("list on A")
        .into_inner();
    let listed: Vec<String> = listed.comments.into_iter().map(|c| c.id).collect();
    assert_eq!(listed, ids[..2]);

    // A decision on A about what B decided sees B's decision.
    let results = a
        .moderation(&site.mod_token)
        .await
        .moderate(proto::ModerateRequest {
            ids: vec![ids[0].clone()],
            action: proto::ModerationAction::Reject.into(),
            expected_status: Some(CommentStatus::Pending.into()),
            ..Default::default()
        })
        .await
        .expect("moderate on A")
        .into_inner()
        .results;
    assert_eq!(results[0].code, tonic::Code::FailedPrecondition as i32);
    assert_eq!(results[0].status(), CommentStatus::Approved);

    // A reply on A is listed by B once approved on A.
    let id = a
        .comments(&site.site_key)
        .await
        .submit_comment(reply("story", "Posted through A."))
        .await
        .expect("submit on A")
        .into_inner()
        .comment
        .expect("comment")
        .id;
    approve(
        &mut a.moderation(&site.mod_token).await,
        std::slice::from_ref(&id),
    )
    .await;
    let counts = comments_b
        .count_comments(proto::CountCommentsRequest {
            articles: vec!["story".into()],
        })
        .await
        .expect("count on B")
        .into_inner()
        .counts;
    assert_eq!(counts.get("story"), Some(&3));

    // A flood limit holds across replicas: a reader who posted through B
    // cannot post again at once through A.
    let status = a
        .comments(&site.site_key)
        .await
        .submit_comment(common::reply_by(
            "story",
            "Again, through the other replica.",
            "Reader 0",
            "reader0@example.com",
        ))
        .await
        .expect_err("refused as a flood");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    b.shutdown().await.expect("B stops");
}

/// Reads `article` on `comments` until its listing is `expected`, for at
/// most 10 s: another replica's change arrives as a notification.
async fn until_listed(comments: &mut common::Comments, article: &str, expected: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = comments
            .list_comments(proto::ListCommentsRequest {
                article: article.into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        let ids: Vec<String> = listed.comments.into_iter().map(|c| c.id).collect();
        if ids == expected {
            assert_eq!(listed.total_count, expected.len() as u64);
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed {ids:?} under {article}, not {expected:?}"
        );
        common::poll_pause().await;
    }
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn a_decision_on_one_replica_reaches_the_others_cached_threads() {
    let (a, b, site) = two_replicas().await;
    let mut comments_a = a.comments(&site.site_key).await;
    let mut moderation_b = Harness::moderation_at(&b, &site.mod_token).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = comments_a
            .submit_comment(common::reply_by(
                "story",
                &format!("Reply number {i}."),
                &format!("Reader {i}"),
                &format!("reader{i}@example.com"),
            ))
            .await
            .expect("submit on A")
            .into_inner()
            .comment
            .expect("comment")
            .id;
        ids.push(id);
    }
    // A caches the empty thread, then hears of every change made on B.
    until_listed(&mut comments_a, "story", &[]).await;
    approve(&mut moderation_b, &ids[..2]).await;
    until_listed(&mut comments_a, "story", &ids[..2]).await;
    common::decide(
        &mut moderation_b,
        proto::ModerationAction::Reject,
        &ids[..1],
    )
    .await;
    until_listed(&mut comments_a, "story", &ids[1..2]).await;
    let counts = comments_a
        .count_comments(proto::CountCommentsRequest {
            articles: vec!["story".into()],
        })
        .await
        .expect("count on A")
        .into_inner()
        .counts;
    assert_eq!(counts.get("story"), Some(&1));

    // A new approved reply through B, under the default policy.
    a.store
        .update_policy(site.id, "test", &mut |_| {
            Some((Policy::default(), "mode".to_owned()))
        })
        .await
        .expect("policy");
    let id = Harness::comments_at(&b, &site.site_key)
        .await
        .submit_comment(reply("story", "Approved on arrival, through B."))
        .await
        .expect("submit on B")
        .into_inner()
        .comment
        .expect("comment")
        .id;
    until_listed(&mut comments_a, "story", &[ids[1].clone(), id]).await;

    // An erasure through B.
    let eraser = a.moderator_token(&[site.id], &[Scope::Erase]).await;
    Harness::moderation_at(&b, &eraser)
        .await
        .erase_author(proto::EraseAuthorRequest {
            email: "reader1@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("erase on B");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = comments_a
            .list_comments(proto::ListCommentsRequest {
                article: "story".into(),
                ..Default::default()
            })
            .await
            .expect("list on A")
            .into_inner()
            .comments;
        if listed[0].author_name == ERASED_NAME {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A still shows {:?}",
            listed[0].author_name
        );
        common::poll_pause().await;
    }
    b.shutdown().await.expect("B stops");
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn closing_an_article_on_one_replica_reaches_the_others() {
    let (a, b, site) = two_replicas().await;
    let mut comments_a = a.comments(&site.site_key).await;
    let closed_on_a = |comments: &mut common::Comments| {
        let mut comments = comments.clone();
        async move {
            comments
                .list_comments(proto::ListCommentsRequest {
                    article: "story".into(),
                    ..Default::default()
                })
                .await
                .expect("list on A")
                .into_inner()
                .closed
        }
    };
    // A caches the article as open, then hears that B closed it.
    assert!(!closed_on_a(&mut comments_a).await);
    assert!(!closed_on_a(&mut comments_a).await);
    Harness::moderation_at(&b, &site.mod_token)
        .await
        .close_article(proto::CloseArticleRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("close on B");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !closed_on_a(&mut comments_a).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A still lists the article as open"
        );
        common::poll_pause().await;
    }
    let status = comments_a
        .submit_comment(reply("story", "Through A, after B closed it."))
        .await
        .expect_err("closed on every replica");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    b.shutdown().await.expect("B stops");
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn an_edit_and_an_age_limit_on_one_replica_reach_the_others_cached_threads() {
    let (a, b, site) = two_replicas().await;
    let mut comments_a = a.comments(&site.site_key).await;
    let mut comments_b = Harness::comments_at(&b, &site.site_key).await;
    let mut moderation_b = Harness::moderation_at(&b, &site.mod_token).await;
    let update = |policy: proto::Policy| proto::UpdatePolicyRequest {
        policy: Some(policy),
        ..Default::default()
    };
    moderation_b
        .update_policy(update(proto::Policy {
            edit_window_seconds: Some(600),
            ..Default::default()
        }))
        .await
        .expect("an edit window");
    let sent = comments_a
        .submit_comment(reply("story", "Words as sent."))
        .await
        .expect("submit on A")
        .into_inner();
    let id = sent.comment.expect("comment").id;
    approve(
        &mut a.moderation(&site.mod_token).await,
        std::slice::from_ref(&id),
    )
    .await;
    until_listed(&mut comments_a, "story", std::slice::from_ref(&id)).await;

    // Every reply waits on this site, so the edit on B holds it again: A stops listing it.
    let edited = comments_b
        .edit_comment(proto::EditCommentRequest {
            comment_id: id.clone(),
            author_token: sent.author_token,
            body: "Words as edited.".into(),
        })
        .await
        .expect("edit on B")
        .into_inner();
    assert_eq!(edited.status(), CommentStatus::Pending);
    until_listed(&mut comments_a, "story", &[]).await;

    // A keeps the article's clock as open; an age limit set on B closes it there too.
    let closed_on_a = |comments: &mut common::Comments| {
        let mut comments = comments.clone();
        async move {
            comments
                .list_comments(proto::ListCommentsRequest {
                    article: "story".into(),
                    ..Default::default()
                })
                .await
                .expect("list on A")
                .into_inner()
                .closed
        }
    };
    assert!(!closed_on_a(&mut comments_a).await);
    a.db.execute(
        "UPDATE article_dates SET first_reply_at = '2000-01-01 00:00:00+00:00' \
         WHERE article = 'story'",
    )
    .await;
    assert!(
        !closed_on_a(&mut comments_a).await,
        "A reads its cached clock"
    );
    moderation_b
        .update_policy(update(proto::Policy {
            close_after_days: Some(30),
            ..Default::default()
        }))
        .await
        .expect("an age limit");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !closed_on_a(&mut comments_a).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A still lists the article as open"
        );
        common::poll_pause().await;
    }
    b.shutdown().await.expect("B stops");
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn a_lost_notification_connection_drops_the_cached_threads() {
    let h = Harness::new(Backend::Postgres).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let mut submit = async |article: &str, text: &str| {
        common::submitted(&mut comments, reply(article, text))
            .await
            .0
    };
    let id = submit("story", "Approved on arrival.").await;
    let other = submit("other", "Approved on arrival too.").await;
    until_listed(&mut comments, "other", std::slice::from_ref(&other)).await;

    // The replies' own notifications may still be on their way and drop the
    // pages when they land. Notifications arrive in order, so once one sent
    // after them has dropped "other", they have all been heard.
    h.db.execute(&format!(
        "UPDATE comments SET status = 'rejected' WHERE id = '{other}'"
    ))
    .await;
    h.db.execute(
        "SELECT pg_notify('replyguard_' || current_schema(), \
             'listing ' || (SELECT id::text FROM sites WHERE name = 'news.example.com') || ' other')",
    )
    .await;
    until_listed(&mut comments, "other", &[]).await;
    until_listed(&mut comments, "story", std::slice::from_ref(&id)).await;

    // A change no replica announces: the cached page is stale now...
    h.db.execute(&format!(
        "UPDATE comments SET status = 'rejected' WHERE id = '{id}'"
    ))
    .await;
    until_listed(&mut comments, "story", std::slice::from_ref(&id)).await;
    // ...until the server loses its notifications, which drops every page
    // it kept: what was said meanwhile went unheard.
    h.db.drop_notifications().await;
    until_listed(&mut comments, "story", &[]).await;
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn a_watch_ends_with_unavailable_when_notifications_are_lost() {
    let (a, b, site) = two_replicas().await;
    let mut watch = a.watch(&site.mod_token).await;
    // Heard while A listens.
    let id = Harness::comments_at(&b, &site.site_key)
        .await
        .submit_comment(reply("story", "Posted through B."))
        .await
        .expect("submit on B")
        .into_inner()
        .comment
        .expect("comment")
        .id;
    let heard = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("A hears of B's reply within 10 s")
        .expect("stream")
        .and_then(|response| response.item)
        .and_then(|item| item.comment)
        .expect("an item");
    assert_eq!(heard.id, id);

    // A loses its notifications: what B commits until A listens again goes
    // unheard, so A's watcher is told to list the queue and watch again
    // rather than left to think it heard everything.
    a.db.drop_notifications().await;
    let status = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the watch ends within 10 s")
        .expect_err("the watch ends with an error");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("list the pending queue"),
        "{status:?}"
    );
    assert!(watch.message().await.expect("ended").is_none());
}

// Several threads: the test blocks on the watcher's output while the servers run.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn replyctl_watch_catches_up_when_notifications_are_lost() {
    let (a, b, site) = two_replicas().await;
    let mut watcher = Watcher::start(&a.endpoint(), &site.mod_token);
    let mut comments_b = Harness::comments_at(&b, &site.site_key).await;
    let mut submit_on_b = async |text: &str| {
        common::submitted(&mut comments_b, reply("story", text))
            .await
            .0
    };
    let mut next_id = |which: &str| {
        let item = watcher.next_item(Duration::from_secs(20), which);
        item["comment"]["id"].as_str().expect("an id").to_owned()
    };

    let first = submit_on_b("Heard while A listens.").await;
    assert_eq!(next_id("first reply"), first);

    // A loses its notifications; the reply B takes meanwhile (or just after)
    // is told all the same, once, and the one told before is not told again.
    a.db.drop_notifications().await;
    let second = submit_on_b("Committed while A may not hear it.").await;
    assert_eq!(next_id("second reply"), second);
    let third = submit_on_b("Heard once A watches again.").await;
    assert_eq!(next_id("third reply"), third);

    let said = watcher.stop();
    assert!(said.contains("catching up"), "{said}");
}
