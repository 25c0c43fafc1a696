//! The binaries as people run them: `replyguard` for the operator and
//! `replyctl` for moderators and host scripts, against a real server.

mod common;

use std::process::{Command, Output};

use common::{Backend, Harness, TestDatabase, backend_tests};
use serde_json::Value;

fn replyguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .env_remove("REPLYGUARD_DATABASE_URL")
        .args(args)
        .output()
        .expect("replyguard runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).expect("JSON output")
}

/// `replyguard site add --output env`: the site key and moderator token.
fn site_add(h: &Harness, name: &str) -> (String, String) {
    let out = stdout(&replyguard(&[
        "site",
        "add",
        name,
        "--database",
        &h.settings.database.url,
        "--output",
        "env",
    ]));
    let value = |var: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(&format!("{var}=")))
            .unwrap_or_else(|| panic!("{var} in {out}"))
            .to_owned()
    };
    (value("REPLYGUARD_SITE_KEY"), value("REPLYGUARD_MOD_TOKEN"))
}

async fn the_quickstart_works_from_the_command_line(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = site_add(&h, "news.example.com");
    assert!(site_key.starts_with("rg_site_"));
    assert!(mod_token.starts_with("rg_mod_"));

    let submitted = json(&h.replyctl(
        &site_key,
        &[
            "--output",
            "json",
            "submit",
            "--article",
            "2026/11/budget",
            "--name",
            "Jane Reader",
            "--email",
            "jane@example.com",
            "Two links hold a reply: https://a.example and https://b.example",
        ],
    ));
    assert_eq!(submitted["status"], "pending");
    let id = submitted["comment"]["id"].as_str().expect("id").to_owned();

    let queue = json(&h.replyctl(&mod_token, &["--output", "json", "queue"]));
    let items = queue["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["comment"]["id"], id.as_str());
    assert_eq!(items[0]["masked_email"], "j•••@example.com");
    assert_eq!(items[0]["assessment"]["reasons"][0]["rule"], "links");

    let decided = json(&h.replyctl(
        &mod_token,
        &["--output", "json", "approve", &id, "--note", "fine"],
    ));
    assert_eq!(decided["results"][0]["ok"], true);

    let listed = json(&h.replyctl(
        &site_key,
        &["--output", "json", "comments", "2026/11/budget"],
    ));
    assert_eq!(listed["comments"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains("jane@example.com"));

    let shown = json(&h.replyctl(&mod_token, &["--output", "json", "show", &id]));
    let actions: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(actions, ["submit", "approve"]);
}

async fn tables_are_printed_for_people(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = site_add(&h, "news.example.com");
    stdout(&h.replyctl(
        &site_key,
        &[
            "--output",
            "table",
            "submit",
            "--article",
            "story",
            "--name",
            "Jane",
            "--email",
            "jane@example.com",
            "See https://a.example and https://b.example",
        ],
    ));
    let table = stdout(&h.replyctl(&mod_token, &["--output", "table", "queue"]));
    assert!(table.contains("j•••@example.com"), "{table}");
    assert!(table.contains("story"), "{table}");
}

async fn errors_exit_non_zero_with_one_clear_line(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, _) = site_add(&h, "news.example.com");

    let output = h.replyctl("rg_mod_wrong", &["queue"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("Unauthenticated") || stderr.contains("UNAUTHENTICATED"),
        "{stderr}"
    );

    let output = h.replyctl(
        &site_key,
        &[
            "submit",
            "--article",
            "a",
            "--name",
            "",
            "--email",
            "not-an-email",
            "text",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("author.name"), "{stderr}");
    assert!(stderr.contains("author.email"), "{stderr}");
}

async fn operators_issue_and_revoke_tokens(backend: Backend) {
    let h = Harness::new(backend).await;
    let (_, _) = site_add(&h, "news.example.com");
    let db = h.settings.database.url.clone();

    let token = stdout(&replyguard(&[
        "token",
        "add",
        "--site",
        "news.example.com",
        "--role",
        "moderator",
        "--database",
        &db,
    ]));
    let token = token.trim().to_owned();
    assert!(token.starts_with("rg_mod_"));
    stdout(&h.replyctl(&token, &["--output", "json", "queue"]));

    let prefix: String = token.chars().take(15).collect();
    stdout(&replyguard(&[
        "token",
        "revoke",
        &prefix,
        "--database",
        &db,
    ]));
    assert!(!h.replyctl(&token, &["queue"]).status.success());

    let again = replyguard(&["site", "add", "news.example.com", "--database", &db]);
    assert!(!again.status.success(), "a site name is taken once");
    let unknown = replyguard(&[
        "token",
        "add",
        "--site",
        "nowhere",
        "--role",
        "host",
        "--database",
        &db,
    ]);
    assert!(!unknown.status.success());
}

#[test]
fn the_token_is_stored_only_as_a_digest() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("ops.db").display());
    let out = stdout(&replyguard(&[
        "site",
        "add",
        "blog.example.org",
        "--database",
        &db,
        "--output",
        "env",
    ]));
    let bytes = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|entry| std::fs::read(entry.expect("entry").path()).ok())
        .flatten()
        .collect::<Vec<u8>>();
    let haystack = String::from_utf8_lossy(&bytes);
    for line in out.lines() {
        let (_, token) = line.split_once('=').expect("VAR=token");
        let secret_part = &token[token.len() - 20..];
        assert!(
            !haystack.contains(secret_part),
            "a token is stored in plain text"
        );
    }
}

backend_tests!(
    flavor = "multi_thread";
    the_quickstart_works_from_the_command_line,
    tables_are_printed_for_people,
    errors_exit_non_zero_with_one_clear_line,
    operators_issue_and_revoke_tokens,
);

/// The PostgreSQL counterpart of the file check above.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_stored_only_as_a_digest_in_postgres() {
    if !common::postgres_available("cli::the_token_is_stored_only_as_a_digest_in_postgres").await {
        return;
    }
    let db = TestDatabase::new(Backend::Postgres).await;
    let out = stdout(&replyguard(&[
        "site",
        "add",
        "blog.example.org",
        "--database",
        &db.url,
        "--output",
        "env",
    ]));
    let haystack = db.postgres_dump().await;
    assert!(haystack.contains("blog.example.org"), "the sites were read");
    for line in out.lines() {
        let (_, token) = line.split_once('=').expect("VAR=token");
        let secret_part = &token[token.len() - 20..];
        assert!(
            !haystack.contains(secret_part),
            "a token is stored in plain text"
        );
    }
}
