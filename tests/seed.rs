//! `replyguard seed` as an operator runs it: the real binary fills a site of
//! a running server, and what it added is read back through the real API.

mod common;

use std::{collections::HashSet, process::Output};

use common::{Backend, Harness, backend_tests};
use replyguard::{
    ids::CommentId,
    privacy::{SecretKey, Vault},
    proto::{CommentStatus, CountCommentsRequest, GetCommentRequest, ListCommentsRequest},
};
use serde_json::Value;

const SITE: &str = "seeded.example.com";
const HOT: &str = "seed/hot";

/// Runs `replyguard seed` on the harness's database with its secret key.
fn seed(h: &Harness, site: &str, replies: u64) -> Output {
    seed_command(h, site, replies)
        .env("REPLYGUARD_SECRET_KEY", h.key.to_base64())
        .output()
        .expect("replyguard runs")
}

/// `replyguard seed` on the harness's database, with no key given yet.
fn seed_command(h: &Harness, site: &str, replies: u64) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"));
    command
        .env_remove("REPLYGUARD_DATABASE_URL")
        .env_remove("REPLYGUARD_SECRET_KEY")
        .args([
            "seed",
            "--site",
            site,
            "--replies",
            &replies.to_string(),
            "--articles",
            "20",
            "--batch",
            "700",
            "--database",
            &h.settings.database.url,
        ]);
    command
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn seeded_replies_are_queued_listed_and_counted_through_the_api(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let out = succeeded(&seed(&h, SITE, 2000));
    assert!(out.contains("seeded 2000 replies"), "{out}");

    // Every reply is in exactly one queue, oldest first, with a masked
    // email and its assessment.
    let mut moderation = h.moderation(&site.mod_token).await;
    let mut seen = HashSet::new();
    for status in [
        CommentStatus::Approved,
        CommentStatus::Pending,
        CommentStatus::Spam,
        CommentStatus::Rejected,
    ] {
        let items = common::whole_queue(&mut moderation, status, 97).await;
        assert!(!items.is_empty(), "the {status:?} queue has replies");
        let ids: Vec<CommentId> = items
            .iter()
            .map(|item| {
                let comment = item.comment.as_ref().expect("comment");
                assert_eq!(comment.status(), status);
                assert!(item.masked_email.contains("•••@"), "{}", item.masked_email);
                assert!(item.assessment.is_some(), "assessed");
                comment.id.parse().expect("a comment id")
            })
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{status:?}: oldest first"
        );
        seen.extend(ids);
    }
    assert_eq!(seen.len(), 2000, "every seeded reply is in one queue");

    // The hot article reads as a thread: every page by its token, a parent
    // before its replies, as many as it counts.
    let mut comments = h.comments(&site.site_key).await;
    let mut listed = Vec::new();
    let mut page_token = String::new();
    let total = loop {
        let page = comments
            .list_comments(ListCommentsRequest {
                article: HOT.to_owned(),
                page_size: 30,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list the hot article")
            .into_inner();
        listed.extend(page.comments);
        if page.next_page_token.is_empty() {
            break page.total_count;
        }
        page_token = page.next_page_token;
    };
    assert!(total > 30, "the hot article spans pages: {total}");
    assert_eq!(listed.len() as u64, total);
    let mut before = HashSet::new();
    for comment in &listed {
        assert_eq!(comment.status(), CommentStatus::Approved);
        if !comment.parent_id.is_empty() {
            assert!(
                before.contains(&comment.parent_id),
                "{} comes after its parent",
                comment.id
            );
        }
        before.insert(comment.id.clone());
    }
    assert!(
        listed.iter().any(|c| !c.parent_id.is_empty()),
        "some replies answer others"
    );
    let counted = comments
        .count_comments(CountCommentsRequest {
            articles: vec![HOT.to_owned()],
        })
        .await
        .expect("count")
        .into_inner();
    assert_eq!(counted.counts.get(HOT), Some(&total));

    // A seeded reply's history says where it came from.
    let history = moderation
        .get_comment(GetCommentRequest {
            id: listed[0].id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .history;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].action, "submit");
    assert_eq!(history[0].note, "seeded");
}

async fn seeded_emails_are_sealed_with_the_sites_key_and_never_stored_in_clear(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    succeeded(&seed(&h, SITE, 300));

    let text = match backend {
        Backend::Sqlite => {
            let mut bytes = Vec::new();
            for suffix in ["", "-wal"] {
                let path = format!("{}{suffix}", h.db_path().display());
                if let Ok(content) = std::fs::read(&path) {
                    bytes.extend(content);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Backend::Postgres => h.db.postgres_dump().await,
    };
    // Every generated address is at an example domain.
    assert!(text.contains("seed/hot"), "the database was read");
    assert!(!text.contains("@example."), "an email is stored in clear");
    assert!(
        !text.contains("@mail.example"),
        "an email is stored in clear"
    );
    assert!(
        !text.contains("@post.example"),
        "an email is stored in clear"
    );

    // ...and the server's key opens what was sealed.
    let mut moderation = h.moderation(&site.mod_token).await;
    let item = common::whole_queue(&mut moderation, CommentStatus::Approved, 97).await[0].clone();
    let id: CommentId = item.comment.expect("comment").id.parse().expect("id");
    let stored = h.store.comment(id).await.expect("read").expect("stored");
    let email = Vault::new(&h.key)
        .decrypt_email(site.id, &stored.email_sealed)
        .expect("sealed with the server's key");
    assert!(email.ends_with(item.masked_email.split('@').nth(1).unwrap_or("-")));
}

async fn seeding_a_site_that_does_not_exist_fails_and_adds_nothing(backend: Backend) {
    let h = Harness::new(backend).await;
    h.site(SITE).await;
    let before = h.db.rows().await;
    let out = seed(&h, "nowhere.example.com", 10);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no site \"nowhere.example.com\""),
        "{stderr}"
    );
    h.db.assert_unchanged(&before).await;
    // Not made on the way: a site by that name can still be added.
    h.site("nowhere.example.com").await;
}

/// Seeding with another key than the server's would seal emails the server cannot open: it is
/// refused, and adds nothing.
async fn seeding_with_another_key_is_refused_and_adds_nothing(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    let before = h.db.rows().await;
    let another = SecretKey::generate().to_base64();
    let out = seed_command(&h, SITE, 10)
        .env("REPLYGUARD_SECRET_KEY", another)
        .output()
        .expect("replyguard runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the secret key is not the one"), "{stderr}");
    h.db.assert_unchanged(&before).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    for status in [
        CommentStatus::Pending,
        CommentStatus::Approved,
        CommentStatus::Spam,
        CommentStatus::Rejected,
    ] {
        assert!(
            common::whole_queue(&mut moderation, status, 97)
                .await
                .is_empty(),
            "nothing {status:?}"
        );
    }
}

/// Without a key given, seeding a SQLite database that has no key file beside it would make
/// one: the database was written under a key, so it is refused as the server is, and leaves no
/// key file behind.
#[tokio::test(flavor = "multi_thread")]
async fn seeding_a_sqlite_database_whose_key_file_is_lost_makes_no_new_one() {
    let h = Harness::new(Backend::Sqlite).await;
    h.site(SITE).await;
    let key_file = h.db_path().with_extension("key");
    assert!(
        !key_file.exists(),
        "the harness gives its key in the settings"
    );
    let before = h.db.rows().await;
    let out = seed_command(&h, SITE, 10)
        .output()
        .expect("replyguard runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("restore the key file"), "{stderr}");
    assert!(!key_file.exists(), "a new key file is left behind");
    h.db.assert_unchanged(&before).await;
}

async fn the_load_generator_pages_a_seeded_queue_and_thread_by_token(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site(SITE).await;
    succeeded(&seed(&h, SITE, 1500));
    let runs = [
        ("queue", site.mod_token.as_str(), vec!["--status", "spam"]),
        (
            "queue-deep",
            site.mod_token.as_str(),
            vec!["--status", "approved"],
        ),
        ("list", site.site_key.as_str(), vec!["--article", HOT]),
        ("list-deep", site.site_key.as_str(), vec!["--article", HOT]),
    ];
    let endpoint = h.endpoint();
    for (workload, token, extra) in runs {
        let mut args = vec![
            "bench",
            "--endpoint",
            &endpoint,
            "--token",
            token,
            "--workload",
            workload,
            "--concurrency",
            "3",
            "--duration",
            "30",
            "--requests",
            "30",
            "--page-size",
            "20",
            "--output",
            "json",
        ];
        args.extend(extra);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"))
            .args(&args)
            .output()
            .expect("replyguard runs");
        let report: Value = serde_json::from_str(&succeeded(&output)).expect("JSON");
        assert_eq!(report["workload"], workload, "{report}");
        assert_eq!(report["requests"], 30, "{workload}: {report}");
        assert_eq!(report["errors"], 0, "{workload}: {report}");
    }
}

async fn hot_total(comments: &mut common::Comments) -> u64 {
    comments
        .list_comments(ListCommentsRequest {
            article: HOT.to_owned(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .total_count
}

/// On PostgreSQL a running server hears of the seeding, so it no longer serves
/// what it cached of the site's articles before (SQLite's server does not hear
/// other processes: README.md).
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn a_running_postgres_server_drops_what_it_cached_of_a_seeded_site() {
    let h = Harness::new(Backend::Postgres).await;
    let site = h.site(SITE).await;
    let mut comments = h.comments(&site.site_key).await;
    assert_eq!(
        hot_total(&mut comments).await,
        0,
        "the empty thread is read, and cached"
    );

    succeeded(&seed(&h, SITE, 300));

    // The notification reaches the server's listener on its own time.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while hot_total(&mut comments).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still lists the thread it cached before the seeding"
        );
        common::poll_pause().await;
    }
}

backend_tests!(
    flavor = "multi_thread";
    seeded_replies_are_queued_listed_and_counted_through_the_api,
    seeded_emails_are_sealed_with_the_sites_key_and_never_stored_in_clear,
    seeding_a_site_that_does_not_exist_fails_and_adds_nothing,
    seeding_with_another_key_is_refused_and_adds_nothing,
    the_load_generator_pages_a_seeded_queue_and_thread_by_token,
);
