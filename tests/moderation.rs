//! The `Moderation` API and credentials: who may see and decide what.

mod common;

use common::{Backend, Harness, backend_tests, bad_fields, decide, reply, reply_by, submitted};
use replyguard::{
    domain::Scope,
    proto::{self, BlockKind, CommentStatus, ModerationAction},
    spam::{Mode, Policy},
    store,
};
use tonic::{Code, Status};

fn moderate_all() -> Policy {
    Policy {
        mode: Mode::ModerateAll,
        ..Policy::default()
    }
}

async fn submit(h: &Harness, key: &str, article: &str, body: &str) -> String {
    submitted(&mut h.comments(key).await, reply(article, body))
        .await
        .0
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
    let revoked = store::revoke_tokens_everywhere(h.store.as_ref(), &prefix).await;
    assert_eq!(revoked.expect("revoke"), 1);

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
    let mut stream = h.watch(&site.mod_token).await;

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

/// The prefix a token is named by in the audit log.
fn prefix(token: &str) -> String {
    token.chars().take("rg_mod_".len() + 8).collect()
}

/// Every entry of a site's audit log, newest first.
async fn audit_log(moderation: &mut common::Moderation, site: &str) -> Vec<proto::AuditEntry> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = moderation
            .list_audit(proto::ListAuditRequest {
                site: site.to_owned(),
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list audit")
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return entries;
        }
        page_token = page.next_page_token;
    }
}

fn assert_missing_scope(result: Result<(), Status>, scope: Scope, call: &str) {
    let status = result.expect_err(call);
    assert_eq!(status.code(), Code::PermissionDenied, "{call}: {status:?}");
    assert!(
        status.message().contains(&format!("`{scope}`")),
        "{call} names the missing scope: {}",
        status.message()
    );
}

/// Calls every RPC that needs `scope` with a request that is otherwise
/// wrong (no ids, no email, a bad id): the scope is checked before anything.
async fn calls_needing(moderation: &mut common::Moderation, scope: Scope) {
    fn drop_ok<T>(result: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
        result.map(|_| ())
    }
    match scope {
        Scope::Moderate => {
            let checks: Vec<(&str, Result<(), Status>)> = vec![
                (
                    "ListQueue",
                    drop_ok(
                        moderation
                            .list_queue(proto::ListQueueRequest::default())
                            .await,
                    ),
                ),
                (
                    "GetComment",
                    drop_ok(
                        moderation
                            .get_comment(proto::GetCommentRequest { id: "bad".into() })
                            .await,
                    ),
                ),
                (
                    "Moderate",
                    drop_ok(moderation.moderate(proto::ModerateRequest::default()).await),
                ),
                (
                    "WatchQueue",
                    drop_ok(
                        moderation
                            .watch_queue(proto::WatchQueueRequest::default())
                            .await,
                    ),
                ),
                (
                    "ListAudit",
                    drop_ok(
                        moderation
                            .list_audit(proto::ListAuditRequest::default())
                            .await,
                    ),
                ),
                (
                    "Block",
                    drop_ok(moderation.block(proto::BlockRequest::default()).await),
                ),
                (
                    "ListBlocks",
                    drop_ok(
                        moderation
                            .list_blocks(proto::ListBlocksRequest::default())
                            .await,
                    ),
                ),
                (
                    "Unblock",
                    drop_ok(moderation.unblock(proto::UnblockRequest::default()).await),
                ),
                (
                    "CloseArticle",
                    drop_ok(
                        moderation
                            .close_article(proto::CloseArticleRequest::default())
                            .await,
                    ),
                ),
                (
                    "ReopenArticle",
                    drop_ok(
                        moderation
                            .reopen_article(proto::ReopenArticleRequest::default())
                            .await,
                    ),
                ),
                (
                    "ListClosedArticles",
                    drop_ok(
                        moderation
                            .list_closed_articles(proto::ListClosedArticlesRequest::default())
                            .await,
                    ),
                ),
            ];
            for (call, result) in checks {
                assert_missing_scope(result, scope, call);
            }
        }
        Scope::Policy => {
            let result = drop_ok(
                moderation
                    .get_policy(proto::GetPolicyRequest::default())
                    .await,
            );
            assert_missing_scope(result, scope, "GetPolicy");
            let result = drop_ok(
                moderation
                    .update_policy(proto::UpdatePolicyRequest::default())
                    .await,
            );
            assert_missing_scope(result, scope, "UpdatePolicy");
        }
        Scope::RevealEmail => {
            let result = drop_ok(
                moderation
                    .reveal_email(proto::RevealEmailRequest::default())
                    .await,
            );
            assert_missing_scope(result, scope, "RevealEmail");
        }
        Scope::Erase => {
            let result = drop_ok(
                moderation
                    .erase_author(proto::EraseAuthorRequest::default())
                    .await,
            );
            assert_missing_scope(result, scope, "EraseAuthor");
            let result = drop_ok(
                moderation
                    .export_author(proto::ExportAuthorRequest::default())
                    .await,
            );
            assert_missing_scope(result, scope, "ExportAuthor");
        }
        // The `Integrations` service's calls, which this client does not make: tests/webhooks.rs.
        Scope::Integrations => {}
    }
}

async fn every_scope_is_enforced_before_anything_else(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    for missing in Scope::ALL {
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != missing).collect();
        let token = h.moderator_token(&[site.id], &others).await;
        let mut moderation = h.moderation(&token).await;
        calls_needing(&mut moderation, missing).await;
    }

    // With the scope, the same wrong requests get past the check and are
    // refused for what they are.
    let token = h.moderator_token(&[site.id], &[Scope::Erase]).await;
    let status = h
        .moderation(&token)
        .await
        .erase_author(proto::EraseAuthorRequest::default())
        .await
        .expect_err("no email");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["email"]);
    let token = h.moderator_token(&[site.id], &[Scope::RevealEmail]).await;
    let status = h
        .moderation(&token)
        .await
        .reveal_email(proto::RevealEmailRequest::default())
        .await
        .expect_err("no id");
    assert_eq!(bad_fields(&status), ["id"]);
    let token = h.moderator_token(&[site.id], &[Scope::Policy]).await;
    h.moderation(&token)
        .await
        .get_policy(proto::GetPolicyRequest::default())
        .await
        .expect("the policy scope opens the policy");
}

async fn the_default_moderator_token_cannot_reach_personal_data(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    calls_needing(&mut moderation, Scope::RevealEmail).await;
    calls_needing(&mut moderation, Scope::Erase).await;
}

async fn revealing_an_email_needs_a_reason_and_is_audited(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let other = h.site_with("other.example.com", moderate_all()).await;
    let token = h
        .moderator_token(&[site.id], &[Scope::Moderate, Scope::RevealEmail])
        .await;
    let mut moderation = h.moderation(&token).await;
    let id = h
        .comments(&site.site_key)
        .await
        .submit_comment(reply_by(
            "story",
            "Hello.",
            "Jane",
            "Jane.Reader@Example.com",
        ))
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment")
        .id;
    let theirs = submit(&h, &other.site_key, "story", "Elsewhere.").await;

    let status = moderation
        .reveal_email(proto::RevealEmailRequest {
            id: id.clone(),
            reason: "  \n ".into(),
        })
        .await
        .expect_err("no reason");
    assert_eq!(bad_fields(&status), ["reason"]);
    let status = moderation
        .reveal_email(proto::RevealEmailRequest {
            id: theirs,
            reason: "curious".into(),
        })
        .await
        .expect_err("another site's comment");
    assert_eq!(status.code(), Code::NotFound);

    let revealed = moderation
        .reveal_email(proto::RevealEmailRequest {
            id: id.clone(),
            reason: "the author asked us to reply by mail".into(),
        })
        .await
        .expect("reveal")
        .into_inner();
    assert_eq!(revealed.email, "Jane.Reader@example.com");

    let history = moderation
        .get_comment(proto::GetCommentRequest { id: id.clone() })
        .await
        .expect("get")
        .into_inner()
        .history;
    let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["submit", "reveal_email"],
        "one row, for the one reveal"
    );
    let row = &history[1];
    assert_eq!(row.actor, prefix(&token));
    assert_eq!(row.note, "the author asked us to reply by mail");
    assert_eq!(row.comment_id, id);
    assert!(!row.note.to_lowercase().contains("jane.reader"));
}

async fn the_audit_log_lists_newest_first_in_pages_and_by_comment(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let other = h.site_with("other.example.com", moderate_all()).await;
    let a = submit(&h, &site.site_key, "story", "First.").await;
    let b = submit(&h, &site.site_key, "story", "Second.").await;
    submit(&h, &other.site_key, "story", "Elsewhere.").await;
    let mut moderation = h.moderation(&site.mod_token).await;
    decide(
        &mut moderation,
        ModerationAction::Approve,
        std::slice::from_ref(&a),
    )
    .await;
    decide(
        &mut moderation,
        ModerationAction::Reject,
        std::slice::from_ref(&b),
    )
    .await;

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = moderation
            .list_audit(proto::ListAuditRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.into_iter().map(|e| (e.action, e.comment_id)));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let none = String::new();
    assert_eq!(
        seen,
        [
            ("reject".to_owned(), b.clone()),
            ("approve".to_owned(), a.clone()),
            ("submit".to_owned(), b.clone()),
            ("submit".to_owned(), a.clone()),
            // The harness issued the site's moderator token, then its site key.
            ("token_issue".to_owned(), none.clone()),
            ("token_issue".to_owned(), none),
        ]
    );

    let of_a = moderation
        .list_audit(proto::ListAuditRequest {
            comment_id: Some(a.clone()),
            ..Default::default()
        })
        .await
        .expect("one comment")
        .into_inner()
        .entries;
    let actions: Vec<&str> = of_a.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["approve", "submit"]);

    let decided = moderation
        .list_audit(proto::ListAuditRequest {
            action: Some("approve".into()),
            ..Default::default()
        })
        .await
        .expect("one action")
        .into_inner()
        .entries;
    let seen: Vec<(&str, &str)> = decided
        .iter()
        .map(|e| (e.action.as_str(), e.comment_id.as_str()))
        .collect();
    assert_eq!(seen, [("approve", a.as_str())]);
    let status = moderation
        .list_audit(proto::ListAuditRequest {
            action: Some("approved".into()),
            ..Default::default()
        })
        .await
        .expect_err("no such action");
    assert_eq!(bad_fields(&status), ["action"]);

    let status = moderation
        .list_audit(proto::ListAuditRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("a bad token");
    assert_eq!(bad_fields(&status), ["page_token"]);
    let status = moderation
        .list_audit(proto::ListAuditRequest {
            site: other.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("another site's log");
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn blocking_rejects_the_pending_replies_it_matches(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut submit_as = async |name: &str, email: &str, website: &str, ip: &str| {
        let mut request = reply_by("story", &format!("Hello from {name}."), name, email);
        if let Some(author) = request.author.as_mut() {
            author.website = website.to_owned();
        }
        if let Some(client) = request.client.as_mut() {
            client.ip = ip.to_owned();
        }
        submitted(&mut comments, request).await.0
    };
    let jane = submit_as("Jane", "jane@mail.spam.example", "", "203.0.113.1").await;
    let bob = submit_as(
        "Bob",
        "bob@news.example",
        "https://shop.pills.example/x",
        "203.0.113.2",
    )
    .await;
    let carol = submit_as("Carol", "carol@news.example", "", "203.0.113.3").await;
    let dave = submit_as("Dave", "dave@news.example", "", "2001:db8::7").await;
    let innocent = submit_as(
        "Erin",
        "erin@ample.example",
        "https://ills.example",
        "203.0.113.9",
    )
    .await;
    // The answer to a block by email names the author's hash, as the queue does: a token that
    // may only moderate cannot use it to confirm a guessed address.
    let refused = h
        .moderation(&site.mod_token)
        .await
        .block(proto::BlockRequest {
            kind: BlockKind::Author.into(),
            email: "carol@news.example".into(),
            ..Default::default()
        })
        .await
        .expect_err("a moderate-only token names no author by email");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("reveal-email"),
        "{}",
        refused.message()
    );
    let token = h
        .moderator_token(&[site.id], &[Scope::Moderate, Scope::RevealEmail])
        .await;
    let mut moderation = h.moderation(&token).await;

    let block = |kind: BlockKind, value: &str, email: &str| proto::BlockRequest {
        kind: kind.into(),
        value: value.to_owned(),
        email: email.to_owned(),
        reject_pending: true,
        note: "campaign".into(),
        ..Default::default()
    };
    let mut blocked = Vec::new();
    for (request, expected_value, expected) in [
        (
            block(BlockKind::EmailDomain, "@Spam.Example", ""),
            "spam.example".to_owned(),
            &jane,
        ),
        (
            block(BlockKind::WebsiteDomain, "pills.example", ""),
            "pills.example".to_owned(),
            &bob,
        ),
        (
            block(BlockKind::Ip, "2001:0db8::7", ""),
            "2001:db8::7".to_owned(),
            &dave,
        ),
        (
            block(BlockKind::Author, "", "Carol@News.Example"),
            String::new(),
            &carol,
        ),
    ] {
        let answer = moderation.block(request).await.expect("block").into_inner();
        let entry = answer.entry.expect("entry");
        if !expected_value.is_empty() {
            assert_eq!(entry.value, expected_value);
        }
        assert_eq!(entry.actor, prefix(&token));
        assert!(!answer.already_blocked);
        assert_eq!(answer.rejected_ids, std::slice::from_ref(expected));
        blocked.push(entry);
    }
    // The author is listed by the same keyed hash the queue shows.
    let carol_hash = moderation
        .get_comment(proto::GetCommentRequest { id: carol.clone() })
        .await
        .expect("get")
        .into_inner()
        .comment
        .expect("item")
        .author_hash;
    assert_eq!(blocked[3].value, carol_hash);
    assert!(!blocked[3].value.contains("carol"));

    for id in [&jane, &bob, &carol, &dave] {
        assert_eq!(
            status_of(&mut moderation, id).await,
            CommentStatus::Rejected
        );
    }
    assert_eq!(
        status_of(&mut moderation, &innocent).await,
        CommentStatus::Pending,
        "look-alike domains are not blocked"
    );

    let again = moderation
        .block(block(BlockKind::Author, &carol_hash, ""))
        .await
        .expect("block again")
        .into_inner();
    assert!(again.already_blocked);
    assert!(again.rejected_ids.is_empty());
    let stored = h
        .store
        .blocklist(site.id, None, 100)
        .await
        .expect("blocklist");
    assert_eq!(stored.len(), 4);

    let log = audit_log(&mut moderation, "").await;
    let blocks = log.iter().filter(|e| e.action == "block").count();
    assert_eq!(blocks, 4, "one row per entry added, none for the repeat");
    let rejects: Vec<&proto::AuditEntry> = log.iter().filter(|e| e.action == "reject").collect();
    assert_eq!(rejects.len(), 4);
    assert!(
        rejects.iter().all(|e| e.note.starts_with("blocked ")),
        "{rejects:?}"
    );
}

async fn bad_blocks_name_their_fields(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    // One that may name an author by email, so that its bad email is what is refused.
    let token = h
        .moderator_token(&[site.id], &[Scope::Moderate, Scope::RevealEmail])
        .await;
    let mut moderation = h.moderation(&token).await;
    for (request, field) in [
        (proto::BlockRequest::default(), "kind"),
        (
            proto::BlockRequest {
                kind: BlockKind::Ip.into(),
                value: "203.0.113".into(),
                ..Default::default()
            },
            "value",
        ),
        (
            proto::BlockRequest {
                kind: BlockKind::EmailDomain.into(),
                value: "localhost".into(),
                ..Default::default()
            },
            "value",
        ),
        (
            proto::BlockRequest {
                kind: BlockKind::Ip.into(),
                email: "jane@example.com".into(),
                ..Default::default()
            },
            "email",
        ),
        (
            proto::BlockRequest {
                kind: BlockKind::Author.into(),
                email: "not an email".into(),
                ..Default::default()
            },
            "email",
        ),
    ] {
        let status = moderation.block(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&status), [field]);
    }
}

/// The token's site's blocklist as one page of `ListBlocks` gives it: kind and value.
async fn blocklist(moderation: &mut common::Moderation) -> Vec<(i32, String)> {
    let entries = moderation
        .list_blocks(proto::ListBlocksRequest::default())
        .await
        .expect("list")
        .into_inner()
        .entries;
    entries.into_iter().map(|e| (e.kind, e.value)).collect()
}

/// A moderator lists the blocklist and takes an entry off it: the address's next reply is
/// no longer blocked, the change is audited, and the other site's list is untouched.
async fn an_entry_taken_off_the_blocklist_blocks_no_more(backend: Backend) {
    let h = Harness::new(backend).await;
    // Two replies from one address in a row: no flood interval between them.
    let site = h.site_without_flood_limit("news.example.com").await;
    let other = h.site("other.example.com").await;
    let from = |body: &str| {
        let mut request = reply("story", body);
        request.client.as_mut().expect("client").ip = "203.0.113.66".into();
        request
    };
    for (token, value) in [
        (&site.mod_token, "203.0.113.66"),
        (&other.mod_token, "203.0.113.66"),
    ] {
        h.moderation(token)
            .await
            .block(proto::BlockRequest {
                kind: BlockKind::Ip.into(),
                value: value.into(),
                ..Default::default()
            })
            .await
            .expect("block");
    }
    let mut moderation = h.moderation(&site.mod_token).await;
    moderation
        .block(proto::BlockRequest {
            kind: BlockKind::EmailDomain.into(),
            value: "spam.example".into(),
            ..Default::default()
        })
        .await
        .expect("block");
    assert_eq!(
        blocklist(&mut moderation).await,
        [
            (BlockKind::EmailDomain.into(), "spam.example".to_owned()),
            (BlockKind::Ip.into(), "203.0.113.66".to_owned()),
        ],
        "by kind, then value"
    );
    let mut comments = h.comments(&site.site_key).await;
    let (_, blocked) = submitted(&mut comments, from("First, while blocked.")).await;
    assert_eq!(blocked, CommentStatus::Spam);

    let unblock = proto::UnblockRequest {
        kind: BlockKind::Ip.into(),
        value: " 203.0.113.66 ".into(),
        note: "a school's shared address".into(),
        ..Default::default()
    };
    let answer = moderation.unblock(unblock.clone()).await.expect("unblock");
    assert!(answer.into_inner().removed);
    let again = moderation.unblock(unblock).await.expect("unblock again");
    assert!(!again.into_inner().removed, "nothing left to take off");
    assert_eq!(
        blocklist(&mut moderation).await,
        [(BlockKind::EmailDomain.into(), "spam.example".to_owned())]
    );
    // By another author: the first one's own record now holds a spam reply.
    let mut later = from("Second, once unblocked.");
    later.author.as_mut().expect("author").email = "someone.else@example.org".into();
    let (_, status) = submitted(&mut comments, later).await;
    assert_eq!(status, CommentStatus::Approved);

    let log = audit_log(&mut moderation, "").await;
    let unblocks: Vec<(&str, &str)> = log
        .iter()
        .filter(|e| e.action == "unblock")
        .map(|e| (e.actor.as_str(), e.note.as_str()))
        .collect();
    assert_eq!(unblocks.len(), 1, "one row for one removal: {log:?}");
    assert_eq!(unblocks[0].1, "ip 203.0.113.66: a school's shared address");

    let theirs = blocklist(&mut h.moderation(&other.mod_token).await).await;
    assert_eq!(theirs.len(), 1, "the other site's entry stays");

    for (request, field) in [
        (proto::UnblockRequest::default(), "kind"),
        (
            proto::UnblockRequest {
                kind: BlockKind::Ip.into(),
                value: "203.0.113".into(),
                ..Default::default()
            },
            "value",
        ),
    ] {
        let status = moderation.unblock(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&status), [field]);
    }
    let status = moderation
        .list_blocks(proto::ListBlocksRequest {
            site: other.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("another site's list");
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// A long blocklist comes a page at a time, each entry once, in order.
async fn the_blocklist_comes_a_page_at_a_time(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut moderation = h.moderation(&site.mod_token).await;
    for n in [5, 1, 4, 2, 3] {
        moderation
            .block(proto::BlockRequest {
                kind: BlockKind::Ip.into(),
                value: format!("203.0.113.{n}"),
                ..Default::default()
            })
            .await
            .expect("block");
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = moderation
            .list_blocks(proto::ListBlocksRequest {
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .expect("a page")
            .into_inner();
        pages += 1;
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.into_iter().map(|e| e.value));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        (1..=5)
            .map(|n| format!("203.0.113.{n}"))
            .collect::<Vec<_>>()
    );

    let status = moderation
        .list_blocks(proto::ListBlocksRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("a bad token");
    assert_eq!(bad_fields(&status), ["page_token"]);
}

async fn failed_actions_leave_no_audit_row(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let other = h.site_with("other.example.com", moderate_all()).await;
    let id = submit(&h, &site.site_key, "story", "Contested.").await;
    let theirs = submit(&h, &other.site_key, "story", "Elsewhere.").await;
    let everything = h.moderator_token(&[site.id], &Scope::ALL).await;
    let mut moderation = h.moderation(&everything).await;
    decide(
        &mut moderation,
        ModerationAction::Approve,
        std::slice::from_ref(&id),
    )
    .await;
    let before = audit_log(&mut moderation, "").await;

    // A decision that lost a race, on a comment of another site, on no comment.
    let results = moderation
        .moderate(proto::ModerateRequest {
            ids: vec![
                id.clone(),
                theirs.clone(),
                "0190f1a2-0000-7000-8000-000000000000".into(),
            ],
            action: ModerationAction::MarkSpam.into(),
            expected_status: Some(CommentStatus::Pending.into()),
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
            Code::FailedPrecondition as i32,
            Code::NotFound as i32,
            Code::NotFound as i32
        ]
    );
    let status = moderation
        .moderate(proto::ModerateRequest {
            ids: vec![id.clone()],
            action: ModerationAction::Reject.into(),
            note: "bad\0note".into(),
            ..Default::default()
        })
        .await
        .expect_err("a NUL in the note");
    assert_eq!(status.code(), Code::InvalidArgument);
    // Reveals without a reason, of another site's comment, by a token without the scope.
    for request in [
        proto::RevealEmailRequest {
            id: id.clone(),
            reason: String::new(),
        },
        proto::RevealEmailRequest {
            id: theirs.clone(),
            reason: "curious".into(),
        },
    ] {
        moderation.reveal_email(request).await.expect_err("refused");
    }
    h.moderation(&site.mod_token)
        .await
        .reveal_email(proto::RevealEmailRequest {
            id: id.clone(),
            reason: "curious".into(),
        })
        .await
        .expect_err("no scope");
    // Erasures and exports of no valid email, or on another site.
    moderation
        .erase_author(proto::EraseAuthorRequest {
            email: "not an email".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad email");
    moderation
        .erase_author(proto::EraseAuthorRequest {
            site: other.name.clone(),
            email: "jane.reader@example.com".into(),
            ..Default::default()
        })
        .await
        .expect_err("another site");
    moderation
        .export_author(proto::ExportAuthorRequest {
            email: "@".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad email");
    h.moderation(&site.mod_token)
        .await
        .erase_author(proto::EraseAuthorRequest {
            email: "jane.reader@example.com".into(),
            ..Default::default()
        })
        .await
        .expect_err("no scope");
    // Blocks of nothing.
    moderation
        .block(proto::BlockRequest {
            kind: BlockKind::Ip.into(),
            value: "nowhere".into(),
            reject_pending: true,
            ..Default::default()
        })
        .await
        .expect_err("bad address");

    let after = audit_log(&mut moderation, "").await;
    assert_eq!(
        after.len(),
        before.len(),
        "new rows: {:?}",
        &after[..after.len() - before.len()]
    );
    let mut theirs_log = h.moderation(&other.mod_token).await;
    assert!(
        !audit_log(&mut theirs_log, "")
            .await
            .iter()
            .any(|e| e.actor == prefix(&everything)),
        "nothing was written on the other site either"
    );
}

/// A token reaches its own sites only: every call that names a site refuses another one, before
/// it reads or changes anything there.
async fn no_call_reaches_another_sites_data(backend: Backend) {
    let h = Harness::new(backend).await;
    let news = h.site("news.example.com").await;
    let blog = h.site("blog.example.com").await;
    let token = h.moderator_token(&[news.id], &Scope::ALL).await;
    let mut moderation = h.moderation(&token).await;
    let other = || blog.name.clone();
    let calls: Vec<(&str, Result<(), Status>)> = vec![
        (
            "WatchQueue",
            moderation
                .watch_queue(proto::WatchQueueRequest { site: other() })
                .await
                .map(drop),
        ),
        (
            "Block",
            moderation
                .block(proto::BlockRequest {
                    site: other(),
                    kind: BlockKind::Ip.into(),
                    value: "203.0.113.9".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "Unblock",
            moderation
                .unblock(proto::UnblockRequest {
                    site: other(),
                    kind: BlockKind::Ip.into(),
                    value: "203.0.113.9".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "ExportAuthor",
            moderation
                .export_author(proto::ExportAuthorRequest {
                    site: other(),
                    email: "jane@example.com".into(),
                })
                .await
                .map(drop),
        ),
        (
            "CloseArticle",
            moderation
                .close_article(proto::CloseArticleRequest {
                    site: other(),
                    article: "story".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "ReopenArticle",
            moderation
                .reopen_article(proto::ReopenArticleRequest {
                    site: other(),
                    article: "story".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "ListClosedArticles",
            moderation
                .list_closed_articles(proto::ListClosedArticlesRequest {
                    site: other(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
    ];
    for (call, result) in calls {
        let status = result.expect_err(call);
        assert_eq!(status.code(), Code::PermissionDenied, "{call}: {status:?}");
    }
    // Nothing was done on the other site meanwhile.
    let blog_token = h.moderator_token(&[blog.id], &Scope::ALL).await;
    let mut blog_moderation = h.moderation(&blog_token).await;
    let blocks = blog_moderation
        .list_blocks(proto::ListBlocksRequest::default())
        .await
        .expect("blocks")
        .into_inner();
    assert!(blocks.entries.is_empty());
    let closed = blog_moderation
        .list_closed_articles(proto::ListClosedArticlesRequest::default())
        .await
        .expect("closed")
        .into_inner();
    assert!(closed.articles.is_empty());
}

/// A decision that would leave a comment where it is says so, and writes nothing: no audit
/// row, no lesson for the classifier.
async fn a_decision_that_changes_nothing_says_so_and_writes_nothing(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let id = submit(
        &h,
        &site.site_key,
        "story",
        "A reply a moderator approves twice.",
    )
    .await;
    let mut moderation = h.moderation(&site.mod_token).await;
    common::approve(&mut moderation, std::slice::from_ref(&id)).await;
    let history = async |moderation: &mut common::Moderation| {
        moderation
            .get_comment(proto::GetCommentRequest { id: id.clone() })
            .await
            .expect("show")
            .into_inner()
            .history
            .len()
    };
    let before = history(&mut moderation).await;
    let totals = async || {
        let facts = h
            .store
            .facts(
                site.id,
                &replyguard::store::FactsAbout {
                    author_hash: &replyguard::privacy::AuthorHash([0; 32]),
                    article: &replyguard::domain::ArticleKey::parse("story").expect("a key"),
                    ip: None,
                    body_public: "",
                },
                &[],
            )
            .await
            .expect("facts");
        (facts.learned.spam, facts.learned.ham)
    };
    let learned = totals().await;

    for action in [
        proto::ModerationAction::Approve,
        proto::ModerationAction::MarkHam,
    ] {
        let again = moderation
            .moderate(proto::ModerateRequest {
                ids: vec![id.clone()],
                action: action.into(),
                ..Default::default()
            })
            .await
            .expect("moderate")
            .into_inner();
        let result = &again.results[0];
        assert_eq!(result.code, 0, "{action:?}: {result:?}");
        assert_eq!(result.message, "already approved: nothing changed");
        assert_eq!(result.status(), proto::CommentStatus::Approved);
    }
    assert_eq!(history(&mut moderation).await, before, "no audit row");
    assert_eq!(totals().await, learned, "no lesson");
}

backend_tests!(
    a_decision_that_changes_nothing_says_so_and_writes_nothing,
    no_call_reaches_another_sites_data,
    every_scope_is_enforced_before_anything_else,
    the_default_moderator_token_cannot_reach_personal_data,
    revealing_an_email_needs_a_reason_and_is_audited,
    the_audit_log_lists_newest_first_in_pages_and_by_comment,
    blocking_rejects_the_pending_replies_it_matches,
    the_blocklist_comes_a_page_at_a_time,
    an_entry_taken_off_the_blocklist_blocks_no_more,
    bad_blocks_name_their_fields,
    failed_actions_leave_no_audit_row,
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
