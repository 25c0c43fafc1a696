//! `replyguard import` as an operator runs it: the real binary imports an export file into a
//! site of a running server, and what it stored is read back through the real API.
//!
//! The examples in `../shared/data/imports` are copied unchanged, under the MIT licence, from
//! isso-comments/isso 9c24f9b3d9f259cff84b67e50875e6137b459ef7 (`isso/tests/wordpress.xml`,
//! `isso/tests/disqus.xml`, `isso/tests/generic.json`) and umputun/remark42
//! 4793c1cd2c41f3b3c4fcc9a1bb610752eddf9410 (`backend/app/migrator/testdata/commento.json`,
//! `backend/app/migrator/testdata/disqus.xml`); see that folder's README. The files in
//! `tests/data/imports` were written for these tests (see its README).

mod common;

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Output, Stdio},
};

use chrono::{DateTime, Utc};
use common::{Backend, Harness, TestSite, backend_tests, reply_by, submitted};
use replyguard::{
    domain::{ArticleClosing, Blocked, MailPages, NewBlock, Notice, WebhookEvent},
    privacy::Vault,
    proto::{self, CommentStatus, ListCommentsRequest},
    spam::{Mode, Policy},
};
use serde_json::Value;

const SITE: &str = "blog.example.com";

/// An example export of another project (see the provenance above).
fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/imports")
        .join(name)
}

/// An export written for these tests.
fn ours(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/imports")
        .join(name)
}

/// `replyguard import` on the harness's database with its key, the report as JSON.
fn import_command(h: &Harness, format: &str, file: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"));
    command
        .env_remove("REPLYGUARD_DATABASE_URL")
        .env_remove("REPLYGUARD_RETAIN_CLIENT_DAYS")
        .env("REPLYGUARD_SECRET_KEY", h.key.to_base64())
        .args(["import", "--site", SITE, "--format", format, "--json"])
        .args(["--database", &h.settings.database.url])
        .args(extra)
        .arg(file);
    command
}

fn import(h: &Harness, format: &str, file: &Path, extra: &[&str]) -> Value {
    report(
        &import_command(h, format, file, extra)
            .output()
            .expect("replyguard runs"),
    )
}

fn report(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

fn n(report: &Value, pointer: &str) -> u64 {
    report.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// Every approved comment of an article, as the public reads it.
async fn listed(h: &Harness, site: &TestSite, article: &str) -> Vec<proto::Comment> {
    let mut comments = h.comments(&site.site_key).await;
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = comments
            .list_comments(ListCommentsRequest {
                article: article.to_owned(),
                page_size: 50,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        listed.extend(page.comments);
        if page.next_page_token.is_empty() {
            return listed;
        }
        page_token = page.next_page_token;
    }
}

/// Every item of one queue of the site.
async fn queue(h: &Harness, site: &TestSite, status: CommentStatus) -> Vec<proto::QueueItem> {
    let mut moderation = h.moderation(&site.mod_token).await;
    common::whole_queue(&mut moderation, status, 100).await
}

/// The queue's comments by author name.
async fn by_author(
    h: &Harness,
    site: &TestSite,
    status: CommentStatus,
) -> HashMap<String, proto::QueueItem> {
    queue(h, site, status)
        .await
        .into_iter()
        .map(|item| {
            let name = item.comment.as_ref().expect("comment").author_name.clone();
            (name, item)
        })
        .collect()
}

fn seconds(comment: &proto::Comment) -> i64 {
    comment.created_at.as_ref().expect("a time").seconds
}

fn time(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("a time")
        .timestamp()
}

async fn a_wordpress_export_keeps_threads_times_statuses_and_text(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let report = import(&h, "wxr", &ours("wordpress-messy.xml"), &[]);

    assert_eq!(n(&report, "/imported"), 10, "{report}");
    assert_eq!(n(&report, "/statuses/approved"), 7, "{report}");
    assert_eq!(n(&report, "/statuses/pending"), 1);
    assert_eq!(n(&report, "/statuses/spam"), 1);
    assert_eq!(n(&report, "/statuses/rejected"), 1);
    assert_eq!(n(&report, "/skipped/pingback"), 1, "{report}");
    assert_eq!(n(&report, "/skipped/trackback"), 1);
    assert_eq!(n(&report, "/skipped/author.email is required"), 1);
    assert_eq!(n(&report, "/skipped/body is required"), 1, "{report}");
    assert_eq!(n(&report, "/skipped/a status replyguard does not know"), 1);
    assert_eq!(n(&report, "/parent_missing"), 1, "the orphan: {report}");
    assert_eq!(n(&report, "/dropped_fields/author.website"), 1);
    assert_eq!(
        n(&report, "/dropped_fields/client.ip"),
        0,
        "older than the retention"
    );

    // The article is the link's path with its query; the thread as it was, at its times.
    let thread = listed(&h, &site, "/?p=101").await;
    let names: Vec<&str> = thread.iter().map(|c| c.author_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Rita Regular",
            "Orphan Reply",
            "Rita Regular",
            "Early Reply",
            "Bad Website"
        ],
        "oldest thread first, a reply under its parent"
    );
    let first = &thread[0];
    assert_eq!(
        seconds(first),
        time("2016-03-01T09:00:00Z"),
        "GMT time kept"
    );
    assert_eq!(
        first.body,
        "Tom & Jerry\u{2019}s view: see the budget (https://council.example.net/budget).\n\n\
         Second paragraph\non two lines.",
        "HTML and entities made plain, the link kept"
    );
    assert!(
        first
            .body_html
            .contains("href=\"https://council.example.net/budget\""),
        "rendered as a submission is: {}",
        first.body_html
    );
    assert!(thread[1].parent_id.is_empty(), "the orphan is at the top");
    assert_eq!(
        thread[3].parent_id, thread[2].id,
        "the early reply found its parent"
    );
    assert_eq!(thread[3].depth, 1);
    assert!(
        thread[4].author_website.is_empty(),
        "the invalid website left out"
    );

    // The pending reply is under Rita's comment; old comments keep no address.
    let pending = by_author(&h, &site, CommentStatus::Pending).await;
    let pat = pending["Pat Pending"].comment.as_ref().expect("comment");
    assert_eq!(pat.parent_id, first.id);
    assert_eq!(pat.body, "I am not so sure <about> that.");
    assert!(
        pending["Pat Pending"].ip.is_empty(),
        "older than the retention"
    );
    let spam = by_author(&h, &site, CommentStatus::Spam).await;
    assert!(spam.contains_key("Cheap Pills"));
    let rejected = by_author(&h, &site, CommentStatus::Rejected).await;
    assert!(rejected.contains_key("Tess Trashed"));

    // Two posts sharing a link share its article.
    assert_eq!(listed(&h, &site, "/shared/").await.len(), 2);
}

async fn client_details_are_kept_while_the_retention_allows(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let mut command = import_command(&h, "wxr", &ours("wordpress-messy.xml"), &[]);
    let report = report(
        &command
            .env("REPLYGUARD_RETAIN_CLIENT_DAYS", "36500")
            .output()
            .expect("runs"),
    );
    assert_eq!(n(&report, "/imported"), 10);
    assert_eq!(n(&report, "/dropped_fields/client.ip"), 1, "{report}");
    let pending = by_author(&h, &site, CommentStatus::Pending).await;
    assert_eq!(pending["Pat Pending"].ip, "198.51.100.2");
}

async fn article_keys_may_be_the_posts_ids_or_whole_links(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    import(
        &h,
        "wxr",
        &ours("wordpress-messy.xml"),
        &["--article-key", "id"],
    );
    assert_eq!(listed(&h, &site, "201").await.len(), 1);
    assert_eq!(listed(&h, &site, "202").await.len(), 1);
    assert_eq!(listed(&h, &site, "101").await.len(), 5);

    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    import(
        &h,
        "wxr",
        &shared("isso-wordpress.xml"),
        &["--article-key", "url"],
    );
    let thread = listed(&h, &site, "http://example.tld/2014/test/").await;
    assert!(!thread.is_empty());
}

async fn importing_again_adds_nothing(backend: Backend) {
    let h = Harness::new(backend).await;
    let _site = h.site(SITE).await;
    let files = [
        ("wxr", shared("isso-wordpress.xml")),
        ("wxr", ours("wordpress-messy.xml")),
        ("disqus", shared("isso-disqus.xml")),
        ("isso", shared("isso-generic.json")),
        ("commento", shared("remark42-commento.json")),
    ];
    let mut first = 0;
    for (format, file) in &files {
        first += n(&import(&h, format, file, &[]), "/imported");
    }
    assert!(first > 20, "{first}");
    let before = h.db.rows().await;
    for (format, file) in &files {
        let again = import(&h, format, file, &[]);
        assert_eq!(n(&again, "/imported"), 0, "{again}");
    }
    h.db.assert_unchanged(&before).await;
}

async fn an_imported_regular_is_trusted_when_they_reply_again(backend: Backend) {
    let h = Harness::new(backend).await;
    let policy = Policy {
        mode: Mode::TrustedOnly,
        flood_interval_seconds: 0,
        ..Policy::default()
    };
    let site = h.site_with(SITE, policy).await;
    import(&h, "wxr", &ours("wordpress-messy.xml"), &[]);

    let mut comments = h.comments(&site.site_key).await;
    let (_, status) = submitted(
        &mut comments,
        reply_by(
            "/?p=101",
            "Back again after the move, with more to say.",
            "Rita Regular",
            "rita@regulars.example.org",
        ),
    )
    .await;
    assert_eq!(status, CommentStatus::Approved, "her history came with her");
    let (_, status) = submitted(
        &mut comments,
        reply_by(
            "/?p=101",
            "A first reply from someone new here.",
            "New Reader",
            "new.reader@example.org",
        ),
    )
    .await;
    assert_eq!(status, CommentStatus::Pending, "a stranger waits");

    // Same author, same key: imported and submitted comments are one author's.
    let approved = queue(&h, &site, CommentStatus::Approved).await;
    let rita: Vec<&str> = approved
        .iter()
        .filter(|item| item.comment.as_ref().expect("c").author_name == "Rita Regular")
        .map(|item| item.author_hash.as_str())
        .collect();
    assert_eq!(rita.len(), 3, "two imported, one submitted");
    assert!(rita.iter().all(|hash| *hash == rita[0]), "{rita:?}");
}

async fn emails_are_stored_sealed_never_in_clear(backend: Backend) {
    let h = Harness::new(backend).await;
    let _site = h.site(SITE).await;
    let out = import_command(&h, "wxr", &ours("wordpress-messy.xml"), &[])
        .output()
        .expect("runs");
    report(&out);
    for email in [
        "rita@regulars.example.org",
        "pat@example.org",
        "regulars.example",
    ] {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(email));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(email));
        let rows = h.db.rows().await;
        assert!(
            !rows.iter().any(|row| row.to_lowercase().contains(email)),
            "{email} is stored in clear"
        );
    }
}

async fn a_disqus_export_keeps_threads_and_its_deleted_and_spam_flags(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let report = import(&h, "disqus", &shared("isso-disqus.xml"), &[]);
    assert_eq!(n(&report, "/imported"), 4, "{report}");
    assert_eq!(n(&report, "/skipped/its thread is not in the export"), 1);
    // The deleted post has no text left: its reply is placed at the top, as a reply to a
    // skipped comment.
    assert_eq!(n(&report, "/skipped/body is required"), 1, "{report}");
    assert_eq!(n(&report, "/parent_skipped"), 1, "{report}");
    assert_eq!(n(&report, "/parent_missing"), 0, "{report}");
    let thread = listed(&h, &site, "/").await;
    let reply = thread
        .iter()
        .find(|c| c.body == "Hello, World.")
        .expect("the reply, its <p> made plain");
    let parent = thread
        .iter()
        .find(|c| c.id == reply.parent_id)
        .expect("its parent is listed");
    assert_eq!(parent.author_name, "peter");
    assert_eq!(seconds(reply), time("2013-10-11T06:51:33Z"));

    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let report = import(&h, "disqus", &shared("remark42-disqus.xml"), &[]);
    assert_eq!(n(&report, "/statuses/spam"), 1, "{report}");
    assert_eq!(queue(&h, &site, CommentStatus::Spam).await.len(), 1);
}

async fn an_isso_import_skips_what_has_no_email_and_says_why(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let report = import(&h, "isso", &shared("isso-generic.json"), &[]);
    assert_eq!(n(&report, "/imported"), 1, "{report}");
    assert_eq!(n(&report, "/skipped/author.email is required"), 1);
    let thread = listed(&h, &site, "/posts/0007/").await;
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0].author_name, "Richard Crinshaw");
    assert_eq!(seconds(&thread[0]), time("2005-05-08T06:50:26Z"));
}

async fn a_commento_export_maps_its_states_and_replies(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let report = import(&h, "commento", &shared("remark42-commento.json"), &[]);
    assert_eq!(n(&report, "/imported"), 2, "{report}");
    assert_eq!(
        n(
            &report,
            "/skipped/author.name is required; author.email is required"
        ),
        1,
        "the anonymous comment: {report}"
    );
    let thread = listed(&h, &site, "/blog/post/1").await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].parent_id, thread[0].id);

    let report = import(&h, "commento", &ours("commento-states.json"), &[]);
    assert_eq!(n(&report, "/statuses/approved"), 2, "{report}");
    assert_eq!(n(&report, "/statuses/pending"), 1);
    assert_eq!(n(&report, "/statuses/spam"), 1);
    assert_eq!(n(&report, "/statuses/rejected"), 1);
    assert_eq!(n(&report, "/parent_missing"), 1);
    let pending = by_author(&h, &site, CommentStatus::Pending).await;
    let una = listed(&h, &site, "/notes/1").await;
    assert_eq!(
        pending["Vic"].comment.as_ref().expect("c").parent_id,
        una[0].id
    );
    assert_eq!(
        una[0].body,
        "Approved **markdown** with &amp; kept as typed."
    );
}

async fn learning_teaches_the_classifier_from_spam_and_approved_comments(backend: Backend) {
    let h = Harness::new(backend).await;
    let _site = h.site(SITE).await;
    let before = h.db.rows().await;
    assert!(!before.iter().any(|row| row.starts_with("spam_totals")));
    let report = import(&h, "wxr", &ours("wordpress-messy.xml"), &["--learn"]);
    assert_eq!(n(&report, "/learned"), 8, "7 approved and 1 spam: {report}");
    let rows = h.db.rows().await;
    let totals: Vec<&String> = rows
        .iter()
        .filter(|r| r.starts_with("spam_totals"))
        .collect();
    assert_eq!(totals.len(), 1, "{totals:?}");
}

async fn a_broken_export_fails_clearly_and_keeps_no_part_of_a_comment(backend: Backend) {
    let h = Harness::new(backend).await;
    let _site = h.site(SITE).await;
    let whole = std::fs::read_to_string(ours("wordpress-messy.xml")).expect("read");
    let cut = &whole[..whole.find("<wp:comment_id>3<").expect("third")];
    let broken = format!("{cut}</wp:comment></channel></rss>");
    let before = h.db.rows().await;
    let mut child = import_command(&h, "wxr", Path::new("-"), &["--batch", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(broken.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("ends");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the XML is malformed"), "{said}");
    assert!(said.contains("2 comments imported before it"), "{said}");
    // The two whole comments before the break, each with its audit and source rows.
    let rows = h.db.rows().await;
    let comments = rows.iter().filter(|r| r.starts_with("comments:")).count();
    let sources = rows
        .iter()
        .filter(|r| r.starts_with("imported_comments:"))
        .count();
    assert_eq!(
        (comments, sources),
        (2, 2),
        "{:?}",
        rows.len() - before.len()
    );

    let missing = import_command(&h, "wxr", Path::new("/nonexistent/export.xml"), &[])
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

async fn a_comment_far_too_long_is_skipped_in_bounded_memory(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let comment = |id: u32, text: &str| {
        format!(
            "<wp:comment><wp:comment_id>{id}</wp:comment_id>\
             <wp:comment_author>Long Writer</wp:comment_author>\
             <wp:comment_author_email>long@example.org</wp:comment_author_email>\
             <wp:comment_date_gmt>2020-01-0{id} 00:00:00</wp:comment_date_gmt>\
             <wp:comment_content>{text}</wp:comment_content>\
             <wp:comment_approved>1</wp:comment_approved></wp:comment>"
        )
    };
    let export = format!(
        "<rss><channel><item><link>https://blog.example.com/long/</link>{}{}</item></channel></rss>",
        comment(1, &"words &amp; more words ".repeat(200_000)),
        comment(2, "A short one after it."),
    );
    let file = tempfile::NamedTempFile::new().expect("a file");
    std::fs::write(file.path(), export).expect("write");
    let report = import(&h, "wxr", file.path(), &[]);
    assert_eq!(n(&report, "/imported"), 1, "{report}");
    assert_eq!(
        n(&report, "/skipped/body is far longer than a reply may be"),
        1
    );
    let thread = listed(&h, &site, "/long/").await;
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0].body, "A short one after it.");
}

async fn counts(h: &Harness, site: &TestSite, articles: &[String]) -> HashMap<String, u64> {
    let request = proto::CountCommentsRequest {
        articles: articles.to_vec(),
    };
    h.comments(&site.site_key)
        .await
        .count_comments(request)
        .await
        .expect("count")
        .into_inner()
        .counts
}

async fn an_export_imported_into_a_fresh_deployment_reads_the_same(backend: Backend) {
    let a = Harness::new(backend).await;
    let site_a = a.site(SITE).await;
    import(&a, "wxr", &ours("wordpress-messy.xml"), &[]);
    import(&a, "commento", &ours("commento-states.json"), &[]);
    // Life on the first deployment: a reply with contact details, a decision, a closed
    // article, a block and a policy changed.
    let mut comments = a.comments(&site_a.site_key).await;
    submitted(
        &mut comments,
        reply_by(
            "/notes/1",
            "Write to me at me@example.net about the notes.",
            "Zed",
            "zed@example.org",
        ),
    )
    .await;
    let pat = by_author(&a, &site_a, CommentStatus::Pending).await["Pat Pending"]
        .comment
        .clone()
        .expect("comment")
        .id;
    common::approve(&mut a.moderation(&site_a.mod_token).await, &[pat]).await;
    let actor = "rg_mod_test";
    let closing = ArticleClosing {
        site: site_a.id,
        article: "/shared/",
        closed: true,
        actor,
        note: None,
        at: None,
    };
    assert!(a.store.close_article(&closing).await.expect("close"));
    let blocked = Blocked::EmailDomain("spam.example.com".to_owned());
    let ends = DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    let block = NewBlock {
        site: site_a.id,
        blocked: &blocked,
        actor,
        note: Some("a campaign"),
        expires_at: Some(ends),
    };
    a.store.block(&block, None).await.expect("block");
    let pages = MailPages {
        confirm_url: "https://news.example.com/confirm?t={token}".to_owned(),
        unsubscribe_url: "https://news.example.com/stop?t={token}".to_owned(),
    };
    a.store
        .set_mail_pages(site_a.id, &pages, actor)
        .await
        .expect("pages");
    let vault_a = Vault::new(&a.key);
    let notice = Notice {
        id: uuid::Uuid::now_v7(),
        site: site_a.id,
        email_sealed: vault_a.encrypt_email(site_a.id, "desk@news.example.com"),
        email_hash: vault_a
            .author_hash(site_a.id, "desk@news.example.com")
            .0
            .to_vec(),
        events: vec![WebhookEvent::CommentHeld],
        digest_minutes: 30,
        actor: actor.to_owned(),
        created_at: Utc::now(),
    };
    a.store.add_notice(&notice).await.expect("notice");
    let mut edit = |p: &Policy| {
        Some((
            Policy {
                max_links: 5,
                ..p.clone()
            },
            "more links".to_owned(),
        ))
    };
    let policy = a
        .store
        .update_policy(site_a.id, actor, &mut edit)
        .await
        .expect("policy")
        .policy;

    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("site.jsonl");
    let export = |include_emails: bool, output: Option<&Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"));
        command
            .env_remove("REPLYGUARD_DATABASE_URL")
            .env("REPLYGUARD_SECRET_KEY", a.key.to_base64())
            .args(["export", "--site", SITE, "--format", "jsonl"])
            .args(["--database", &a.settings.database.url]);
        if include_emails {
            command.arg("--include-emails");
        }
        if let Some(output) = output {
            command.arg("--output").arg(output);
        }
        let out = command.output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    export(true, Some(&file));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("the file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "personal data is its owner's alone");
    }

    // Another deployment, another key.
    let b = Harness::new(backend).await;
    let site_b = b.site(SITE).await;
    let report = import(&b, "jsonl", &file, &[]);
    assert_eq!(n(&report, "/imported"), 16, "{report}");
    assert_eq!(n(&report, "/settings/policy"), 1, "{report}");
    assert_eq!(n(&report, "/settings/closed article"), 1);
    assert_eq!(n(&report, "/settings/block"), 1);
    assert_eq!(n(&report, "/settings/mail pages"), 1);
    assert_eq!(n(&report, "/settings/notice"), 1);

    let mut articles = Vec::new();
    for status in [
        CommentStatus::Approved,
        CommentStatus::Pending,
        CommentStatus::Spam,
        CommentStatus::Rejected,
    ] {
        let (from, to) = (
            queue(&a, &site_a, status).await,
            queue(&b, &site_b, status).await,
        );
        assert!(!from.is_empty() || status == CommentStatus::Pending);
        assert_eq!(from.len(), to.len(), "{status:?}");
        for (x, y) in from.iter().zip(&to) {
            assert_eq!(x.comment, y.comment, "{status:?}");
            assert_eq!(
                (&x.raw_body, &x.masked_email, &x.ip, &x.user_agent),
                (&y.raw_body, &y.masked_email, &y.ip, &y.user_agent)
            );
            assert_eq!(
                (&x.assessment, &x.updated_at),
                (&y.assessment, &y.updated_at)
            );
            articles.push(x.comment.as_ref().expect("comment").article.clone());
        }
    }
    articles.sort();
    articles.dedup();
    assert!(articles.len() >= 3, "{articles:?}");
    for article in &articles {
        assert_eq!(
            listed(&a, &site_a, article).await,
            listed(&b, &site_b, article).await,
            "{article}"
        );
    }
    assert_eq!(
        counts(&a, &site_a, &articles).await,
        counts(&b, &site_b, &articles).await
    );
    let stored = b
        .store
        .site_by_name(SITE)
        .await
        .expect("read")
        .expect("site");
    assert_eq!(stored.policy, policy);
    let closed = b
        .store
        .closed_articles(site_b.id, None, 10)
        .await
        .expect("closed");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].article, "/shared/");
    let blocks = b
        .store
        .blocklist(site_b.id, None, 10)
        .await
        .expect("blocks");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].blocked, blocked);
    assert_eq!(blocks[0].note, "a campaign");
    assert_eq!(blocks[0].expires_at, Some(ends));
    assert_eq!(
        b.store.mail_pages(site_b.id).await.expect("pages"),
        Some(pages)
    );
    let notices = b.store.notices(site_b.id).await.expect("notices");
    assert_eq!(notices.len(), 1);
    let vault_b = Vault::new(&b.key);
    assert_eq!(
        vault_b
            .decrypt_email(site_b.id, &notices[0].email_sealed)
            .expect("sealed under the new key"),
        "desk@news.example.com"
    );
    assert_eq!(
        (&notices[0].events, notices[0].digest_minutes),
        (&notice.events, 30)
    );

    // Without --include-emails, no email and no text as written.
    let public = String::from_utf8(export(false, None).stdout).expect("text");
    assert!(
        public.contains("\"kind\":\"audit\""),
        "the audit log is there"
    );
    assert!(public.contains("\"kind\":\"mail_pages\""), "{public}");
    assert!(!public.contains("\"kind\":\"notice\""), "{public}");
    for private in [
        "zed@example.org",
        "me@example.net",
        "rita@regulars",
        "desk@news.example.com",
    ] {
        assert!(!public.to_lowercase().contains(private), "{private}");
    }
}

/// A reply to a comment the import skipped (a pingback here) is placed at the top at once, as
/// its parent will never come, instead of waiting for it in memory until the end.
async fn a_reply_to_a_skipped_comment_is_placed_at_the_top_at_once(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let comment = |id: u32, parent: u32, kind: &str, name: &str, text: &str| {
        format!(
            "<wp:comment><wp:comment_id>{id}</wp:comment_id>\
             <wp:comment_author>{name}</wp:comment_author>\
             <wp:comment_author_email>{id}@readers.example.org</wp:comment_author_email>\
             <wp:comment_date_gmt>2016-03-01 09:0{id}:00</wp:comment_date_gmt>\
             <wp:comment_content>{text}</wp:comment_content>\
             <wp:comment_approved>1</wp:comment_approved>\
             <wp:comment_type>{kind}</wp:comment_type>\
             <wp:comment_parent>{parent}</wp:comment_parent></wp:comment>"
        )
    };
    let export = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\" \
         xmlns:wp=\"http://wordpress.org/export/1.2/\"><channel>\
         <link>https://blog.example.com</link><item>\
         <link>https://blog.example.com/?p=7</link><wp:post_id>7</wp:post_id>{}{}{}</item>\
         </channel></rss>",
        comment(
            1,
            0,
            "pingback",
            "Another Blog",
            "[...] as the budget says [...]"
        ),
        comment(
            2,
            1,
            "comment",
            "Rita",
            "That other blog got the figures wrong."
        ),
        comment(3, 2, "comment", "Sam", "Which figures?"),
    );
    let file = tempfile::NamedTempFile::new().expect("a file");
    std::fs::write(file.path(), export).expect("the export");
    let report = import(&h, "wxr", file.path(), &[]);
    assert_eq!(n(&report, "/imported"), 2, "{report}");
    assert_eq!(n(&report, "/skipped/pingback"), 1, "{report}");
    assert_eq!(n(&report, "/parent_skipped"), 1, "{report}");
    assert_eq!(n(&report, "/parent_missing"), 0, "{report}");
    let listed = listed(&h, &site, "/?p=7").await;
    let rita = listed
        .iter()
        .find(|c| c.author_name == "Rita")
        .expect("Rita's");
    let sam = listed
        .iter()
        .find(|c| c.author_name == "Sam")
        .expect("Sam's");
    assert_eq!(rita.parent_id, "", "at the top");
    assert_eq!(sam.parent_id, rita.id, "Sam's answer stays under Rita's");
}

backend_tests!(
    flavor = "multi_thread";
    a_wordpress_export_keeps_threads_times_statuses_and_text,
    client_details_are_kept_while_the_retention_allows,
    article_keys_may_be_the_posts_ids_or_whole_links,
    importing_again_adds_nothing,
    an_imported_regular_is_trusted_when_they_reply_again,
    emails_are_stored_sealed_never_in_clear,
    a_disqus_export_keeps_threads_and_its_deleted_and_spam_flags,
    an_isso_import_skips_what_has_no_email_and_says_why,
    a_commento_export_maps_its_states_and_replies,
    learning_teaches_the_classifier_from_spam_and_approved_comments,
    a_broken_export_fails_clearly_and_keeps_no_part_of_a_comment,
    an_export_imported_into_a_fresh_deployment_reads_the_same,
    a_comment_far_too_long_is_skipped_in_bounded_memory,
    a_reply_to_a_skipped_comment_is_placed_at_the_top_at_once,
);
