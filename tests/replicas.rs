//! Several replicas of `replyguard serve` on one PostgreSQL: what one
//! replica does, every other sees.

mod common;

use std::time::Duration;

use common::{Backend, Harness, approve, reply};
use replyguard::{
    proto::{self, CommentStatus},
    spam::{Mode, Policy},
};

#[tokio::test]
async fn two_replicas_share_submissions_decisions_and_live_queues() {
    if !common::postgres_available(
        "replicas::two_replicas_share_submissions_decisions_and_live_queues",
    )
    .await
    {
        return;
    }
    let a = Harness::new(Backend::Postgres).await;
    let b = a.replica().await;
    let site = a
        .site_with(
            "news.example.com",
            Policy {
                mode: Mode::ModerateAll,
                ..Policy::default()
            },
        )
        .await;

    // A moderator watches on A; readers post through B.
    let mut watch = a
        .moderation(&site.mod_token)
        .await
        .watch_queue(proto::WatchQueueRequest::default())
        .await
        .expect("watch on A")
        .into_inner();
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
