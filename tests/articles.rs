//! Closing an article: new replies are refused, with the reason, until a
//! moderator opens it again; what is there stays, and every change is audited.

mod common;

use common::{Backend, Comments, Harness, Moderation, backend_tests, bad_fields, reply, submitted};
use replyguard::{domain::Scope, proto};
use tonic::{Code, Status};
use tonic_types::StatusExt;

async fn close(moderation: &mut Moderation, article: &str, note: &str) -> bool {
    !moderation
        .close_article(proto::CloseArticleRequest {
            article: article.to_owned(),
            note: note.to_owned(),
            ..Default::default()
        })
        .await
        .expect("close")
        .into_inner()
        .already_closed
}

async fn reopen(moderation: &mut Moderation, article: &str) -> bool {
    moderation
        .reopen_article(proto::ReopenArticleRequest {
            article: article.to_owned(),
            ..Default::default()
        })
        .await
        .expect("reopen")
        .into_inner()
        .reopened
}

/// The ids listed under `article`, and whether it is closed.
async fn listed(comments: &mut Comments, article: &str) -> (Vec<String>, bool) {
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
        listed.closed,
    )
}

fn assert_closed(status: &Status) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let failure = status
        .get_details_precondition_failure()
        .expect("a PreconditionFailure");
    let violations: Vec<(&str, &str)> = failure
        .violations
        .iter()
        .map(|v| (v.r#type.as_str(), v.subject.as_str()))
        .collect();
    assert_eq!(violations, [("ARTICLE_CLOSED", "article")]);
}

async fn prepare(comments: &mut Comments, article: &str) -> Result<(), Status> {
    comments
        .prepare_form(proto::PrepareFormRequest {
            article: article.to_owned(),
            ..Default::default()
        })
        .await
        .map(drop)
}

/// `(action, actor, note)` of the site's audit rows about articles, oldest first.
async fn article_audit(moderation: &mut Moderation) -> Vec<(String, String, String)> {
    let entries = moderation
        .list_audit(proto::ListAuditRequest::default())
        .await
        .expect("audit")
        .into_inner()
        .entries;
    entries
        .into_iter()
        .rev()
        .filter(|e| e.action.ends_with("_article"))
        .map(|e| (e.action, e.actor, e.note))
        .collect()
}

async fn a_closed_article_refuses_new_replies_until_it_is_reopened(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let (first, _) = submitted(&mut comments, reply("story", "Before the hold.")).await;
    let keyed = proto::SubmitCommentRequest {
        idempotency_key: "host-retry-1".to_owned(),
        ..reply("story", "Sent just before it closed.")
    };
    let (second, _) = submitted(&mut comments, keyed.clone()).await;
    assert_eq!(
        listed(&mut comments, "story").await,
        (vec![first.clone(), second.clone()], false)
    );

    assert!(close(&mut moderation, "story", "legal hold").await);
    assert_eq!(
        listed(&mut comments, "story").await,
        (vec![first.clone(), second.clone()], true),
        "what is there stays listed"
    );
    let refused = comments
        .submit_comment(reply("story", "After the hold."))
        .await
        .expect_err("closed");
    assert_closed(&refused);
    assert_closed(&prepare(&mut comments, "story").await.expect_err("closed"));
    let (retried, _) = submitted(&mut comments, keyed).await;
    assert_eq!(
        retried, second,
        "a retry of an earlier reply gets its first answer"
    );
    let approved = moderation
        .list_queue(proto::ListQueueRequest {
            status: proto::CommentStatus::Approved.into(),
            ..Default::default()
        })
        .await
        .expect("queue")
        .into_inner()
        .items;
    assert_eq!(approved.len(), 2, "nothing more was stored");

    // Other articles are open.
    assert_eq!(listed(&mut comments, "other").await, (Vec::new(), false));
    prepare(&mut comments, "other").await.expect("open");
    submitted(&mut comments, reply("other", "Elsewhere.")).await;

    assert!(
        !close(&mut moderation, "story", "again").await,
        "already closed"
    );
    assert!(reopen(&mut moderation, "story").await);
    assert!(!reopen(&mut moderation, "story").await, "already open");
    assert!(!listed(&mut comments, "story").await.1);
    prepare(&mut comments, "story").await.expect("open again");
    submitted(&mut comments, reply("story", "After the reopening.")).await;

    let audit = article_audit(&mut moderation).await;
    let rows: Vec<(&str, &str)> = audit
        .iter()
        .map(|(action, _, note)| (action.as_str(), note.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("close_article", "story: legal hold"),
            ("reopen_article", "story")
        ],
        "one row per change, none for a change that changed nothing"
    );
    for (_, actor, _) in &audit {
        assert!(
            site.mod_token.starts_with(actor.as_str()),
            "the token's prefix: {actor}"
        );
    }
}

async fn closing_needs_the_moderate_scope_and_stays_on_its_site(backend: Backend) {
    let h = Harness::new(backend).await;
    let news = h.site("news.example.com").await;
    let blog = h.site("blog.example.com").await;
    let mut blog_moderation = h.moderation(&blog.mod_token).await;
    assert!(close(&mut blog_moderation, "story", "").await);
    let mut news_comments = h.comments(&news.site_key).await;
    assert!(!listed(&mut news_comments, "story").await.1);
    submitted(&mut news_comments, reply("story", "Open here.")).await;

    let policy_only = h.moderator_token(&[news.id], &[Scope::Policy]).await;
    let refused = h
        .moderation(&policy_only)
        .await
        .close_article(proto::CloseArticleRequest {
            article: "story".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("no moderate scope");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let other_site = blog_moderation
        .close_article(proto::CloseArticleRequest {
            site: news.name.clone(),
            article: "story".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("not the blog's site");
    assert_eq!(other_site.code(), Code::PermissionDenied);
    let mut news_moderation = h.moderation(&news.mod_token).await;
    let blank = news_moderation
        .close_article(proto::CloseArticleRequest {
            article: "  ".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("no article");
    assert_eq!(blank.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&blank), ["article"]);
    assert!(
        !listed(&mut news_comments, "story").await.1,
        "nothing changed"
    );
    assert!(article_audit(&mut news_moderation).await.is_empty());
}

/// The site's closed articles, page by page of `page_size`.
async fn closed_articles(moderation: &mut Moderation, page_size: u32) -> Vec<String> {
    let mut articles = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = moderation
            .list_closed_articles(proto::ListClosedArticlesRequest {
                page_size,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list closed")
            .into_inner();
        assert!(
            page_size == 0 || page.articles.len() <= page_size as usize,
            "0: the default"
        );
        for closed in &page.articles {
            assert!(closed.closed_at.is_some());
            assert!(closed.actor.starts_with("rg_mod_"), "{}", closed.actor);
        }
        articles.extend(page.articles.into_iter().map(|closed| closed.article));
        if page.next_page_token.is_empty() {
            return articles;
        }
        page_token = page.next_page_token;
    }
}

async fn closed_articles_are_listed_by_key_a_page_at_a_time(backend: Backend) {
    let h = Harness::new(backend).await;
    let news = h.site("news.example.com").await;
    let blog = h.site("blog.example.com").await;
    let mut moderation = h.moderation(&news.mod_token).await;
    assert!(closed_articles(&mut moderation, 2).await.is_empty());
    for article in ["c", "a", "e", "b", "d"] {
        assert!(close(&mut moderation, article, "").await);
    }
    assert!(close(&mut h.moderation(&blog.mod_token).await, "z", "").await);
    assert!(reopen(&mut moderation, "d").await);
    assert_eq!(
        closed_articles(&mut moderation, 2).await,
        ["a", "b", "c", "e"]
    );
    assert_eq!(
        closed_articles(&mut moderation, 0).await,
        ["a", "b", "c", "e"]
    );

    let status = moderation
        .list_closed_articles(proto::ListClosedArticlesRequest {
            page_token: "not a token".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("a made-up token");
    assert_eq!(bad_fields(&status), ["page_token"]);
}

backend_tests!(
    a_closed_article_refuses_new_replies_until_it_is_reopened,
    closing_needs_the_moderate_scope_and_stays_on_its_site,
    closed_articles_are_listed_by_key_a_page_at_a_time,
);
