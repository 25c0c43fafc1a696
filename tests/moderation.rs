//! The `Moderation` API and credentials: who may see and decide what.

mod common;

use common::{Backend, Harness, backend_tests, bad_fields, decide, reply};
use replyguard::{
    proto::{self, CommentStatus, ModerationAction},
    spam::{Mode, Policy},
};
use tonic::Code;

fn moderate_all() -> Policy {
    Policy {
        mode: Mode::ModerateAll,
        ..Policy::default()
    }
}

async fn submit(h: &Harness, key: &str, article: &str, body: &str) -> String {
    h.comments(key)
        .await
        .submit_comment(reply(article, body))
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment")
        .id
}

async fn status_of(moderation: &mut common::Moderation, id: &str) -> CommentStatus {
    moderation
        .get_comment(proto::GetCommentRequest { id: id.into() })
        .await
        .expect("get")
        .into_inner()
        .comment
        .expect("item")
        .comment
        .expect("comment")
        .status()
}

async fn missing_and_wrong_credentials_are_unauthenticated(backend: Backend) {
    let h = Harness::new(backend).await;
    h.site("news.example.com").await;

    let status = h
        .comments_without_token()
        .await
        .submit_comment(reply("a", "hi"))
        .await
        .expect_err("no credential");
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = h
        .comments("rg_site_not-a-real-key")
        .await
        .submit_comment(reply("a", "hi"))
        .await
        .expect_err("wrong credential");
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = h
        .moderation("rg_mod_not-a-real-token")
        .await
        .list_queue(proto::ListQueueRequest::default())
        .await
        .expect_err("wrong credential");
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn a_credential_works_only_for_its_own_service(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;

    let status = h
        .comments(&site.mod_token)
        .await
        .submit_comment(reply("a", "hi"))
        .await
        .expect_err("a moderator token is not a site key");
    assert_eq!(status.code(), Code::PermissionDenied);

    let status = h
        .moderation(&site.site_key)
        .await
        .list_queue(proto::ListQueueRequest::default())
        .await
        .expect_err("a site key is not a moderator token");
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn a_revoked_token_stops_working(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    comments
        .submit_comment(reply("a", "before"))
        .await
        .expect("works before revocation");

    let prefix: String = site.site_key.chars().take(16).collect();
    assert_eq!(h.store.revoke_tokens(&prefix).await.expect("revoke"), 1);

    let status = comments
        .submit_comment(reply("a", "after"))
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn no_credential_reaches_another_sites_comments(backend: Backend) {
    let h = Harness::new(backend).await;
    let ours = h.site_with("ours.example.com", moderate_all()).await;
    let theirs = h.site_with("theirs.example.com", moderate_all()).await;
    let their_comment = submit(&h, &theirs.site_key, "story", "Their reply.").await;
    let mut our_moderation = h.moderation(&ours.mod_token).await;

    let status = our_moderation
        .get_comment(proto::GetCommentRequest {
            id: their_comment.clone(),
        })
        .await
        .expect_err("another site's comment");
    assert_eq!(status.code(), Code::NotFound);

    let status = our_moderation
        .list_queue(proto::ListQueueRequest {
            site: theirs.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("another site's queue");
    assert_eq!(status.code(), Code::PermissionDenied);

    let results = our_moderation
        .moderate(proto::ModerateRequest {
            ids: vec![their_comment.clone()],
            action: ModerationAction::Approve.into(),
            ..Default::default()
        })
        .await
        .expect("moderate answers per id")
        .into_inner()
        .results;
    assert_eq!(results[0].code, Code::NotFound as i32);

    let mut their_moderation = h.moderation(&theirs.mod_token).await;
    assert_eq!(
        status_of(&mut their_moderation, &their_comment).await,
        CommentStatus::Pending,
        "the foreign decision changed nothing"
    );

    // Their approved comments do not show through our site key either.
    decide(
        &mut their_moderation,
        ModerationAction::Approve,
        std::slice::from_ref(&their_comment),
    )
    .await;
    let listed = h
        .comments(&ours.site_key)
        .await
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.comments.is_empty());
    assert_eq!(listed.total_count, 0);
}

async fn every_action_moves_the_comment_and_answers_per_id(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut moderation = h.moderation(&site.mod_token).await;

    for (action, expected) in [
        (ModerationAction::Approve, Some(CommentStatus::Approved)),
        (ModerationAction::Reject, Some(CommentStatus::Rejected)),
        (ModerationAction::MarkSpam, Some(CommentStatus::Spam)),
        (ModerationAction::MarkHam, Some(CommentStatus::Approved)),
        (ModerationAction::Delete, None),
    ] {
        let a = submit(&h, &site.site_key, "story", &format!("{action:?} one")).await;
        let b = submit(&h, &site.site_key, "story", &format!("{action:?} two")).await;
        let missing = "0190f1a2-0000-7000-8000-000000000000".to_owned();
        let results = moderation
            .moderate(proto::ModerateRequest {
                ids: vec![a.clone(), "nonsense".into(), b.clone(), missing],
                action: action.into(),
                note: "checked".into(),
                ..Default::default()
            })
            .await
            .expect("moderate")
            .into_inner()
            .results;
        let codes: Vec<i32> = results.iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            [
                Code::Ok as i32,
                Code::InvalidArgument as i32,
                Code::Ok as i32,
                Code::NotFound as i32
            ],
            "{action:?}"
        );
        match expected {
            Some(status) => {
                assert_eq!(status_of(&mut moderation, &a).await, status);
                assert_eq!(status_of(&mut moderation, &b).await, status);
                let history = moderation
                    .get_comment(proto::GetCommentRequest { id: a.clone() })
                    .await
                    .expect("get")
                    .into_inner()
                    .history;
                let last = history.last().expect("history");
                assert_eq!(last.note, "checked");
                assert_eq!(last.from_status(), CommentStatus::Pending);
                assert_eq!(last.to_status(), status);
            }
            None => {
                let status = moderation
                    .get_comment(proto::GetCommentRequest { id: a.clone() })
                    .await
                    .expect_err("deleted");
                assert_eq!(status.code(), Code::NotFound);
            }
        }
    }
}

async fn a_decision_on_a_changed_comment_is_refused(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let id = submit(&h, &site.site_key, "story", "Contested.").await;
    let mut first = h.moderation(&site.mod_token).await;
    let mut second = h.moderation(&site.mod_token).await;

    let expecting_pending = |action: ModerationAction| proto::ModerateRequest {
        ids: vec![id.clone()],
        action: action.into(),
        expected_status: Some(CommentStatus::Pending.into()),
        ..Default::default()
    };
    let results = first
        .moderate(expecting_pending(ModerationAction::Approve))
        .await
        .expect("first")
        .into_inner()
        .results;
    assert_eq!(results[0].code, 0);
    let results = second
        .moderate(expecting_pending(ModerationAction::MarkSpam))
        .await
        .expect("second")
        .into_inner()
        .results;
    assert_eq!(results[0].code, Code::FailedPrecondition as i32);
    assert_eq!(results[0].status(), CommentStatus::Approved);
    assert_eq!(status_of(&mut first, &id).await, CommentStatus::Approved);
}

async fn bad_moderation_requests_name_their_fields(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut moderation = h.moderation(&site.mod_token).await;

    let status = moderation
        .moderate(proto::ModerateRequest {
            ids: vec!["x".into()],
            ..Default::default()
        })
        .await
        .expect_err("no action");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["action"]);

    let status = moderation
        .get_comment(proto::GetCommentRequest { id: "42".into() })
        .await
        .expect_err("bad id");
    assert_eq!(bad_fields(&status), ["id"]);

    let status = moderation
        .list_queue(proto::ListQueueRequest {
            status: 99,
            ..Default::default()
        })
        .await
        .expect_err("bad status");
    assert_eq!(bad_fields(&status), ["status"]);
}

async fn the_queue_pages_oldest_first(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let article = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(submit(&h, &site.site_key, article, &format!("reply {i}")).await);
    }
    let mut moderation = h.moderation(&site.mod_token).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = moderation
            .list_queue(proto::ListQueueRequest {
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.items.into_iter().map(|i| i.comment.expect("c").id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids);

    let odd = moderation
        .list_queue(proto::ListQueueRequest {
            article: "odd".into(),
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    assert_eq!(odd.items.len(), 3);
}

async fn a_watcher_hears_of_each_new_pending_reply_of_its_site_only(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let other = h.site_with("other.example.com", moderate_all()).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let mut stream = moderation
        .watch_queue(proto::WatchQueueRequest::default())
        .await
        .expect("watch")
        .into_inner();

    submit(&h, &other.site_key, "story", "Elsewhere.").await;
    let id = submit(&h, &site.site_key, "story", "Needs a look.").await;

    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .expect("stream")
        .expect("an item");
    let item = next.item.expect("item");
    assert_eq!(
        item.comment.expect("comment").id,
        id,
        "only our site's reply"
    );
    assert_eq!(item.masked_email, "j•••@example.com");
}

async fn a_note_with_control_characters_is_refused(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let id = submit(&h, &site.site_key, "story", "Needs a look.").await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let with_note = |note: &str| proto::ModerateRequest {
        ids: vec![id.clone()],
        action: ModerationAction::Approve.into(),
        note: note.into(),
        ..Default::default()
    };

    let status = moderation
        .moderate(with_note("fine\0really"))
        .await
        .expect_err("a NUL in the note");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["note"]);
    assert_eq!(
        status_of(&mut moderation, &id).await,
        CommentStatus::Pending
    );

    let results = moderation
        .moderate(with_note("fine,\n\treally"))
        .await
        .expect("newlines and tabs are welcome")
        .into_inner()
        .results;
    assert_eq!(results[0].code, 0);
    assert_eq!(
        status_of(&mut moderation, &id).await,
        CommentStatus::Approved
    );
}

backend_tests!(
    missing_and_wrong_credentials_are_unauthenticated,
    a_credential_works_only_for_its_own_service,
    a_revoked_token_stops_working,
    no_credential_reaches_another_sites_comments,
    every_action_moves_the_comment_and_answers_per_id,
    a_decision_on_a_changed_comment_is_refused,
    bad_moderation_requests_name_their_fields,
    the_queue_pages_oldest_first,
    a_note_with_control_characters_is_refused,
    a_watcher_hears_of_each_new_pending_reply_of_its_site_only,
);
