//! The `Comments` API as an article host's backend uses it.

mod common;

use std::collections::HashSet;

use common::{Backend, Harness, approve, backend_tests, bad_fields, reply, reply_by};
use md5::Md5;
use prost::Message;
use replyguard::{
    proto::{self, CommentStatus, ListOrder},
    spam::{Mode, Policy},
};
use sha2::{Digest, Sha256};
use tonic::Code;

fn moderate_all() -> Policy {
    Policy {
        mode: Mode::ModerateAll,
        ..Policy::default()
    }
}

async fn a_reply_is_held_approved_and_then_listed(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;

    let submitted = comments
        .submit_comment(reply("2026/11/budget", "A thoughtful reply."))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(submitted.status(), CommentStatus::Pending);
    let comment = submitted.comment.expect("comment");
    assert_eq!(comment.body, "A thoughtful reply.");
    assert_eq!(comment.author_name, "Jane Reader");

    let listed = comments
        .list_comments(proto::ListCommentsRequest {
            article: "2026/11/budget".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.comments.is_empty(), "pending replies are not public");

    let queue = moderation
        .list_queue(proto::ListQueueRequest::default())
        .await
        .expect("queue")
        .into_inner();
    assert_eq!(queue.items.len(), 1);
    assert_eq!(queue.items[0].masked_email, "j•••@example.com");

    approve(&mut moderation, std::slice::from_ref(&comment.id)).await;

    let listed = comments
        .list_comments(proto::ListCommentsRequest {
            article: "2026/11/budget".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_count, 1);
    assert_eq!(listed.comments.len(), 1);
    assert_eq!(listed.comments[0].id, comment.id);
    assert_eq!(listed.comments[0].status(), CommentStatus::Approved);

    let counts = comments
        .count_comments(proto::CountCommentsRequest {
            articles: vec!["2026/11/budget".into(), "elsewhere".into()],
        })
        .await
        .expect("count")
        .into_inner()
        .counts;
    assert_eq!(counts.get("2026/11/budget"), Some(&1));
    assert_eq!(counts.get("elsewhere"), Some(&0));
}

async fn a_clean_reply_is_approved_at_once_and_two_links_hold_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;

    let clean = comments
        .submit_comment(reply("a", "Plain words, no links."))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(clean.status(), CommentStatus::Approved);

    let linked = comments
        .submit_comment(reply(
            "a",
            "See https://one.example/x and https://two.example/y",
        ))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(linked.status(), CommentStatus::Pending);

    let mut moderation = h.moderation(&site.mod_token).await;
    let queue = moderation
        .list_queue(proto::ListQueueRequest::default())
        .await
        .expect("queue")
        .into_inner();
    let assessment = queue.items[0].assessment.clone().expect("assessment");
    assert_eq!(assessment.verdict(), proto::Verdict::Hold);
    assert_eq!(assessment.reasons[0].rule, "links");
    assert!(assessment.reasons[0].weight > 0.0);
    assert!(assessment.reasons[0].reason.contains("2 links"));
}

async fn refused(h: &Harness, key: &str, req: proto::SubmitCommentRequest) -> Vec<String> {
    let mut comments = h.comments(key).await;
    let status = comments
        .submit_comment(req)
        .await
        .expect_err("the reply must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    bad_fields(&status)
}

async fn each_bad_field_is_named_and_nothing_is_stored(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let key = &site.site_key;
    let author = |name: &str, email: &str, website: &str| {
        Some(proto::Author {
            name: name.into(),
            email: email.into(),
            website: website.into(),
        })
    };

    let mut r = reply("a", "fine");
    r.author = author("", "jane@example.com", "");
    assert_eq!(refused(&h, key, r).await, ["author.name"]);

    let mut r = reply("a", "fine");
    r.author = author("   \t ", "jane@example.com", "");
    assert_eq!(refused(&h, key, r).await, ["author.name"]);

    let mut r = reply("a", "fine");
    r.author = author("Ja\0ne", "jane@example.com", "");
    assert_eq!(refused(&h, key, r).await, ["author.name"]);

    let mut r = reply("a", "fine");
    r.author = author(&"n".repeat(101), "jane@example.com", "");
    assert_eq!(refused(&h, key, r).await, ["author.name"]);

    for email in [
        "",
        "jane",
        "jane@",
        "@example.com",
        "jane@@example.com",
        "Jane <jane@example.com>",
        "jane@localhost",
    ] {
        let mut r = reply("a", "fine");
        r.author = author("Jane", email, "");
        assert_eq!(refused(&h, key, r).await, ["author.email"], "{email:?}");
    }

    for website in [
        "javascript:alert(1)",
        "ftp://example.com",
        "not a url",
        "https://",
        "https://user:pw@example.com/",
    ] {
        let mut r = reply("a", "fine");
        r.author = author("Jane", "jane@example.com", website);
        assert_eq!(refused(&h, key, r).await, ["author.website"], "{website:?}");
    }

    assert_eq!(refused(&h, key, reply("a", "")).await, ["body"]);
    assert_eq!(refused(&h, key, reply("a", " \n\t ")).await, ["body"]);
    assert_eq!(refused(&h, key, reply("a", "bell\u{7}")).await, ["body"]);
    assert_eq!(
        refused(&h, key, reply("a", &"x".repeat(10_001))).await,
        ["body"]
    );
    assert_eq!(refused(&h, key, reply("", "fine")).await, ["article"]);

    let mut r = reply("a", "fine");
    r.parent_id = "not-an-id".into();
    assert_eq!(refused(&h, key, r).await, ["parent_id"]);

    let mut r = reply("a", "fine");
    r.client = Some(proto::ClientInfo {
        ip: "300.1.2.3".into(),
        ..Default::default()
    });
    assert_eq!(refused(&h, key, r).await, ["client.ip"]);

    let mut moderation = h.moderation(&site.mod_token).await;
    for status in [CommentStatus::Pending, CommentStatus::Approved] {
        let queue = moderation
            .list_queue(proto::ListQueueRequest {
                status: status.into(),
                ..Default::default()
            })
            .await
            .expect("queue")
            .into_inner();
        assert!(queue.items.is_empty(), "a refused reply was stored");
    }
}

async fn several_bad_fields_are_reported_at_once(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let req = proto::SubmitCommentRequest {
        article: String::new(),
        author: Some(proto::Author {
            name: String::new(),
            email: "nope".into(),
            website: "gopher://x".into(),
        }),
        body: String::new(),
        ..Default::default()
    };
    let mut fields = refused(&h, &site.site_key, req).await;
    fields.sort();
    assert_eq!(
        fields,
        [
            "article",
            "author.email",
            "author.name",
            "author.website",
            "body"
        ]
    );

    // No author at all is the same as an empty one.
    let mut req = reply("a", "fine");
    req.author = None;
    let mut fields = refused(&h, &site.site_key, req).await;
    fields.sort();
    assert_eq!(fields, ["author.email", "author.name"]);
}

async fn limits_count_characters_and_text_is_normalised(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;

    // 10,000 characters of three bytes each: at the limit, accepted.
    let body = "€".repeat(10_000);
    let accepted = comments
        .submit_comment(reply_by("a", &body, "Zoë 🦀", "zoe@example.com"))
        .await
        .expect("a body at the limit is accepted")
        .into_inner();
    assert_eq!(accepted.comment.expect("comment").author_name, "Zoë 🦀");

    // Decomposed "é" is stored composed; surrounding whitespace is trimmed.
    let stored = comments
        .submit_comment(reply_by(
            "a",
            "  Cafe\u{301} au lait  \r\n",
            "  Rene\u{301}  ",
            "rene@example.com",
        ))
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment");
    assert_eq!(stored.author_name, "René");
    assert_eq!(stored.body, "Café au lait");
}

fn hex_digests(email: &str) -> Vec<String> {
    let mut found = Vec::new();
    for variant in [
        email.to_owned(),
        email.to_lowercase(),
        email.trim().to_owned(),
    ] {
        found.push(hex::encode(Md5::digest(variant.as_bytes())));
        found.push(hex::encode(Sha256::digest(variant.as_bytes())));
    }
    found
}

fn assert_no_email(bytes: &[u8], email: &str, what: &str) {
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    assert!(
        !text.contains(&email.to_lowercase()),
        "{what} carries the email"
    );
    assert!(
        !text.contains("unique-reader"),
        "{what} carries the email's local part"
    );
    for digest in hex_digests(email) {
        assert!(
            !text.contains(&digest),
            "{what} carries a hash of the email"
        );
    }
}

async fn no_public_response_carries_the_email_or_a_hash_of_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let email = "Unique-Reader.7731@Example.org";

    let submitted = comments
        .submit_comment(reply_by(
            "story",
            "Write to me at unique-reader.7731@example.org or call +44 20 7946 0958.",
            "Unique Reader",
            email,
        ))
        .await
        .expect("submit")
        .into_inner();
    let comment = submitted.comment.clone().expect("comment");
    assert!(comment.body.contains("[email hidden]"), "{}", comment.body);
    assert!(comment.body.contains("[phone hidden]"), "{}", comment.body);
    assert!(!comment.body_html.contains("7946"), "{}", comment.body_html);
    // The author's name may contain the local part; the check below is about
    // the email, so compare bytes without the name.
    let mut public = submitted.clone();
    if let Some(c) = public.comment.as_mut() {
        c.author_name.clear();
    }
    assert_no_email(&public.encode_to_vec(), email, "SubmitComment");

    // Contact details may make it wait for a moderator; approved, it is listed with them
    // still hidden.
    let mut moderation = h.moderation(&site.mod_token).await;
    approve(&mut moderation, std::slice::from_ref(&comment.id)).await;
    let listed = comments
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.comments.len(), 1);
    let mut listed_public = listed.clone();
    for c in &mut listed_public.comments {
        c.author_name.clear();
    }
    assert_no_email(&listed_public.encode_to_vec(), email, "ListComments");

    let counts = comments
        .count_comments(proto::CountCommentsRequest {
            articles: vec!["story".into()],
        })
        .await
        .expect("count")
        .into_inner();
    assert_no_email(&counts.encode_to_vec(), email, "CountComments");
}

#[tokio::test]
async fn the_database_file_never_holds_the_email_in_plain_text() {
    let h = Harness::new(Backend::Sqlite).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let email = "private.person.4412@example.net";
    comments
        .submit_comment(reply_by("story", "Hello there.", "P. Person", email))
        .await
        .expect("submit");

    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", h.db_path().display());
        if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
    assert!(bytes.len() > 4096, "the database was read");
    let haystack = String::from_utf8_lossy(&bytes).to_lowercase();
    assert!(
        !haystack.contains(email),
        "the email is stored in plain text"
    );
    assert!(
        !haystack.contains("private.person"),
        "the local part is stored"
    );
    for digest in hex_digests(email) {
        assert!(!haystack.contains(&digest), "an unsalted hash is stored");
    }
}

/// The PostgreSQL counterpart of the file check above: every value of
/// every column of every table, bytea also in hex.
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn the_postgres_database_never_holds_the_email_in_plain_text() {
    let h = Harness::new(Backend::Postgres).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let email = "private.person.4412@example.net";
    comments
        .submit_comment(reply_by("story", "Hello there.", "P. Person", email))
        .await
        .expect("submit");

    let haystack = h.db.postgres_dump().await.to_lowercase();
    assert!(haystack.contains("hello there."), "the comments were read");
    assert!(
        !haystack.contains(email),
        "the email is stored in plain text"
    );
    assert!(
        !haystack.contains("private.person"),
        "the local part is stored"
    );
    for digest in hex_digests(email) {
        assert!(!haystack.contains(&digest), "an unsalted hash is stored");
    }
}

async fn a_retry_with_the_same_idempotency_key_returns_the_first_comment(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut req = reply("story", "Only once, please.");
    req.idempotency_key = "form-submission-81f2".into();

    let first = comments
        .submit_comment(req.clone())
        .await
        .expect("first")
        .into_inner();
    let second = comments
        .submit_comment(req.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first.comment, second.comment);

    let mut moderation = h.moderation(&site.mod_token).await;
    let queue = moderation
        .list_queue(proto::ListQueueRequest::default())
        .await
        .expect("queue")
        .into_inner();
    assert_eq!(queue.items.len(), 1, "the retry stored a second comment");

    req.body = "Something else entirely.".into();
    assert_eq!(
        refused(&h, &site.site_key, req).await,
        ["idempotency_key"],
        "a key reused for another reply is refused"
    );
}

async fn replies_need_an_approved_parent_of_the_same_article_and_site(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let other = h.site("other.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;

    let pending = comments
        .submit_comment(reply("story", "Parent, not yet approved."))
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment");
    let mut req = reply("story", "A reply.");
    req.parent_id = pending.id.clone();
    assert_eq!(
        refused(&h, &site.site_key, req.clone()).await,
        ["parent_id"]
    );

    approve(&mut moderation, std::slice::from_ref(&pending.id)).await;
    let mut wrong_article = req.clone();
    wrong_article.article = "another-story".into();
    assert_eq!(
        refused(&h, &site.site_key, wrong_article).await,
        ["parent_id"]
    );

    // The same id sent with another site's key is not a parent there.
    let mut foreign = req.clone();
    foreign.article = "story".into();
    assert_eq!(refused(&h, &other.site_key, foreign).await, ["parent_id"]);

    let child = comments
        .submit_comment(req)
        .await
        .expect("a reply to an approved parent is accepted")
        .into_inner()
        .comment
        .expect("comment");
    assert_eq!(child.parent_id, pending.id);
    assert_eq!(child.depth, 1);
}

/// Builds three threads of approved comments on `article` and returns the
/// ids as (thread, depth) in submission order.
async fn threads(h: &Harness, site: &common::TestSite, article: &str) -> Vec<(String, usize)> {
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let mut ids = Vec::new();
    for thread in 0..3 {
        let mut parent = String::new();
        for depth in 0..3 {
            let mut req = reply(article, &format!("thread {thread}, depth {depth}"));
            req.parent_id = parent.clone();
            let id = comments
                .submit_comment(req)
                .await
                .expect("submit")
                .into_inner()
                .comment
                .expect("comment")
                .id;
            approve(&mut moderation, std::slice::from_ref(&id)).await;
            ids.push((id.clone(), thread));
            parent = id;
        }
        // A second reply to the thread's first comment, after the deep ones.
        let mut req = reply(article, &format!("thread {thread}, second reply"));
        req.parent_id = ids[thread * 4].0.clone();
        let id = comments
            .submit_comment(req)
            .await
            .expect("submit")
            .into_inner()
            .comment
            .expect("comment")
            .id;
        approve(&mut moderation, std::slice::from_ref(&id)).await;
        ids.push((id, thread));
    }
    ids
}

async fn all_pages(
    comments: &mut common::Comments,
    article: &str,
    order: ListOrder,
    page_size: u32,
) -> (Vec<proto::Comment>, usize) {
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = comments
            .list_comments(proto::ListCommentsRequest {
                article: article.into(),
                page_size,
                page_token: token,
                order: order.into(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert_eq!(page.total_count, 12);
        assert!(page.comments.len() <= page_size as usize);
        pages += 1;
        seen.extend(page.comments);
        if page.next_page_token.is_empty() {
            return (seen, pages);
        }
        token = page.next_page_token;
    }
}

async fn pages_keep_threads_in_order_with_parents_before_replies(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let ids = threads(&h, &site, "story").await;
    let mut comments = h.comments(&site.site_key).await;

    for (order, thread_order) in [
        (ListOrder::OldestFirst, [0, 1, 2]),
        (ListOrder::NewestFirst, [2, 1, 0]),
    ] {
        let (seen, pages) = all_pages(&mut comments, "story", order, 5).await;
        assert_eq!(pages, 3);
        let seen_ids: Vec<&str> = seen.iter().map(|c| c.id.as_str()).collect();
        let unique: HashSet<&str> = seen_ids.iter().copied().collect();
        assert_eq!(unique.len(), 12, "every comment exactly once");

        // Within a thread: depth 0, 1, 2, then the second reply at depth 1.
        let expected: Vec<&str> = thread_order
            .iter()
            .flat_map(|&t| {
                let base = t * 4;
                [base, base + 1, base + 2, base + 3]
            })
            .map(|i| ids[i].0.as_str())
            .collect();
        assert_eq!(seen_ids, expected, "{order:?}");
        let depths: Vec<u32> = seen.iter().take(4).map(|c| c.depth).collect();
        assert_eq!(depths, [0, 1, 2, 1]);
    }

    let status = comments
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            page_token: "garbage!".into(),
            ..Default::default()
        })
        .await
        .expect_err("a bad page token is refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["page_token"]);
}

async fn comment_html_is_escaped_and_links_are_nofollow(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let comment = comments
        .submit_comment(reply(
            "a",
            "<script>alert('x')</script> read https://example.org/a?b=1&c=2",
        ))
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment");
    assert!(
        !comment.body_html.contains("<script>"),
        "{}",
        comment.body_html
    );
    assert!(comment.body_html.contains("&lt;script&gt;"));
    assert!(
        comment.body_html.contains(r#"rel="nofollow ugc""#),
        "{}",
        comment.body_html
    );
}

async fn a_restarted_server_keeps_everything(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let first = comments
        .submit_comment(reply("story", "Before the restart."))
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment");
    let mut moderation = h.moderation(&site.mod_token).await;
    approve(&mut moderation, std::slice::from_ref(&first.id)).await;

    h.restart().await;

    let mut comments = h.comments(&site.site_key).await;
    let listed = comments
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.comments.len(), 1);
    assert_eq!(listed.comments[0].id, first.id);
    assert_eq!(listed.comments[0].body, "Before the restart.");

    let mut moderation = h.moderation(&site.mod_token).await;
    let shown = moderation
        .get_comment(proto::GetCommentRequest {
            id: first.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    let item = shown.comment.expect("item");
    assert_eq!(
        item.masked_email, "j•••@example.com",
        "the key still opens it"
    );
    assert_eq!(shown.history.len(), 2, "submit and approve");
}

async fn hundreds_of_concurrent_submitters_each_get_their_own_comment(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let comments = h.comments(&site.site_key).await;

    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let mut client = comments.clone();
            tokio::spawn(async move {
                let body = format!("Reader {i} says something of their own.");
                let name = format!("Reader {i}");
                let response = client
                    .submit_comment(reply_by(
                        &format!("article-{}", i % 7),
                        &body,
                        &name,
                        &format!("reader{i}@example.com"),
                    ))
                    .await
                    .expect("submit")
                    .into_inner();
                let comment = response.comment.expect("comment");
                assert_eq!(comment.body, body, "submitter {i} got another's comment");
                assert_eq!(comment.author_name, name);
                comment.id
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        assert!(
            ids.insert(task.await.expect("task")),
            "an id was handed out twice"
        );
    }
    assert_eq!(ids.len(), 300);
}

async fn two_first_replies_to_a_new_article_at_once_both_succeed(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut a = h.comments(&site.site_key).await;
    let mut b = h.comments(&site.site_key).await;
    let (first, second) = tokio::join!(
        a.submit_comment(reply_by("brand-new", "First!", "A", "a@example.com")),
        b.submit_comment(reply_by("brand-new", "No, me first!", "B", "b@example.com")),
    );
    let (first, second) = (
        first.expect("a").into_inner(),
        second.expect("b").into_inner(),
    );
    assert_ne!(first.comment.expect("a").id, second.comment.expect("b").id);
    let listed = a
        .list_comments(proto::ListCommentsRequest {
            article: "brand-new".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_count, 2);
}

async fn the_health_service_answers_without_a_credential(backend: Backend) {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let h = Harness::new(backend).await;
    let channel = tonic::transport::Channel::from_shared(h.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let response = health
        .check(HealthCheckRequest {
            service: "replyguard.v1.Comments".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(response.status, 1, "SERVING");
}

/// A `SubmitCommentRequest` on the wire, but with bytes where strings go.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSubmit {
    #[prost(bytes = "vec", tag = "1")]
    article: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    body: Vec<u8>,
}

async fn a_string_that_is_not_utf8_is_the_callers_error(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let channel = tonic::transport::Channel::from_shared(h.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(RawSubmit {
        article: b"story".to_vec(),
        body: vec![b'h', b'i', 0xff, 0xfe],
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", site.site_key).parse().expect("ascii"),
    );
    let status = grpc
        .unary::<_, proto::SubmitCommentResponse, _>(
            request,
            "/replyguard.v1.Comments/SubmitComment"
                .parse()
                .expect("path"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("invalid UTF-8 is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let listed = h
        .comments(&site.site_key)
        .await
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("the server is still up")
        .into_inner();
    assert_eq!(listed.total_count, 0);
}

async fn client_details_are_stored_without_control_characters(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let mut req = reply("story", "Sent by an odd client.");
    req.client = Some(proto::ClientInfo {
        ip: "203.0.113.7".into(),
        user_agent: "bad\0agent\u{1b}".into(),
        referrer: "https://news.example.com/story\u{7}".into(),
    });

    let id = comments
        .submit_comment(req)
        .await
        .expect("client details never refuse a reply")
        .into_inner()
        .comment
        .expect("comment")
        .id;
    let stored = h
        .store
        .comment(id.parse().expect("a comment id"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.user_agent.as_deref(), Some("badagent"));
    assert_eq!(
        stored.referrer.as_deref(),
        Some("https://news.example.com/story")
    );
}

/// An article is the same article to every call: a reply submitted under a key with spaces
/// around it and a decomposed accent is listed and counted under that same string, and under
/// the key composed; a key no submission could use is refused, not listed as empty.
async fn reads_name_an_article_as_submit_does(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let submitted = comments
        .submit_comment(reply("  culture/cafe\u{301} ", "Plain words, no links."))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(submitted.status(), CommentStatus::Approved);

    let (sent, composed) = ("  culture/cafe\u{301} ", "culture/caf\u{e9}");
    for article in [sent, composed] {
        let listed = comments
            .list_comments(proto::ListCommentsRequest {
                article: article.to_owned(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(listed.comments.len(), 1, "listed under {article:?}");
        assert_eq!(listed.total_count, 1);
    }
    let counted = comments
        .count_comments(proto::CountCommentsRequest {
            articles: vec![sent.to_owned(), composed.to_owned()],
        })
        .await
        .expect("count")
        .into_inner();
    assert_eq!(counted.counts.get(sent), Some(&1));
    assert_eq!(counted.counts.get(composed), Some(&1));

    for article in ["x".repeat(300), "a\0b".to_owned()] {
        let refused = comments
            .list_comments(proto::ListCommentsRequest {
                article,
                ..Default::default()
            })
            .await
            .expect_err("not an article key");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    }
}

/// The reads a host makes need the host's own key: none, a made-up one and a moderator's are
/// refused, and a count of more articles than the limit is refused by name.
async fn the_reads_need_a_site_key_and_counts_are_bounded(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let made_up = format!("{}x", &site.site_key[..site.site_key.len() - 1]);
    let list = || proto::ListCommentsRequest {
        article: "story".into(),
        ..Default::default()
    };
    let count = |n: usize| proto::CountCommentsRequest {
        articles: (0..n).map(|i| format!("story-{i}")).collect(),
    };
    let mut anonymous = h.comments_without_token().await;
    let mut forged = h.comments(&made_up).await;
    let mut moderator = h.comments(&site.mod_token).await;
    for (who, client, code) in [
        ("no key", &mut anonymous, tonic::Code::Unauthenticated),
        ("a made-up key", &mut forged, tonic::Code::Unauthenticated),
        (
            "a moderator's token",
            &mut moderator,
            tonic::Code::PermissionDenied,
        ),
    ] {
        let listed = client.list_comments(list()).await.expect_err(who);
        assert_eq!(listed.code(), code, "ListComments with {who}: {listed:?}");
        let counted = client.count_comments(count(1)).await.expect_err(who);
        assert_eq!(
            counted.code(),
            code,
            "CountComments with {who}: {counted:?}"
        );
    }

    let mut comments = h.comments(&site.site_key).await;
    let at_the_limit = comments
        .count_comments(count(500))
        .await
        .expect("500 articles")
        .into_inner();
    assert_eq!(at_the_limit.counts.len(), 500);
    let over = comments
        .count_comments(count(501))
        .await
        .expect_err("501 articles");
    assert_eq!(bad_fields(&over), ["articles"]);
}

backend_tests!(
    the_reads_need_a_site_key_and_counts_are_bounded,
    reads_name_an_article_as_submit_does,
    a_reply_is_held_approved_and_then_listed,
    a_clean_reply_is_approved_at_once_and_two_links_hold_it,
    each_bad_field_is_named_and_nothing_is_stored,
    several_bad_fields_are_reported_at_once,
    limits_count_characters_and_text_is_normalised,
    no_public_response_carries_the_email_or_a_hash_of_it,
    a_retry_with_the_same_idempotency_key_returns_the_first_comment,
    replies_need_an_approved_parent_of_the_same_article_and_site,
    pages_keep_threads_in_order_with_parents_before_replies,
    comment_html_is_escaped_and_links_are_nofollow,
    a_restarted_server_keeps_everything,
    hundreds_of_concurrent_submitters_each_get_their_own_comment,
    two_first_replies_to_a_new_article_at_once_both_succeed,
    the_health_service_answers_without_a_credential,
    client_details_are_stored_without_control_characters,
    a_string_that_is_not_utf8_is_the_callers_error,
);
