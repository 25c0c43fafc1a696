//! README.md's commands for moderators as a newcomer uses them: every `sh` block from the
//! quickstart to the end of the moderators' part, pasted in order into one fresh shell, against
//! a real server. Each command must succeed, so a placeholder, a missing token or a scope the
//! shell lacks fails the test.

mod common;

use std::{path::Path, process::Command};

use common::{Backend, Harness, backend_tests};

/// Where the pasted part of the README begins and where it ends.
const FIRST_SECTION: &str = "## Quickstart";
const NEXT_SECTION: &str = "## Shell completions and manual pages";

/// The README's `sh` blocks from [`FIRST_SECTION`] up to [`NEXT_SECTION`], in order, as one
/// script, less what the test does for itself or cannot paste:
/// - `cargo …` and `export PATH=…`: the test runs the binaries it built, on its own server;
/// - a block with `replyctl watch`: the commands that stay open until stopped, each in a
///   terminal of its own (tests/cli.rs runs them).
fn pasted_script(readme: &str) -> String {
    let start = readme.find(FIRST_SECTION).expect("the quickstart section");
    let end = start
        + readme[start..]
            .find(NEXT_SECTION)
            .expect("the next section");
    let mut script = String::new();
    let mut block: Option<String> = None;
    for line in readme[start..end].lines() {
        match (&mut block, line.trim_end()) {
            (None, "```sh") => block = Some(String::new()),
            (Some(text), "```") => {
                if !text.contains("replyctl watch") {
                    script.push_str(text);
                    script.push('\n');
                }
                block = None;
            }
            (Some(text), line) => {
                if !line.starts_with("cargo ") && !line.starts_with("export PATH=") {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            (None, _) => {}
        }
    }
    assert!(block.is_none(), "a block that never ends");
    script
}

async fn the_moderators_part_of_the_readme_works_when_pasted_into_a_fresh_shell(backend: Backend) {
    let h = Harness::new(backend).await;
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let script = pasted_script(&readme);
    assert!(script.contains("replyctl approve"), "{script}");

    let home = tempfile::tempdir().expect("a home");
    let binaries = Path::new(env!("CARGO_BIN_EXE_replyctl"))
        .parent()
        .expect("the binaries' directory");
    // A fresh shell: nothing set but where the binaries are, where the server listens and
    // where its database is (the quickstart's first terminal runs the server beside them).
    let output = Command::new("bash")
        .args([
            "--noprofile",
            "--norc",
            "-e",
            "-o",
            "pipefail",
            "-c",
            &script,
        ])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", binaries.display()))
        .env("HOME", home.path())
        .env("REPLYGUARD_ENDPOINT", h.endpoint())
        .env("REPLYGUARD_DATABASE_URL", &h.settings.database.url)
        .current_dir(home.path())
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "the pasted README failed ({}):\n{}\n--- the script ---\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
    );

    // What the commands did is there to see: the data access request's file, and an audit
    // log with every kind of step the README took, in order.
    let export = std::fs::read_to_string(home.path().join("jane.json")).expect("jane.json");
    assert!(export.contains("jane@example.com"), "{export}");
    let site = h
        .store
        .site_by_name("news.example.com")
        .await
        .expect("sites")
        .expect("the quickstart's site");
    let actions: Vec<String> = h
        .store
        .audit_page(site.id, None, None, None, 100)
        .await
        .expect("the audit log")
        .into_iter()
        .rev()
        .map(|entry| entry.action)
        .collect();
    let expected = [
        "token_issue",
        "token_issue",
        "submit",
        "approve",
        "reject",
        "block",
        "block",
        "block",
        "block",
        "unblock",
        "unblock",
        "unblock",
        "close_article",
        "reopen_article",
        "close_article",
        "policy",
        "token_issue",
        "reveal_email",
        "export_author",
        "erase_author",
    ];
    assert_eq!(actions, expected);
}

backend_tests!(flavor = "multi_thread"; the_moderators_part_of_the_readme_works_when_pasted_into_a_fresh_shell);
