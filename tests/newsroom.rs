//! Moderation a newsroom runs on: the author's own view of held replies, trust tiers, blocks
//! with a lifetime and a record, reports, and the policy keys that go with them.

mod common;

use std::process::Output;

use common::{Backend, Harness, TestSite, backend_tests, bad_fields, decide, reply_by};
use replyguard::proto::{self, CommentStatus, ModerationAction};
use replyguard::spam::{Mode, Policy};
use tonic::Code;

/// A site that holds every reply, whose readers may reply as often as they like.
fn moderate_all() -> Policy {
    Policy {
        mode: Mode::ModerateAll,
        flood_interval_seconds: 0,
        ..Policy::default()
    }
}

const LINKED: &str = "See https://one.example/x and https://two.example/y";

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `replyctl --output json policy set KEY VALUE`, answered with the whole policy.
fn policy_set(h: &Harness, site: &TestSite, key: &str, value: &str) -> serde_json::Value {
    let output = h.replyctl(
        &site.mod_token,
        &["--output", "json", "policy", "set", key, value],
    );
    serde_json::from_str(&stdout(&output)).expect("JSON output")
}

/// Lists an article as the host does for one reader: with that reader's author token, if any.
async fn listed(
    comments: &mut common::Comments,
    article: &str,
    author_token: &str,
    page_size: u32,
    page_token: &str,
) -> proto::ListCommentsResponse {
    comments
        .list_comments(proto::ListCommentsRequest {
            article: article.into(),
            author_token: author_token.into(),
            page_size,
            page_token: page_token.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
}

fn ids_and_statuses(page: &proto::ListCommentsResponse) -> Vec<(String, CommentStatus)> {
    page.comments
        .iter()
        .map(|c| (c.id.clone(), c.status()))
        .collect()
}

async fn an_author_token_shows_its_author_their_own_held_replies(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;

    let jane = comments
        .submit_comment(reply_by(
            "story",
            "Plain words.",
            "Jane",
            "jane@example.com",
        ))
        .await
        .expect("submit")
        .into_inner();
    let jane_id = jane.comment.expect("comment").id;
    assert!(!jane.author_token.is_empty(), "every reply gets a token");
    decide(
        &mut moderation,
        ModerationAction::Approve,
        std::slice::from_ref(&jane_id),
    )
    .await;

    let mut held = reply_by("story", "A first thought.", "Sam", "sam@example.com");
    held.parent_id = jane_id.clone();
    let sam = comments
        .submit_comment(held)
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(sam.status(), CommentStatus::Pending);
    let sam_id = sam.comment.expect("comment").id;
    // Sam's second held reply, at the top: one token shows every held reply of its author.
    let sam_again = comments
        .submit_comment(reply_by(
            "story",
            "A second thought.",
            "Sam",
            "sam@example.com",
        ))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(sam_again.status(), CommentStatus::Pending);
    let sam_again_id = sam_again.comment.expect("comment").id;
    let bob = comments
        .submit_comment(reply_by("story", "Bob's view.", "Bob", "bob@example.com"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(bob.status(), CommentStatus::Pending);

    let public = listed(&mut comments, "story", "", 0, "").await;
    assert_eq!(
        ids_and_statuses(&public),
        vec![(jane_id.clone(), CommentStatus::Approved)]
    );

    let own = listed(&mut comments, "story", &sam.author_token, 0, "").await;
    assert_eq!(
        ids_and_statuses(&own),
        vec![
            (jane_id.clone(), CommentStatus::Approved),
            (sam_id.clone(), CommentStatus::Pending),
            (sam_again_id.clone(), CommentStatus::Pending),
        ],
        "Sam's held replies, each in its place, and nobody else's"
    );
    assert_eq!(own.total_count, 1, "the count is the public's");

    // Paged one at a time, the same three in the same order.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = listed(&mut comments, "story", &sam_again.author_token, 1, &token).await;
        paged.extend(ids_and_statuses(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, ids_and_statuses(&own));

    // A decision moves them: approved for all, rejected for nobody.
    decide(
        &mut moderation,
        ModerationAction::Approve,
        std::slice::from_ref(&sam_id),
    )
    .await;
    decide(&mut moderation, ModerationAction::Reject, &[sam_again_id]).await;
    let own = listed(&mut comments, "story", &sam.author_token, 0, "").await;
    assert_eq!(
        ids_and_statuses(&own),
        vec![
            (jane_id.clone(), CommentStatus::Approved),
            (sam_id.clone(), CommentStatus::Approved),
        ]
    );
    let public = listed(&mut comments, "story", "", 0, "").await;
    assert_eq!(ids_and_statuses(&public), ids_and_statuses(&own));
}

async fn an_author_token_of_another_site_or_altered_is_refused(backend: Backend) {
    let h = Harness::new(backend).await;
    let news = h.site("news.example.com").await;
    let blog = h.site("blog.example.com").await;
    let mut news_comments = h.comments(&news.site_key).await;
    let mut blog_comments = h.comments(&blog.site_key).await;

    let on_blog = blog_comments
        .submit_comment(reply_by("story", LINKED, "Sam", "sam@example.com"))
        .await
        .expect("submit")
        .into_inner();
    let mut altered = on_blog.author_token.clone().into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");

    for (on_news, token) in [
        (true, on_blog.author_token.as_str()),
        (false, altered.as_str()),
        (false, "not a token"),
    ] {
        let comments = if on_news {
            &mut news_comments
        } else {
            &mut blog_comments
        };
        let err = comments
            .list_comments(proto::ListCommentsRequest {
                article: "story".into(),
                author_token: token.into(),
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{token}");
        assert_eq!(bad_fields(&err), vec!["author_token"]);
    }
    let own = listed(&mut blog_comments, "story", &on_blog.author_token, 0, "").await;
    assert_eq!(own.comments.len(), 1);
}

async fn an_erased_author_token_shows_nothing_held(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let sam = comments
        .submit_comment(reply_by("story", LINKED, "Sam", "sam@example.com"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(
        listed(&mut comments, "story", &sam.author_token, 0, "")
            .await
            .comments
            .len(),
        1
    );
    let token = h
        .moderator_token(&[site.id], &[replyguard::domain::Scope::Erase])
        .await;
    h.moderation(&token)
        .await
        .erase_author(proto::EraseAuthorRequest {
            site: String::new(),
            email: "sam@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("erase");
    assert!(
        listed(&mut comments, "story", &sam.author_token, 0, "")
            .await
            .comments
            .is_empty()
    );
}

async fn a_new_author_waits_until_enough_replies_were_approved(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let policy = policy_set(&h, &site, "hold-new-authors", "2");
    assert_eq!(policy["hold_new_authors"], 2);
    let shown = stdout(&h.replyctl(&site.mod_token, &["--output", "table", "policy", "show"]));
    assert!(
        shown
            .lines()
            .any(|l| l.contains("hold-new-authors") && l.contains('2')),
        "{shown}"
    );

    let mut statuses = Vec::new();
    for n in 0..3 {
        let sent = comments
            .submit_comment(reply_by(
                "story",
                &format!("Thought number {n}."),
                "Jane",
                "jane@example.com",
            ))
            .await
            .expect("submit")
            .into_inner();
        statuses.push(sent.status());
        if sent.status() == CommentStatus::Pending {
            let id = sent.comment.expect("comment").id;
            decide(&mut moderation, ModerationAction::Approve, &[id]).await;
        }
    }
    assert_eq!(
        statuses,
        vec![
            CommentStatus::Pending,
            CommentStatus::Pending,
            CommentStatus::Approved
        ]
    );
    let other = comments
        .submit_comment(reply_by("story", "New here.", "Bob", "bob@example.com"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(other.status(), CommentStatus::Pending);

    policy_set(&h, &site, "hold-new-authors", "0");
    let other = comments
        .submit_comment(reply_by("story", "New, still.", "Bob", "bob@example.com"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(other.status(), CommentStatus::Approved);
    let refused = h.replyctl(
        &site.mod_token,
        &["policy", "set", "hold-new-authors", "1001"],
    );
    assert!(!refused.status.success());
}

/// `replyctl --output json ARGS…`, parsed.
fn json(h: &Harness, site: &TestSite, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&stdout(&h.replyctl(&site.mod_token, &all))).expect("JSON output")
}

async fn a_block_for_a_time_counts_what_it_catches_and_the_sweep_ends_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let before = chrono::Utc::now();
    let blocked = json(
        &h,
        &site,
        &[
            "block",
            "ip",
            "2001:db8::77",
            "--for",
            "2h",
            "--note",
            "flooding",
        ],
    );
    let blocked = &blocked["entries"][0];
    assert_eq!(blocked["note"], "flooding", "{blocked}");
    let until: chrono::DateTime<chrono::Utc> = blocked["expires_at"]
        .as_str()
        .expect("an end")
        .parse()
        .expect("a time");
    let lasts = until - before;
    assert!(
        lasts >= chrono::Duration::minutes(119) && lasts <= chrono::Duration::minutes(121),
        "{blocked}"
    );
    json(
        &h,
        &site,
        &["block", "domain", "cheap.example", "--only", "email"],
    );
    let refused = h.replyctl(
        &site.mod_token,
        &["block", "ip", "2001:db8::78", "--for", "soon"],
    );
    assert!(!refused.status.success());

    for n in 0..2 {
        let mut caught = reply_by(
            "story",
            &format!("Hello {n}."),
            "Jo",
            &format!("jo{n}@example.com"),
        );
        caught.client.as_mut().expect("client").ip = "2001:db8::77".into();
        let sent = comments
            .submit_comment(caught)
            .await
            .expect("submit")
            .into_inner();
        assert_eq!(sent.status(), CommentStatus::Spam);
    }
    let free = comments
        .submit_comment(reply_by("story", "Fine.", "Al", "al@example.com"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(free.status(), CommentStatus::Approved);

    let listed = json(&h, &site, &["blocks"]);
    let entries = listed["entries"].as_array().expect("entries");
    let ip = entries
        .iter()
        .find(|e| e["kind"] == "ip")
        .expect("the ip entry");
    assert_eq!(ip["hits"], 2, "{listed}");
    assert!(ip["last_hit_at"].is_string(), "{listed}");
    assert_eq!(ip["note"], "flooding");
    let domain = entries
        .iter()
        .find(|e| e["kind"] == "email-domain")
        .expect("the domain entry");
    assert_eq!(domain["hits"], 0);
    assert!(domain["expires_at"].is_null() && domain["last_hit_at"].is_null());
    let table = stdout(&h.replyctl(&site.mod_token, &["--output", "table", "blocks"]));
    assert!(
        table.contains("HITS") && table.contains("flooding"),
        "{table}"
    );

    // A sweep before the end keeps it; one after takes it off, audited as `system`'s.
    let retention = replyguard::moderation::Retention {
        client_details_days: 30,
        expire_pending_days: None,
        delete_spam_days: None,
    };
    let soon = chrono::Utc::now() + chrono::Duration::minutes(60);
    let report = h
        .store
        .sweep(soon, &retention.cutoffs(soon))
        .await
        .expect("sweep");
    assert_eq!(report.blocks_ended, 0);
    let later = chrono::Utc::now() + chrono::Duration::minutes(121);
    let report = h
        .store
        .sweep(later, &retention.cutoffs(later))
        .await
        .expect("sweep");
    assert_eq!(report.blocks_ended, 1);
    let listed = json(&h, &site, &["blocks"]);
    let kinds: Vec<&str> = listed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["email-domain"]);
    let audit = h.db.site_audit("unblock").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].1, "system");
    assert!(
        audit[0]
            .2
            .as_deref()
            .is_some_and(|note| note.contains("2001:db8::77")),
        "{audit:?}"
    );

    let mut again = reply_by("story", "Back again.", "Jo", "jo9@example.com");
    again.client.as_mut().expect("client").ip = "2001:db8::77".into();
    let sent = comments
        .submit_comment(again)
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(sent.status(), CommentStatus::Approved);
}

async fn a_closed_article_keeps_the_moderators_note(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    stdout(&h.replyctl(
        &site.mod_token,
        &["close", "2026/05/flood-report", "--note", "legal hold"],
    ));
    stdout(&h.replyctl(&site.mod_token, &["close", "2026/05/other"]));
    let listed = json(&h, &site, &["closed"]);
    assert_eq!(listed["articles"][0]["article"], "2026/05/flood-report");
    assert_eq!(listed["articles"][0]["note"], "legal hold");
    assert_eq!(listed["articles"][1]["note"], "");
    let table = stdout(&h.replyctl(&site.mod_token, &["--output", "table", "closed"]));
    assert!(
        table.contains("NOTE") && table.contains("legal hold"),
        "{table}"
    );
}

fn report(
    comment: &str,
    reason: proto::ReportReason,
    reporter: &str,
) -> proto::ReportCommentRequest {
    proto::ReportCommentRequest {
        comment_id: comment.into(),
        reason: reason.into(),
        text: String::new(),
        reporter: reporter.into(),
    }
}

async fn readers_report_a_comment_once_each_and_enough_reports_hold_it(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let other = h.site("blog.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    policy_set(&h, &site, "report-hold", "2");
    let sent = comments
        .submit_comment(reply_by(
            "story",
            "A sharp opinion.",
            "Jane",
            "jane@example.com",
        ))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(sent.status(), CommentStatus::Approved);
    let id = sent.comment.expect("comment").id;

    let mut first = report(&id, proto::ReportReason::Spam, "account-17");
    first.text = "Sells pills.".into();
    let answer = comments
        .report_comment(first.clone())
        .await
        .expect("report")
        .into_inner();
    assert!(answer.counted);
    let answer = comments
        .report_comment(first)
        .await
        .expect("report")
        .into_inner();
    assert!(!answer.counted, "one reader counts once");
    assert_eq!(
        listed(&mut comments, "story", "", 0, "")
            .await
            .comments
            .len(),
        1
    );

    for (req, field) in [
        (
            report(&id, proto::ReportReason::Unspecified, "account-18"),
            "reason",
        ),
        (report(&id, proto::ReportReason::Abuse, " "), "reporter"),
        (
            report("not-an-id", proto::ReportReason::Abuse, "account-18"),
            "comment_id",
        ),
    ] {
        let err = comments.report_comment(req).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&err), vec![field]);
    }
    let err = h
        .comments(&other.site_key)
        .await
        .report_comment(report(&id, proto::ReportReason::Abuse, "account-18"))
        .await
        .expect_err("another site's comment");
    assert_eq!(err.code(), Code::NotFound);

    comments
        .report_comment(report(&id, proto::ReportReason::Abuse, "account-18"))
        .await
        .expect("report");
    assert!(
        listed(&mut comments, "story", "", 0, "")
            .await
            .comments
            .is_empty(),
        "held after the second reader"
    );

    let reported = json(&h, &site, &["reports"]);
    let first = &reported["comments"][0];
    assert_eq!(first["comment_id"], id.as_str(), "{reported}");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["reports"], 2);
    assert_eq!(first["reasons"]["spam"], 1);
    assert_eq!(first["reasons"]["abuse"], 1);
    assert_eq!(first["texts"][0], "Sells pills.");
    let table = stdout(&h.replyctl(&site.mod_token, &["--output", "table", "reports"]));
    assert!(table.contains("spam 1, abuse 1"), "{table}");

    stdout(&h.replyctl(&site.mod_token, &["approve", &id]));
    let reported = json(&h, &site, &["reports"]);
    assert_eq!(
        reported["comments"],
        serde_json::json!([]),
        "a decision clears them"
    );
    assert_eq!(
        listed(&mut comments, "story", "", 0, "")
            .await
            .comments
            .len(),
        1
    );
    let audit = json(&h, &site, &["audit", "--comment", &id]);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec!["approve", "report_hold", "report", "report", "submit"]
    );
}

fn edit(comment_id: &str, author_token: &str, body: &str) -> proto::EditCommentRequest {
    proto::EditCommentRequest {
        comment_id: comment_id.into(),
        author_token: author_token.into(),
        body: body.into(),
    }
}

/// The reason of a refusal's `google.rpc.ErrorInfo`, or of its `PreconditionFailure`.
fn refusal_kind(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    if let Some(info) = status.get_details_error_info() {
        return info.reason;
    }
    status
        .get_details_precondition_failure()
        .and_then(|failure| failure.violations.into_iter().next())
        .map(|violation| violation.r#type)
        .unwrap_or_default()
}

async fn an_author_edits_a_reply_within_the_window_and_it_is_assessed_again(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let hooks = h
        .moderator_token(&[site.id], &[replyguard::domain::Scope::Integrations])
        .await;
    stdout(&h.replyctl(
        &hooks,
        &[
            "webhook",
            "add",
            "https://hooks.example.com/r",
            "--events",
            "comment.held",
        ],
    ));
    let jane = comments
        .submit_comment(reply_by("story", "Old words.", "Jane", "jane@example.com"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(jane.status(), CommentStatus::Approved);
    let id = jane.comment.expect("comment").id;
    let bob = comments
        .submit_comment(reply_by("story", "Bob here.", "Bob", "bob@example.com"))
        .await
        .expect("submit")
        .into_inner();

    // Off by default: nobody may edit.
    let err = comments
        .edit_comment(edit(&id, &jane.author_token, "New words."))
        .await
        .expect_err("editing is off");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(refusal_kind(&err), "EDIT_WINDOW");
    let policy = policy_set(&h, &site, "edit-window-seconds", "600");
    assert_eq!(policy["edit_window_seconds"], 600);

    for (req, field) in [
        (edit("nope", &jane.author_token, "New words."), "comment_id"),
        (edit(&id, "", "New words."), "author_token"),
        (edit(&id, "not-a-token", "New words."), "author_token"),
        (edit(&id, &jane.author_token, "  "), "body"),
    ] {
        let err = comments.edit_comment(req).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(bad_fields(&err), vec![field]);
    }
    let err = comments
        .edit_comment(edit(&id, &bob.author_token, "Bob's words now."))
        .await
        .expect_err("another author's token");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(refusal_kind(&err), "NOT_THE_AUTHOR");
    let other = h.site("blog.example.com").await;
    let err = h
        .comments(&other.site_key)
        .await
        .edit_comment(edit(&id, &jane.author_token, "New words."))
        .await
        .expect_err("another site's reply");
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "the token is this site's"
    );

    // The public listing is cached before the edit and shows the new text after it.
    let shown = listed(&mut comments, "story", "", 0, "").await;
    assert_eq!(shown.comments[0].body, "Old words.");
    let edited = comments
        .edit_comment(edit(
            &id,
            &jane.author_token,
            "New words; write to jane@example.com",
        ))
        .await
        .expect("edit")
        .into_inner();
    assert!(edited.changed);
    assert_eq!(edited.status(), CommentStatus::Approved);
    let body = &edited.comment.as_ref().expect("comment").body;
    assert!(
        !body.contains("jane@example.com") && body.starts_with("New words"),
        "{body}"
    );
    let shown = listed(&mut comments, "story", "", 0, "").await;
    assert_eq!(&shown.comments[0].body, body);
    let same = comments
        .edit_comment(edit(
            &id,
            &jane.author_token,
            "New words; write to jane@example.com",
        ))
        .await
        .expect("edit")
        .into_inner();
    assert!(!same.changed, "the same text changes nothing");

    // Two links hold it, as they hold a new reply; a clean text then leaves it waiting.
    let held = comments
        .edit_comment(edit(&id, &jane.author_token, LINKED))
        .await
        .expect("edit")
        .into_inner();
    assert_eq!(held.status(), CommentStatus::Pending);
    let shown = listed(&mut comments, "story", "", 0, "").await;
    assert_eq!(shown.comments.len(), 1, "only Bob's is public now");
    let own = listed(&mut comments, "story", &jane.author_token, 0, "").await;
    assert_eq!(own.comments.len(), 2, "Jane still sees hers, held");
    let again = comments
        .edit_comment(edit(&id, &jane.author_token, "Clean words again."))
        .await
        .expect("edit")
        .into_inner();
    assert_eq!(
        again.status(),
        CommentStatus::Pending,
        "an edit never approves"
    );

    let audit = json(&h, &site, &["audit", "--comment", &id]);
    let entries = audit["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, vec!["edit", "edit", "edit", "submit"]);
    assert_eq!(entries[1]["from_status"], "approved", "{audit}");
    assert_eq!(entries[1]["to_status"], "pending", "{audit}");
    let first = entries[2]["note"].as_str().expect("a note");
    assert!(
        first.contains("before: Old words.") && first.contains("after: New words"),
        "{first}"
    );
    assert!(!audit.to_string().contains("jane@example.com"), "{audit}");
    let deliveries = serde_json::to_string(
        &serde_json::from_str::<serde_json::Value>(&stdout(
            &h.replyctl(&hooks, &["--output", "json", "webhook", "deliveries"]),
        ))
        .expect("JSON"),
    )
    .expect("text");
    assert!(
        deliveries.contains("comment.held") && deliveries.contains(&id),
        "the hold is told as any hold is: {deliveries}"
    );

    // Once the window has passed, and for a rejected reply, no more.
    h.db.execute(
        "UPDATE comments SET created_at = '2000-01-01 00:00:00+00:00' \
         WHERE author_name = 'Jane'",
    )
    .await;
    let err = comments
        .edit_comment(edit(&id, &jane.author_token, "Too late."))
        .await
        .expect_err("the window has passed");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(refusal_kind(&err), "EDIT_WINDOW");
    let bob_id = bob.comment.expect("comment").id;
    stdout(&h.replyctl(&site.mod_token, &["reject", &bob_id]));
    let err = comments
        .edit_comment(edit(&bob_id, &bob.author_token, "Please?"))
        .await
        .expect_err("rejected");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(refusal_kind(&err), "NOT_EDITABLE");
}

async fn an_erased_authors_edits_leave_no_text_in_the_audit_log(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    policy_set(&h, &site, "edit-window-seconds", "60");
    let jane = comments
        .submit_comment(reply_by(
            "story",
            "Secret plan.",
            "Jane",
            "jane@example.com",
        ))
        .await
        .expect("submit")
        .into_inner();
    let id = jane.comment.expect("comment").id;
    comments
        .edit_comment(edit(&id, &jane.author_token, "Another secret plan."))
        .await
        .expect("edit");
    let eraser = h
        .moderator_token(&[site.id], &[replyguard::domain::Scope::Erase])
        .await;
    stdout(&h.replyctl(&eraser, &["erase", "--email", "jane@example.com", "--yes"]));
    let audit = json(&h, &site, &["audit", "--comment", &id]);
    assert!(!audit.to_string().contains("secret plan"), "{audit}");
    assert_eq!(audit["entries"][0]["action"], "edit", "{audit}");
}

fn days_ago(days: i64) -> prost_types::Timestamp {
    let at = chrono::Utc::now() - chrono::Duration::days(days);
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

/// A reply to `article`, with the host's word on when the article was published.
fn dated(
    article: &str,
    body: &str,
    published_days_ago: Option<i64>,
) -> proto::SubmitCommentRequest {
    let mut request = common::reply(article, body);
    request.article_published_at = published_days_ago.map(days_ago);
    request
}

async fn closed_flag(
    comments: &mut common::Comments,
    article: &str,
    published_days_ago: Option<i64>,
) -> bool {
    comments
        .list_comments(proto::ListCommentsRequest {
            article: article.into(),
            article_published_at: published_days_ago.map(days_ago),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .closed
}

fn refused_as_closed(result: Result<tonic::Response<proto::SubmitCommentResponse>, tonic::Status>) {
    let err = result.expect_err("the article is closed");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(refusal_kind(&err), "ARTICLE_CLOSED");
}

async fn an_article_closes_at_a_moderators_time_or_by_its_age(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;

    // A close an hour ahead leaves the article open until then, and is listed with its time.
    let closing = json(&h, &site, &["close", "live-blog", "--in", "1h"]);
    assert_eq!(closing["changed"], true, "{closing}");
    assert!(closing["closes_at"].is_string(), "{closing}");
    comments
        .submit_comment(dated("live-blog", "Still open.", None))
        .await
        .expect("open until then");
    assert!(!closed_flag(&mut comments, "live-blog", None).await);
    let listed = json(&h, &site, &["closed"]);
    let from: chrono::DateTime<chrono::Utc> = listed["articles"][0]["closed_at"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("RFC 3339");
    assert!(
        from > chrono::Utc::now() + chrono::Duration::minutes(59),
        "{listed}"
    );
    // Closing again moves a close that lies ahead: here to a time past, so it is in effect.
    let moved = json(
        &h,
        &site,
        &["close", "live-blog", "--at", "2026-01-01T00:00:00Z"],
    );
    assert_eq!(moved["changed"], true, "{moved}");
    refused_as_closed(
        comments
            .submit_comment(dated("live-blog", "Too late.", None))
            .await,
    );
    assert!(closed_flag(&mut comments, "live-blog", None).await);
    let again = json(&h, &site, &["close", "live-blog", "--in", "2h"]);
    assert_eq!(again["changed"], false, "a close in effect stays: {again}");
    let audit = json(&h, &site, &["audit", "--action", "close_article"]);
    assert!(
        audit["entries"][1]["note"]
            .as_str()
            .is_some_and(|note| note.starts_with("live-blog from ")),
        "{audit}"
    );

    // By age: a publication time 40 days ago closes the article under close-after-days 30.
    let policy = policy_set(&h, &site, "close-after-days", "30");
    assert_eq!(policy["close_after_days"], 30);
    assert!(
        !closed_flag(&mut comments, "old-story", None).await,
        "not known yet"
    );
    assert!(
        closed_flag(&mut comments, "old-story", Some(40)).await,
        "the host's word at hand counts"
    );
    refused_as_closed(
        comments
            .submit_comment(dated("old-story", "Hello?", Some(40)))
            .await,
    );
    assert!(
        closed_flag(&mut comments, "old-story", None).await,
        "the time a refused reply brought is kept"
    );
    let err = comments
        .prepare_form(proto::PrepareFormRequest {
            article: "old-story".into(),
            ..Default::default()
        })
        .await
        .expect_err("no form for it");
    assert_eq!(err.code(), Code::FailedPrecondition);
    comments
        .submit_comment(dated("fresh-story", "Ten days in.", Some(10)))
        .await
        .expect("open");
    let err = comments
        .submit_comment(proto::SubmitCommentRequest {
            article_published_at: Some(prost_types::Timestamp {
                seconds: -5,
                nanos: 0,
            }),
            ..dated("fresh-story", "Odd time.", None)
        })
        .await
        .expect_err("a time before 1970");
    assert_eq!(bad_fields(&err), vec!["article_published_at"]);

    // Without a publication time, the first reply starts the article's age.
    let first = comments
        .submit_comment(dated("undated", "First!", None))
        .await
        .expect("open")
        .into_inner();
    assert!(!closed_flag(&mut comments, "undated", None).await);
    h.db.execute(
        "UPDATE article_dates SET first_reply_at = '2000-01-01 00:00:00+00:00' \
         WHERE article = 'undated'",
    )
    .await;
    // A change of close-after-days drops every clock the servers keep.
    policy_set(&h, &site, "close-after-days", "31");
    refused_as_closed(
        comments
            .submit_comment(dated("undated", "Second.", None))
            .await,
    );
    let first_id = first.comment.expect("comment").id;
    let err = comments
        .edit_comment(edit(&first_id, &first.author_token, "First, edited."))
        .await
        .expect_err("no edits either");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Off again: only the moderator's close stands.
    policy_set(&h, &site, "close-after-days", "0");
    assert!(!closed_flag(&mut comments, "old-story", None).await);
    comments
        .submit_comment(dated("undated", "Second.", None))
        .await
        .expect("open again");
    assert!(closed_flag(&mut comments, "live-blog", None).await);
    stdout(&h.replyctl(&site.mod_token, &["reopen", "live-blog"]));
    comments
        .submit_comment(dated("live-blog", "Back.", None))
        .await
        .expect("reopened");
}

/// A reply by `email`, sent by the host for the signed-in reader `reader`, if any.
fn vouched(body: &str, email: &str, reader: Option<&str>) -> proto::SubmitCommentRequest {
    let mut request = reply_by("story", body, "Jane", email);
    request.reader_id = reader.unwrap_or_default().into();
    request
}

async fn a_reader_the_host_vouches_for_is_trusted_on_their_own_replies(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    policy_set(&h, &site, "hold-new-authors", "1");

    let first = comments
        .submit_comment(vouched("My first.", "jane@example.com", Some("account-17")))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(first.status(), CommentStatus::Pending, "new on the site");
    decide(
        &mut moderation,
        ModerationAction::Approve,
        &[first.comment.expect("comment").id],
    )
    .await;

    // The same reader with another address: trusted, on their own replies.
    let (_, status, assessment) = common::assessed(
        &h,
        &site,
        vouched("Another one.", "jane.other@example.com", Some("account-17")),
    )
    .await;
    assert_eq!(status, CommentStatus::Approved);
    assert!(
        assessment
            .reasons
            .iter()
            .any(|r| r.rule == "history-trusted"),
        "{assessment:?}"
    );
    // Another reader typing Jane's address is new: an email anyone can type is not who they are.
    let typed = comments
        .submit_comment(vouched(
            "I am Jane.",
            "jane@example.com",
            Some("account-99"),
        ))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(typed.status(), CommentStatus::Pending);
    // Without a reader, trust rests on the email as before.
    let unknown = comments
        .submit_comment(vouched("Jane again.", "jane@example.com", None))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(unknown.status(), CommentStatus::Approved);
    // Through replyctl, as a host's script would.
    let sent = stdout(&h.replyctl(
        &site.site_key,
        &[
            "--output",
            "json",
            "submit",
            "--article",
            "story",
            "--name",
            "Jane",
            "--email",
            "jane.third@example.com",
            "--reader",
            "account-17",
            "And a third.",
        ],
    ));
    assert!(sent.contains("\"approved\""), "{sent}");

    let err = comments
        .submit_comment(vouched("Long id.", "x@example.com", Some(&"a".repeat(201))))
        .await
        .expect_err("too long");
    assert_eq!(bad_fields(&err), vec!["reader_id"]);
    let rows = h.db.rows().await;
    assert!(
        !rows.iter().any(|row| row.contains("account-17")),
        "only a keyed hash of the reader's id is kept"
    );
}

/// A reply from the client address `ip`.
fn from_address(body: &str, n: u32, ip: &str) -> proto::SubmitCommentRequest {
    let mut request = reply_by("story", body, "Sam", &format!("sam{n}@example.com"));
    request.client.as_mut().expect("client").ip = ip.into();
    request
}

async fn an_address_with_enough_spam_in_its_window_is_blocked_for_a_time(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    policy_set(&h, &site, "blocked-terms", "casino");
    let spam = |n: u32, ip: &str| from_address(&format!("Best casino {n} here."), n, ip);

    // Off by default: spam is spam, and nobody is blocked for it.
    for n in 0..3 {
        let sent = comments
            .submit_comment(spam(n, "2001:db8::55"))
            .await
            .expect("submit")
            .into_inner();
        assert_eq!(sent.status(), CommentStatus::Spam);
    }
    assert_eq!(
        json(&h, &site, &["blocks"])["entries"],
        serde_json::json!([])
    );

    let policy = policy_set(&h, &site, "auto-block-spam", "2");
    assert_eq!(policy["auto_block_spam"], 2);
    assert_eq!(policy["auto_block_window_minutes"], 60);
    policy_set(&h, &site, "auto-block-hours", "6");
    let refused = h.replyctl(&site.mod_token, &["policy", "set", "auto-block-hours", "0"]);
    assert!(!refused.status.success(), "a block always ends");

    let before = chrono::Utc::now();
    for n in 10..12 {
        comments
            .submit_comment(spam(n, "2001:db8::66"))
            .await
            .expect("submit");
    }
    comments
        .submit_comment(spam(20, "2001:db8::77"))
        .await
        .expect("submit");
    let listed = json(&h, &site, &["blocks"]);
    let entries = listed["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{listed}");
    let entry = &entries[0];
    assert_eq!(entry["kind"], "ip");
    assert_eq!(entry["value"], "2001:db8::66");
    assert_eq!(entry["actor"], "system");
    assert_eq!(
        entry["note"], "automatic: 2 spam replies from this address within 60 minutes",
        "{entry}"
    );
    let until: chrono::DateTime<chrono::Utc> = entry["expires_at"]
        .as_str()
        .expect("an end")
        .parse()
        .expect("a time");
    let lasts = until - before;
    assert!(
        lasts >= chrono::Duration::minutes(359) && lasts <= chrono::Duration::minutes(361),
        "{entry}"
    );
    let audit = json(&h, &site, &["audit", "--action", "block"]);
    assert_eq!(audit["entries"][0]["actor"], "system", "{audit}");
    assert!(
        audit["entries"][0]["note"]
            .as_str()
            .is_some_and(|note| note.contains("2001:db8::66") && note.contains("automatic")),
        "{audit}"
    );

    // The block catches what the address sends next, however clean.
    let caught = comments
        .submit_comment(from_address("A kind word.", 30, "2001:db8::66"))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(caught.status(), CommentStatus::Spam);
    let listed = json(&h, &site, &["blocks"]);
    assert_eq!(listed["entries"][0]["hits"], 1, "{listed}");
}

async fn a_policy_tried_on_recent_replies_tells_what_would_move_and_changes_nothing(
    backend: Backend,
) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let texts = [
        "See https://one.example/x and https://two.example/y for the minutes.",
        "The plan is at https://council.example/plan and https://paper.example/story today.",
        "Mail me at jane@example.com about the bridge, it is a fine plan.",
        "Thanks for the report on the school budget.",
    ];
    let mut held = Vec::new();
    for (n, text) in texts.iter().enumerate() {
        let sent = comments
            .submit_comment(reply_by(
                "story",
                text,
                "Reader",
                &format!("r{n}@example.com"),
            ))
            .await
            .expect("submit")
            .into_inner();
        if sent.status() == CommentStatus::Pending {
            held.push(sent.comment.expect("comment").id);
        }
    }
    assert_eq!(held.len(), 2, "two links hold a reply");
    decide(
        &mut moderation,
        ModerationAction::Approve,
        std::slice::from_ref(&held[0]),
    )
    .await;
    // A reply from before the window is not replayed.
    comments
        .submit_comment(reply_by(
            "story",
            "From long ago.",
            "Old",
            "old@example.com",
        ))
        .await
        .expect("submit");
    h.db.execute(
        "UPDATE comments SET created_at = '2000-01-01 00:00:00+00:00' WHERE author_name = 'Old'",
    )
    .await;
    let before = h.db.rows().await;

    // Holding everything would hold the two approved at once; the held ones stay held.
    let tried = json(
        &h,
        &site,
        &["policy", "try", "mode", "moderate-all", "--days", "30"],
    );
    assert_eq!(tried["replayed"], 4, "{tried}");
    assert_eq!(tried["unchanged"], 2, "{tried}");
    assert_eq!(tried["skipped"], 0, "{tried}");
    assert_eq!(tried["changed"], serde_json::json!(["mode"]), "{tried}");
    let moves = tried["moves"].as_array().expect("moves");
    assert_eq!(moves.len(), 1, "{tried}");
    let moved = &moves[0];
    assert_eq!(moved["from"], "approved");
    assert_eq!(moved["to"], "pending");
    assert_eq!(moved["count"], 2);
    assert_eq!(moved["now"], serde_json::json!({"approved": 2}));
    let examples = moved["examples"].as_array().expect("examples");
    assert_eq!(examples.len(), 2);
    assert_eq!(
        examples[0]["excerpt"],
        "Mail me at [email hidden] about the bridge, it is a fine plan."
    );
    assert!(
        !tried.to_string().contains("jane@example.com"),
        "examples show the public text: {tried}"
    );

    // A higher hold threshold lets through what scores below it, whatever moderators did since.
    let mut below = 0;
    for id in &held {
        let item = moderation
            .get_comment(proto::GetCommentRequest { id: id.clone() })
            .await
            .expect("get")
            .into_inner();
        let score = item
            .comment
            .and_then(|c| c.assessment)
            .expect("assessed")
            .score;
        below += u64::from(score < 4.5);
    }
    assert!(below > 0, "a two-link reply scores below 4.5");
    let tried = json(&h, &site, &["policy", "try", "hold-threshold", "4.5"]);
    let moved = &tried["moves"][0];
    assert_eq!(moved["from"], "pending", "{tried}");
    assert_eq!(moved["to"], "approved", "{tried}");
    assert_eq!(moved["count"], below, "{tried}");
    assert!(
        moved["examples"][0]["score_before"] == moved["examples"][0]["score_after"]
            && moved["examples"][0]["rules"] == serde_json::json!([]),
        "only the threshold moved it: {tried}"
    );
    let table = stdout(&h.replyctl(
        &site.mod_token,
        &["--output", "table", "policy", "try", "mode", "moderate-all"],
    ));
    assert!(
        table.contains("would move") && table.contains("FROM") && table.contains("[email hidden]"),
        "{table}"
    );
    let nothing = json(&h, &site, &["policy", "try", "max-links", "2"]);
    assert_eq!(nothing["moves"], serde_json::json!([]), "{nothing}");
    assert_eq!(nothing["changed"], serde_json::json!([]), "{nothing}");
    h.db.assert_unchanged(&before).await;

    // Refused as `policy set` refuses, before or by the server.
    let bad = h.replyctl(&site.mod_token, &["policy", "try", "max-links", "many"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("policy try"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let bad = h.replyctl(&site.mod_token, &["policy", "try", "hold-threshold", "9"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hold-threshold"));
    let err = moderation
        .try_policy(proto::TryPolicyRequest {
            policy: Some(proto::Policy::default()),
            days: 366,
            ..Default::default()
        })
        .await
        .expect_err("too far back");
    assert_eq!(bad_fields(&err), vec!["days"]);
    h.db.assert_unchanged(&before).await;
    let moderator_only = h
        .moderator_token(&[site.id], &[replyguard::domain::Scope::Moderate])
        .await;
    let err = h
        .moderation(&moderator_only)
        .await
        .try_policy(proto::TryPolicyRequest {
            policy: Some(proto::Policy::default()),
            ..Default::default()
        })
        .await
        .expect_err("needs the policy scope");
    assert_eq!(err.code(), Code::PermissionDenied);
}

backend_tests!(
    flavor = "multi_thread";
    an_author_token_shows_its_author_their_own_held_replies,
    an_author_token_of_another_site_or_altered_is_refused,
    an_erased_author_token_shows_nothing_held,
    a_new_author_waits_until_enough_replies_were_approved,
    a_block_for_a_time_counts_what_it_catches_and_the_sweep_ends_it,
    a_closed_article_keeps_the_moderators_note,
    readers_report_a_comment_once_each_and_enough_reports_hold_it,
    an_author_edits_a_reply_within_the_window_and_it_is_assessed_again,
    an_erased_authors_edits_leave_no_text_in_the_audit_log,
    an_article_closes_at_a_moderators_time_or_by_its_age,
    a_reader_the_host_vouches_for_is_trusted_on_their_own_replies,
    an_address_with_enough_spam_in_its_window_is_blocked_for_a_time,
    a_policy_tried_on_recent_replies_tells_what_would_move_and_changes_nothing,
);
