//! The binaries as people run them: `replyguard` for the operator and
//! `replyctl` for moderators and host scripts, against a real server.

mod common;

use std::{
    process::{Command, Output},
    time::Duration,
};

use common::{Backend, Harness, TestDatabase, backend_tests, process, watcher::Watcher};
use replyguard::{privacy::token_digest, spam::Policy};
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

/// A refusal: the exit status `code` (1 when the work failed, 2 for a usage error) and
/// `first_line` as the first line on stderr, so that no other failure (a connection refused,
/// another error) passes for it.
fn refused(output: &Output, code: i32, first_line: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().next(), Some(first_line), "{stderr}");
}

/// A `replyctl` call the server refused: exit status 1 and one line naming what was being
/// done, the gRPC code and the server's message.
fn refused_by_server(output: &Output, doing: &str, code: &str, message: &str) {
    refused(output, 1, &format!("replyctl: {doing}: {code}: {message}"));
}

/// The `PERMISSION_DENIED` line of a token of news.example.com without `scope`: it gives the
/// operator's command for a token with `scopes` (the token's and `scope`), and that command
/// works.
fn lacks_scope(h: &Harness, output: &Output, doing: &str, scope: &str, scopes: &str) {
    let command =
        format!("replyguard token add --site news.example.com --role moderator --scopes {scopes}");
    refused_by_server(
        output,
        doing,
        "PERMISSION_DENIED",
        &format!(
            "this token lacks the `{scope}` scope; the operator can issue one with `{command}`"
        ),
    );
    let mut args: Vec<&str> = command.split(' ').skip(1).collect();
    args.extend(["--database", &h.settings.database.url]);
    assert!(stdout(&replyguard(&args)).starts_with("rg_mod_"));
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).expect("JSON output")
}

/// `replyguard site add --output env`: the site key and moderator token.
fn site_add(h: &Harness, name: &str) -> (String, String) {
    process::add_site(&h.settings.database.url, name)
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

    // A token of several sites: which flag names one, and which sites there are.
    site_add(&h, "blog.example.org");
    let both = stdout(&replyguard(&[
        "token",
        "add",
        "--site",
        "news.example.com",
        "--site",
        "blog.example.org",
        "--role",
        "moderator",
        "--database",
        &h.settings.database.url,
    ]));
    let output = h.replyctl(both.trim(), &["queue"]);
    refused_by_server(
        &output,
        "listing the queue",
        "INVALID_ARGUMENT",
        "--site is required: this token covers several sites (blog.example.org, \
         news.example.com)",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let output = h.replyctl("rg_mod_wrong", &["queue"]);
    refused_by_server(
        &output,
        "listing the queue",
        "UNAUTHENTICATED",
        "malformed credential: a replyguard token is `rg_site_` or `rg_mod_` and 43 characters",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // No token at all: said before any call, with where a token comes from.
    let output = Command::new(env!("CARGO_BIN_EXE_replyctl"))
        .env("REPLYGUARD_ENDPOINT", h.endpoint())
        .env_remove("REPLYGUARD_TOKEN")
        .arg("queue")
        .output()
        .expect("replyctl runs");
    refused(
        &output,
        2,
        "error: no token: set REPLYGUARD_TOKEN or pass --token (a moderator token, or for \
         `submit` and `comments` a site key; `replyguard site add` and `replyguard token add` \
         issue them)",
    );
    // Nothing listening: says what to check.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let nowhere = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let output = Command::new(env!("CARGO_BIN_EXE_replyctl"))
        .env("REPLYGUARD_ENDPOINT", &nowhere)
        .env("REPLYGUARD_TOKEN", &site_key)
        .arg("queue")
        .output()
        .expect("replyctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("replyctl: cannot connect to {nowhere}: "))
            && stderr.trim_end().ends_with(
                "is `replyguard serve` running there? (--endpoint or REPLYGUARD_ENDPOINT names \
                 another)"
            ),
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
    refused_by_server(
        &output,
        "submitting the comment",
        "INVALID_ARGUMENT",
        "the reply has invalid fields",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let fields: Vec<&str> = stderr.lines().skip(1).collect();
    assert_eq!(
        fields,
        [
            "  author.name: is required",
            "  author.email: must be an email address such as jane@example.com",
        ]
    );
}

/// Submits a reply by `who` (an author of their own, so no flood check holds it back) as
/// `site_key`, and returns its whole id.
fn submitted_id(h: &Harness, site_key: &str, who: &str, text: &str) -> String {
    let email = format!("{who}@example.com");
    let submitted = json(&h.replyctl(
        site_key,
        &[
            "--output",
            "json",
            "submit",
            "--article",
            "story",
            "--name",
            who,
            "--email",
            &email,
            text,
        ],
    ));
    submitted["comment"]["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

/// The characters two ids share at their start.
fn common_start(a: &str, b: &str) -> String {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

async fn ids_are_shown_short_and_every_command_takes_a_unique_start(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = site_add(&h, "news.example.com");
    let (other_key, _) = site_add(&h, "blog.example.org");
    let mut ids: Vec<String> = ["ann", "bob", "cat"]
        .iter()
        .map(|who| {
            submitted_id(
                &h,
                &site_key,
                who,
                &format!("{who} says: https://a.example https://b.example"),
            )
        })
        .collect();
    ids.sort();

    // The table shows each id by a start no other shown id shares.
    let table = stdout(&h.replyctl(&mod_token, &["--output", "table", "queue"]));
    let shown: Vec<&str> = table
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(shown.len(), 3, "{table}");
    for (short, id) in shown.iter().zip(&ids) {
        assert!(short.len() < id.len() && id.starts_with(short), "{table}");
        assert_eq!(
            ids.iter().filter(|id| id.starts_with(short)).count(),
            1,
            "{table}"
        );
    }

    // A start names its comment in `show`, `audit --comment` and a decision.
    let shown_json = json(&h.replyctl(&mod_token, &["--output", "json", "show", shown[0]]));
    assert_eq!(shown_json["comment"]["comment"]["id"], ids[0].as_str());
    let audit = json(&h.replyctl(
        &mod_token,
        &["--output", "json", "audit", "--comment", shown[1]],
    ));
    assert_eq!(audit["entries"][0]["comment_id"], ids[1].as_str());
    let decided = json(&h.replyctl(&mod_token, &["--output", "json", "approve", shown[2]]));
    assert_eq!(decided["results"][0]["id"], ids[2].as_str());
    assert_eq!(decided["results"][0]["status"], "approved");

    // A start two ids share is refused with both, and decides nothing. Two of three ids made
    // a moment apart share at least four characters.
    let shared = ids
        .windows(2)
        .map(|pair| common_start(&pair[0], &pair[1]))
        .max_by_key(String::len)
        .expect("a pair");
    assert!(shared.len() >= 4, "{ids:?}");
    let candidates: Vec<&String> = ids.iter().filter(|id| id.starts_with(&shared)).collect();
    let output = h.replyctl(&mod_token, &["show", &shared]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for candidate in &candidates {
        assert!(stderr.contains(candidate.as_str()), "{stderr}");
    }
    assert!(stderr.contains("type more of it"), "{stderr}");
    let output = h.replyctl(&mod_token, &["--output", "json", "reject", &shared]);
    assert_eq!(output.status.code(), Some(1));
    let results: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(results["results"][0]["code"], "INVALID_ARGUMENT");
    let queue = json(&h.replyctl(&mod_token, &["--output", "json", "queue"]));
    assert_eq!(
        queue["items"].as_array().map(Vec::len),
        Some(2),
        "nothing was rejected"
    );

    // Another site's comment is not found by its start, nor by its whole id.
    let theirs = submitted_id(&h, &other_key, "dan", "https://a.example https://b.example");
    for typed in [&theirs[..18], theirs.as_str()] {
        let output = h.replyctl(&mod_token, &["show", typed]);
        refused_by_server(
            &output,
            &format!("fetching comment {typed}"),
            "NOT_FOUND",
            &format!("no comment {typed}"),
        );
    }

    // Neither an id nor a start: said once.
    let output = h.replyctl(&mod_token, &["show", "xyz"]);
    refused_by_server(
        &output,
        "fetching comment xyz",
        "INVALID_ARGUMENT",
        "ID must be a comment id or at least its first 4 characters",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

async fn tables_fit_the_terminal_and_show_local_times_with_their_zone(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = site_add(&h, "news.example.com");
    let text = "A considered reply about the council's budget, with its sources at \
                https://a.example/report and https://b.example/minutes, and a closing \
                thought that runs well past the width of any narrow terminal window";
    submitted_id(&h, &site_key, "jane", text);
    stdout(&h.replyctl(
        &mod_token,
        &[
            "approve",
            "--status",
            "pending",
            "--note",
            "a note long enough to wrap in a narrow audit table",
        ],
    ));
    submitted_id(&h, &site_key, "jim", text);

    let narrow = [("COLUMNS", "80"), ("TZ", "Asia/Tokyo")];
    let queue = stdout(&h.replyctl_with(&mod_token, &narrow, &["--output", "table", "queue"]));
    for line in queue.lines() {
        assert!(
            line.chars().count() <= 80,
            "{line:?} is wider than 80:\n{queue}"
        );
    }
    // Wrapped at words: no word of the text is cut.
    let words: Vec<&str> = queue.split_whitespace().collect();
    for word in [
        "considered",
        "council's",
        "<j•••@example.com>",
        "campaign",
        "links",
    ] {
        assert!(words.contains(&word), "{word} is cut:\n{queue}");
    }
    assert!(queue.contains("+09:00"), "{queue}");
    assert!(queue.contains("hold"), "{queue}");

    let json = json(&h.replyctl_with(&mod_token, &narrow, &["--output", "json", "queue"]));
    let created = json["items"][0]["comment"]["created_at"]
        .as_str()
        .expect("a time");
    assert!(created.ends_with('Z'), "{created}");

    let shown = stdout(&h.replyctl_with(
        &mod_token,
        &[("COLUMNS", "40"), ("TZ", "UTC")],
        &[
            "--output",
            "table",
            "show",
            &json["items"][0]["comment"]["id"].as_str().expect("id")[..13],
        ],
    ));
    let text_lines: Vec<&str> = shown
        .split("Text:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("the text")
        .lines()
        .collect();
    assert!(text_lines.len() > 3, "{shown}");
    for line in &text_lines {
        assert!(line.chars().count() <= 40, "{line:?}:\n{shown}");
    }
    assert!(shown.contains(" UTC"), "{shown}");

    let audit = stdout(&h.replyctl_with(
        &mod_token,
        &[("COLUMNS", "80"), ("TZ", "UTC")],
        &["--output", "table", "audit"],
    ));
    for line in audit.lines() {
        assert!(line.chars().count() <= 80, "{line:?}:\n{audit}");
    }
    let audit = stdout(&h.replyctl_with(
        &mod_token,
        &[("TZ", "UTC")],
        &["--output", "table", "audit"],
    ));
    let seconds = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC").expect("regex");
    assert!(seconds.is_match(&audit), "{audit}");
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
    refused_by_server(
        &h.replyctl(&token, &["queue"]),
        "listing the queue",
        "UNAUTHENTICATED",
        "unknown or revoked credential",
    );

    let again = replyguard(&["site", "add", "news.example.com", "--database", &db]);
    refused(
        &again,
        1,
        "replyguard: site \"news.example.com\" exists already; issue it new credentials with \
         `replyguard token add --site news.example.com --role host --output env` (and \
         `--role moderator`)",
    );
    // What that hint says works, for `eval` in a shell.
    let env = stdout(&replyguard(&[
        "token",
        "add",
        "--site",
        "news.example.com",
        "--role",
        "moderator",
        "--scopes",
        "moderate,integrations",
        "--output",
        "env",
        "--database",
        &db,
    ]));
    let moderator = env
        .trim()
        .strip_prefix("REPLYGUARD_TOKEN=")
        .unwrap_or_else(|| panic!("{env}"))
        .to_owned();
    stdout(&h.replyctl(&moderator, &["--output", "json", "queue"]));
    let env = stdout(&replyguard(&[
        "token",
        "add",
        "--site",
        "news.example.com",
        "--role",
        "host",
        "--output",
        "env",
        "--database",
        &db,
    ]));
    assert!(
        env.trim().starts_with("REPLYGUARD_SITE_KEY=rg_site_"),
        "{env}"
    );

    // The operator's listings: sites, and live tokens by prefix (never the tokens).
    let (_, _) = site_add(&h, "blog.example.com");
    let sites = json(&replyguard(&[
        "site",
        "list",
        "--output",
        "json",
        "--database",
        &db,
    ]));
    let names: Vec<&str> = sites["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|site| site["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["blog.example.com", "news.example.com"]);
    let listed = replyguard(&["token", "list", "--output", "json", "--database", &db]);
    let text = stdout(&listed);
    assert!(!text.contains(&moderator), "no token is printed");
    let tokens = json(&listed);
    let tokens = tokens["tokens"].as_array().expect("tokens");
    let prefix_of = |token: &str| token.chars().take(15).collect::<String>();
    let issued = tokens
        .iter()
        .find(|t| t["prefix"] == prefix_of(&moderator))
        .expect("the token issued above is listed");
    assert_eq!(issued["role"], "moderator");
    assert_eq!(
        issued["scopes"],
        serde_json::json!(["moderate", "integrations"])
    );
    assert_eq!(issued["sites"], serde_json::json!(["news.example.com"]));
    assert!(
        tokens.iter().all(|t| t["prefix"] != prefix_of(&token)),
        "a revoked token is not listed"
    );
    let table = stdout(&replyguard(&["token", "list", "--database", &db]));
    assert!(
        table.contains("PREFIX") && table.contains(&prefix_of(&moderator)),
        "{table}"
    );

    // A token's last use: never, until a call is made with it.
    let fresh = moderator_token(&h, "news.example.com", None);
    let last_use = || {
        let tokens = json(&replyguard(&[
            "token",
            "list",
            "--output",
            "json",
            "--database",
            &db,
        ]));
        tokens["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .find(|t| t["prefix"] == prefix_of(&fresh))
            .expect("listed")
            .clone()
    };
    assert_eq!(last_use()["last_used_at"], Value::Null, "not used yet");
    let table = stdout(&replyguard(&["token", "list", "--database", &db]));
    assert!(
        table.contains("LAST USED (UTC)") && table.contains("never"),
        "{table}"
    );
    stdout(&h.replyctl(&fresh, &["--output", "json", "queue"]));
    let used = last_use();
    let at = used["last_used_at"].as_str().expect("a time");
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok()
            && at >= used["issued_at"].as_str().expect("issued"),
        "{used}"
    );
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
    refused(&unknown, 1, "replyguard: no site \"nowhere\"");
}

/// The tokens `replyguard site add --output env` printed.
fn printed_tokens(out: &str) -> Vec<String> {
    let tokens: Vec<String> = out
        .lines()
        .map(|line| {
            let (_, token) = line.split_once('=').expect("VAR=token");
            token.trim_matches(['\'', '"']).to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 2, "a site key and a moderator token: {out}");
    tokens
}

#[test]
fn the_token_is_stored_only_as_a_digest() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ops.db");
    let db = format!("sqlite://{}", path.display());
    let out = stdout(&replyguard(&[
        "site",
        "add",
        "blog.example.org",
        "--database",
        &db,
        "--output",
        "env",
    ]));
    // The database file and its write-ahead log, whichever holds the rows now.
    let mut bytes = std::fs::read(&path).expect("the database file");
    if let Ok(wal) = std::fs::read(format!("{}-wal", path.display())) {
        bytes.extend(wal);
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"blog.example.org"), "the site's row was read");
    for token in printed_tokens(&out) {
        // What is stored, the digest, is there; the token itself is not.
        assert!(
            contains(&token_digest(&token)),
            "the digest of {token} is stored"
        );
        let secret_part = &token[token.len() - 20..];
        assert!(
            !contains(secret_part.as_bytes()),
            "a token is stored in plain text"
        );
    }
}

async fn replyctl_watch_prints_a_reply_submitted_after_it_started(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = site_add(&h, "news.example.com");
    let mut watcher = Watcher::start(&h.endpoint(), &mod_token);

    let submitted = json(&h.replyctl(
        &site_key,
        &[
            "--output",
            "json",
            "submit",
            "--article",
            "story",
            "--name",
            "Jane",
            "--email",
            "jane@example.com",
            "Links: https://a.example https://b.example",
        ],
    ));
    let item = watcher.next_item(std::time::Duration::from_secs(10), "reply");
    watcher.stop();
    assert_eq!(item["comment"]["id"], submitted["comment"]["id"]);
    assert_eq!(item["assessment"]["reasons"][0]["rule"], "links");
}

async fn replyctl_review_decides_one_reply_per_line_of_input(backend: Backend) {
    use std::io::Write;
    use std::process::Stdio;

    let h = Harness::new(backend).await;
    let (site_key, mod_token) = queue_site(&h).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let out = json(&h.replyctl(
            &site_key,
            &[
                "--output",
                "json",
                "submit",
                "--article",
                "story",
                "--name",
                "Jane",
                "--email",
                &format!("jane{i}@example.com"),
                &format!("Reply {i}: https://a.example https://b.example"),
            ],
        ));
        ids.push(out["comment"]["id"].as_str().expect("id").to_owned());
    }

    let mut review = Command::new(env!("CARGO_BIN_EXE_replyctl"))
        .env("REPLYGUARD_ENDPOINT", h.endpoint())
        .env("REPLYGUARD_TOKEN", &mod_token)
        .args(["--output", "json", "review"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("replyctl review starts");
    // Approve, a note then reject, skip, an unknown key then spam, and quit before the fifth.
    review
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a\nn\nsays nothing\nr\nk\nx\ns\nq\n")
        .expect("write keys");
    let output = review.wait_with_output().expect("review ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("unknown key"), "{stderr}");
    assert!(
        stderr.contains("approve 1, reject 1, spam 1, skipped 1"),
        "{stderr}"
    );
    // A count over each reply, and each reply as `show` has it, its history included.
    for count in ["1 of 5", "2 of 5", "4 of 5", "5 of 5"] {
        assert!(stderr.contains(count), "{count}: {stderr}");
    }
    let shown: Vec<Value> = serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("JSON documents");
    assert_eq!(shown.len(), 5);
    assert_eq!(shown[0]["history"][0]["action"], "submit");
    let rejected = json(&h.replyctl(&mod_token, &["--output", "json", "show", &ids[1]]));
    assert_eq!(rejected["history"][1]["note"], "says nothing");

    let status = |id: &str| {
        json(&h.replyctl(&mod_token, &["--output", "json", "show", id]))["comment"]["comment"]
            ["status"]
            .as_str()
            .expect("status")
            .to_owned()
    };
    let statuses: Vec<String> = ids.iter().map(|id| status(id)).collect();
    assert_eq!(
        statuses,
        ["approved", "rejected", "pending", "spam", "pending"]
    );

    // Nothing pending: said plainly.
    stdout(&h.replyctl(&mod_token, &["approve", &ids[2], &ids[4]]));
    let output = h.replyctl(&mod_token, &["review"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "The pending queue is empty; nothing to review.\n"
    );
    assert!(output.status.success());
}

/// `tmux` at `socket`, failing the test with what it said if it fails.
fn tmux(socket: &std::path::Path, args: &[&str]) {
    let output = Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux runs (CI installs it)");
    assert!(
        output.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// At a terminal, `review` takes each decision at one keypress, without Enter: the keys go to a
/// real terminal (tmux), and the replies end as they were decided.
async fn replyctl_review_at_a_terminal_decides_at_one_key(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = queue_site(&h).await;
    let ids: Vec<String> = ["ann", "bob", "cat"]
        .iter()
        .map(|who| submitted_id(&h, &site_key, who, "https://a.example https://b.example"))
        .collect();

    let dir = tempfile::tempdir().expect("a directory");
    let socket = dir.path().join("tmux.sock");
    let review = format!(
        "env REPLYGUARD_ENDPOINT={} REPLYGUARD_TOKEN={mod_token} {} review; tmux -S {} wait-for \
         -S reviewed",
        h.endpoint(),
        env!("CARGO_BIN_EXE_replyctl"),
        socket.display()
    );
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "review",
            "-x",
            "100",
            "-y",
            "40",
            &review,
        ],
    );
    // The server outlives `review`, so that `wait-for` below finds it whenever `review` ends.
    tmux(
        &socket,
        &["set-option", "-t", "review", "remain-on-exit", "on"],
    );
    // Approve, spam, then a note typed as a line and reject: keys without Enter. The terminal
    // keeps what is typed until `review` reads it.
    tmux(&socket, &["send-keys", "-t", "review", "-l", "as"]);
    tmux(&socket, &["send-keys", "-t", "review", "-l", "n"]);
    tmux(
        &socket,
        &["send-keys", "-t", "review", "-l", "at a terminal"],
    );
    tmux(&socket, &["send-keys", "-t", "review", "Enter"]);
    tmux(&socket, &["send-keys", "-t", "review", "-l", "r"]);
    tmux(&socket, &["wait-for", "reviewed"]);
    tmux(&socket, &["kill-server"]);

    let status = |id: &str| {
        json(&h.replyctl(&mod_token, &["--output", "json", "show", id]))["comment"]["comment"]
            ["status"]
            .as_str()
            .expect("status")
            .to_owned()
    };
    let statuses: Vec<String> = ids.iter().map(|id| status(id)).collect();
    assert_eq!(statuses, ["approved", "spam", "rejected"]);
    let rejected = json(&h.replyctl(&mod_token, &["--output", "json", "show", &ids[2]]));
    assert_eq!(rejected["history"][1]["note"], "at a terminal");
}

/// At a terminal, `erase` asks first, with the number of replies, and changes nothing unless
/// the answer is yes: the answers go to a real terminal (tmux).
async fn replyctl_erase_at_a_terminal_asks_first(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, _) = site_add(&h, "news.example.com");
    let token = moderator_token(&h, "news.example.com", Some("moderate,erase"));
    // Pat's reply, and Bea's, which no answer about Pat may touch.
    let ids: Vec<String> = [("Pat", "pat@example.net"), ("Bea", "bea@example.net")]
        .iter()
        .map(|(name, email)| {
            submit(
                &h,
                &site_key,
                &[
                    "--article",
                    "story",
                    "--name",
                    name,
                    "--email",
                    email,
                    "A reply.",
                ],
            )
        })
        .collect();
    let names = || -> Vec<String> {
        ids.iter()
            .map(|id| {
                json(&h.replyctl(&token, &["--output", "json", "show", id]))["comment"]["comment"]
                    ["author_name"]
                    .as_str()
                    .expect("a name")
                    .to_owned()
            })
            .collect()
    };

    let dir = tempfile::tempdir().expect("a directory");
    let socket = dir.path().join("tmux.sock");
    // `erase` at a terminal answered `answer`; what the terminal showed.
    let erase_answering = |session: &str, answer: &str| -> String {
        let erase = format!(
            "env REPLYGUARD_ENDPOINT={} REPLYGUARD_TOKEN={token} {} erase --email \
             pat@example.net; tmux -S {} wait-for -S {session}",
            h.endpoint(),
            env!("CARGO_BIN_EXE_replyctl"),
            socket.display()
        );
        tmux(
            &socket,
            &[
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "10",
                &erase,
            ],
        );
        tmux(
            &socket,
            &["set-option", "-t", session, "remain-on-exit", "on"],
        );
        let screen = || {
            let shown = Command::new("tmux")
                .arg("-S")
                .arg(&socket)
                .args(["capture-pane", "-p", "-t", session])
                .output()
                .expect("tmux capture-pane");
            String::from_utf8_lossy(&shown.stdout).into_owned()
        };
        // The answer is typed once the question is on the screen, as a person would.
        let asked = std::time::Instant::now();
        let question = loop {
            let shown = screen();
            if shown.contains("[y/N]") {
                break shown;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(20),
                "no question within 20 s: {shown}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            question.contains("anonymise 1 comment of this author, for good? [y/N]"),
            "{question}"
        );
        tmux(&socket, &["send-keys", "-t", session, "-l", answer]);
        tmux(&socket, &["send-keys", "-t", session, "Enter"]);
        tmux(&socket, &["wait-for", session]);
        screen()
    };

    let declined = erase_answering("declined", "n");
    assert!(declined.contains("nothing erased"), "{declined}");
    assert_eq!(names(), ["Pat", "Bea"]);

    let accepted = erase_answering("accepted", "y");
    assert!(
        accepted.contains("1 comment erased or anonymised."),
        "{accepted}"
    );
    tmux(&socket, &["kill-server"]);
    assert_eq!(names(), ["Anonymous", "Bea"]);
}

async fn the_load_generator_reports_rates_latencies_and_errors(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, _) = site_add(&h, "bench.example.com");
    for workload in ["health", "submit", "list", "count", "mix"] {
        let report = json(&replyguard(&[
            "bench",
            "--endpoint",
            &h.endpoint(),
            "--token",
            &site_key,
            "--workload",
            workload,
            "--concurrency",
            "4",
            "--duration",
            "30",
            "--requests",
            "40",
            "--output",
            "json",
        ]));
        assert_eq!(report["requests"], 40, "{workload}: {report}");
        assert_eq!(report["errors"], 0, "{workload}: {report}");
        for key in ["rps", "p50_ms", "p99_ms"] {
            assert!(
                report[key].as_f64().is_some_and(|v| v > 0.0),
                "{workload} {key}: {report}"
            );
        }
    }
    let listed = h
        .comments(&site_key)
        .await
        .list_comments(replyguard::proto::ListCommentsRequest {
            article: "bench/thread-of-100".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_count, 100, "the list workload's thread");
}

/// A site where every reply waits for a moderator and nothing is scored
/// into the spam queue or refused as a flood: for tests about working a
/// queue, not about the rules that fill it.
async fn queue_site(h: &Harness) -> (String, String) {
    let site = h
        .site_with(
            "news.example.com",
            Policy {
                mode: replyguard::spam::Mode::ModerateAll,
                spam_threshold: 1000.0,
                flood_interval_seconds: 0,
                ..Policy::default()
            },
        )
        .await;
    (site.site_key, site.mod_token)
}

/// Submits `n` pending replies (each with two links, by its own author),
/// `linking` of them to spam.example; returns their ids in order.
async fn pending_replies(h: &Harness, site_key: &str, n: usize, linking: usize) -> Vec<String> {
    use futures_util::{StreamExt, stream};

    let comments = h.comments(site_key).await;
    // As many in flight as a busy site's backend would send, not all at once.
    stream::iter(0..n)
        .map(|i| {
            let mut client = comments.clone();
            let domain = if i < linking {
                "spam.example"
            } else {
                "news.example"
            };
            let body = format!("Reply {i}: https://{domain}/a https://www.{domain}/b");
            async move {
                client
                    .submit_comment(common::reply_by(
                        &format!("story-{}", i % 5),
                        &body,
                        &format!("Reader {i}"),
                        &format!("reader{i}@example.com"),
                    ))
                    .await
                    .expect("submit")
                    .into_inner()
                    .comment
                    .expect("comment")
                    .id
            }
        })
        .buffered(16)
        .collect()
        .await
}

fn queue_len(h: &Harness, token: &str, status: &str) -> usize {
    json(&h.replyctl(
        token,
        &[
            "--output", "json", "queue", "--status", status, "--limit", "100000",
        ],
    ))["items"]
        .as_array()
        .expect("items")
        .len()
}

async fn bulk_decisions_select_by_filter_with_a_dry_run_first(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = queue_site(&h).await;
    pending_replies(&h, &site_key, 2500, 2000).await;

    let dry = h.replyctl(
        &mod_token,
        &[
            "--output",
            "json",
            "spam",
            "--link-domain",
            "spam.example",
            "--dry-run",
        ],
    );
    assert!(String::from_utf8_lossy(&dry.stderr).contains("would spam 2000 comment(s)"));
    assert_eq!(
        queue_len(&h, &mod_token, "spam"),
        0,
        "a dry run changes nothing"
    );

    let done = json(&h.replyctl(
        &mod_token,
        &[
            "--output",
            "json",
            "spam",
            "--link-domain",
            "spam.example",
            "--note",
            "campaign",
        ],
    ));
    let results = done["results"].as_array().expect("results");
    assert_eq!(results.len(), 2000);
    assert!(results.iter().all(|r| r["ok"] == true));
    assert_eq!(queue_len(&h, &mod_token, "spam"), 2000);
    assert_eq!(queue_len(&h, &mod_token, "pending"), 500);
}

async fn all_replies_of_one_author_go_in_one_command_and_ids_come_from_stdin(backend: Backend) {
    use std::io::Write;
    use std::process::Stdio;

    let h = Harness::new(backend).await;
    let (site_key, mod_token) = queue_site(&h).await;
    let others = pending_replies(&h, &site_key, 6, 0).await;
    let mut comments = h.comments(&site_key).await;
    for i in 0..3 {
        comments
            .submit_comment(common::reply_by(
                "story",
                &format!("Again {i}: https://a.example https://b.example"),
                "Persistent",
                "persistent@example.com",
            ))
            .await
            .expect("submit");
    }
    let queue = json(&h.replyctl(&mod_token, &["--output", "json", "queue"]));
    let hash = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["comment"]["author_name"] == "Persistent")
        .map(|item| item["author_hash"].as_str().expect("hash").to_owned())
        .expect("the author is queued");

    let done = json(&h.replyctl(
        &mod_token,
        &["--output", "json", "reject", "--author-hash", &hash],
    ));
    assert_eq!(done["results"].as_array().expect("results").len(), 3);
    assert_eq!(queue_len(&h, &mod_token, "rejected"), 3);

    let mut approve = Command::new(env!("CARGO_BIN_EXE_replyctl"))
        .env("REPLYGUARD_ENDPOINT", h.endpoint())
        .env("REPLYGUARD_TOKEN", &mod_token)
        .args(["--output", "json", "approve", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("replyctl approve -");
    approve
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n{} {}\n", others[0], others[1], others[2]).as_bytes())
        .expect("ids");
    let output = approve.wait_with_output().expect("ends");
    assert!(output.status.success());
    assert_eq!(queue_len(&h, &mod_token, "approved"), 3);

    refused(
        &h.replyctl(&mod_token, &["approve"]),
        2,
        "error: give comment ids, `-` to read them from stdin, or a filter such as --author-hash",
    );
}

/// `replyguard token add --role moderator` with `--scopes` when given.
fn moderator_token(h: &Harness, site: &str, scopes: Option<&str>) -> String {
    let db = h.settings.database.url.clone();
    let mut args = vec![
        "token",
        "add",
        "--site",
        site,
        "--role",
        "moderator",
        "--database",
        &db,
    ];
    if let Some(scopes) = scopes {
        args.extend(["--scopes", scopes]);
    }
    stdout(&replyguard(&args)).trim().to_owned()
}

/// `replyctl submit` as a host would; the new comment's id.
fn submit(h: &Harness, site_key: &str, args: &[&str]) -> String {
    let mut all = vec!["--output", "json", "submit"];
    all.extend_from_slice(args);
    json(&h.replyctl(site_key, &all))["comment"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn a_token_issued_with_scopes_can_do_exactly_those_things(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, default_token) = site_add(&h, "news.example.com");
    let id = submit(
        &h,
        &site_key,
        &[
            "--article",
            "story",
            "--name",
            "Jane",
            "--email",
            "jane@example.com",
            "Hello.",
        ],
    );

    let eraser = moderator_token(&h, "news.example.com", Some("moderate,erase"));
    stdout(&h.replyctl(&eraser, &["--output", "json", "queue"]));
    let revealing = format!("revealing the email of {id}");
    lacks_scope(
        &h,
        &h.replyctl(&eraser, &["reveal", &id, "--reason", "a complaint"]),
        &revealing,
        "reveal-email",
        "moderate,reveal-email,erase",
    );
    lacks_scope(
        &h,
        &h.replyctl(&eraser, &["policy", "show"]),
        "fetching the policy",
        "policy",
        "moderate,policy,erase",
    );
    stdout(&h.replyctl(
        &eraser,
        &["--output", "json", "export", "--email", "jane@example.com"],
    ));

    // The site's first token, like `token add` without --scopes, works the
    // queues and the policy, but cannot reach personal data.
    for token in [default_token, moderator_token(&h, "news.example.com", None)] {
        stdout(&h.replyctl(&token, &["--output", "json", "show", &id]));
        lacks_scope(
            &h,
            &h.replyctl(&token, &["erase", "--email", "jane@example.com"]),
            "erasing the author",
            "erase",
            "moderate,policy,erase",
        );
        lacks_scope(
            &h,
            &h.replyctl(&token, &["reveal", &id, "--reason", "why not"]),
            &revealing,
            "reveal-email",
            "moderate,policy,reveal-email",
        );
    }

    let revealer = moderator_token(&h, "news.example.com", Some("reveal-email"));
    lacks_scope(
        &h,
        &h.replyctl(&revealer, &["queue"]),
        "listing the queue",
        "moderate",
        "moderate,reveal-email",
    );

    let db = h.settings.database.url.clone();
    for (bad, code, first_line) in [
        (
            vec!["--role", "moderator", "--scopes", "moderate,everything"],
            2,
            "error: invalid value 'moderate,everything' for '--scopes <SCOPES>': unknown scope \
             \"everything\"; the scopes are moderate, policy, reveal-email, erase, integrations",
        ),
        (
            vec!["--role", "moderator", "--scopes", ""],
            2,
            "error: invalid value '' for '--scopes <SCOPES>': name at least one scope",
        ),
        (
            vec!["--role", "host", "--scopes", "moderate"],
            1,
            "replyguard: --scopes is for moderator tokens; a site key has none",
        ),
    ] {
        let mut args = vec![
            "token",
            "add",
            "--site",
            "news.example.com",
            "--database",
            &db,
        ];
        args.extend(bad.iter().copied());
        refused(&replyguard(&args), code, first_line);
    }
}

async fn replyctl_reveal_prints_the_email_and_the_audit_log_keeps_the_reason(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, _) = site_add(&h, "news.example.com");
    let id = submit(
        &h,
        &site_key,
        &[
            "--article",
            "story",
            "--name",
            "Jane",
            "--email",
            "Jane.Reader@Example.com",
            "Hi.",
        ],
    );
    let token = moderator_token(&h, "news.example.com", Some("moderate,reveal-email"));

    let plain = stdout(&h.replyctl(
        &token,
        &[
            "--output",
            "table",
            "reveal",
            &id,
            "--reason",
            "court order 12/34",
        ],
    ));
    assert_eq!(plain.trim(), "Jane.Reader@example.com");
    let revealed = json(&h.replyctl(
        &token,
        &[
            "--output",
            "json",
            "reveal",
            &id,
            "--reason",
            "a second look",
        ],
    ));
    assert_eq!(revealed["email"], "Jane.Reader@example.com");

    refused(
        &h.replyctl(&token, &["reveal", &id]),
        2,
        "error: the following required arguments were not provided:",
    );
    assert!(stderr(&h.replyctl(&token, &["reveal", &id])).contains("  --reason <TEXT>\n"));
    refused_by_server(
        &h.replyctl(&token, &["reveal", &id, "--reason", " "]),
        &format!("revealing the email of {id}"),
        "INVALID_ARGUMENT",
        "--reason is required: say why the email is needed",
    );

    let log = json(&h.replyctl(&token, &["--output", "json", "audit", "--comment", &id]));
    let entries = log["entries"].as_array().expect("entries");
    let reveals: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "reveal_email")
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert_eq!(
        reveals,
        ["a second look", "court order 12/34"],
        "newest first"
    );
    let prefix: String = token.chars().take(15).collect();
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "reveal_email")
            .all(|e| e["actor"] == prefix.as_str())
    );
}

async fn replyctl_block_rejects_pending_replies_of_an_author_an_address_and_a_domain(
    backend: Backend,
) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = queue_site(&h).await;
    let two_links = "See https://a.example and https://b.example";
    let by = |name: &str, email: &str, extra: &[&str]| {
        let mut args = vec!["--article", "story", "--name", name, "--email", email];
        args.extend_from_slice(extra);
        args.push(two_links);
        submit(&h, &site_key, &args)
    };
    let jane = by("Jane", "jane@example.com", &[]);
    let jane_again = submit(
        &h,
        &site_key,
        &[
            "--article",
            "story",
            "--name",
            "Jane",
            "--email",
            "jane@example.com",
            "And more: https://c.example and https://d.example",
        ],
    );
    let flooder = by("Flo", "flo@example.com", &["--ip", "203.0.113.50"]);
    let spammer = by("Sam", "sam@cheap-pills.example", &[]);
    let linker = by(
        "Lin",
        "lin@example.com",
        &["--website", "https://www.cheap-pills.example/"],
    );
    let bystander = by("Bea", "bea@example.org", &["--ip", "203.0.113.51"]);

    let hash = json(&h.replyctl(&mod_token, &["--output", "json", "show", &jane]))["comment"]
        ["author_hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    let blocked = json(&h.replyctl(
        &mod_token,
        &[
            "--output",
            "json",
            "block",
            "author",
            &hash,
            "--reject-pending",
            "--note",
            "troll",
        ],
    ));
    let entry = &blocked["entries"][0];
    assert_eq!(entry["kind"], "author");
    assert_eq!(entry["value"], hash.as_str());
    let mut rejected: Vec<&str> = entry["rejected_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    rejected.sort_unstable();
    let mut expected = vec![jane.as_str(), jane_again.as_str()];
    expected.sort_unstable();
    assert_eq!(rejected, expected);

    let table = stdout(&h.replyctl(
        &mod_token,
        &[
            "--output",
            "table",
            "block",
            "ip",
            "203.0.113.50",
            "--reject-pending",
        ],
    ));
    assert!(
        table.contains("203.0.113.50") && table.contains("blocked"),
        "{table}"
    );
    let domains = json(&h.replyctl(
        &mod_token,
        &[
            "--output",
            "json",
            "block",
            "domain",
            "Cheap-Pills.example",
            "--reject-pending",
        ],
    ));
    let kinds: Vec<&str> = domains["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["email-domain", "website-domain"]);
    assert_eq!(domains["entries"][0]["rejected_ids"][0], spammer.as_str());
    assert_eq!(domains["entries"][1]["rejected_ids"][0], linker.as_str());

    // Naming an author by email takes a token that may read or erase their data.
    let by_email = [
        "--output",
        "json",
        "block",
        "author",
        "--email",
        "JANE@example.com",
    ];
    refused_by_server(
        &h.replyctl(&mod_token, &by_email),
        "blocking",
        "PERMISSION_DENIED",
        "naming an author by email needs the `reveal-email` or `erase` scope; block by the \
         author hash the queue shows instead, or ask the operator for a token with \
         `replyguard token add --scopes moderate,reveal-email`",
    );
    let revealer = moderator_token(&h, "news.example.com", Some("moderate,reveal-email"));
    let again = json(&h.replyctl(&revealer, &by_email));
    assert_eq!(
        again["entries"][0]["already_blocked"], true,
        "the same author, by email"
    );

    let status = |id: &str| {
        json(&h.replyctl(&mod_token, &["--output", "json", "show", id]))["comment"]["comment"]
            ["status"]
            .as_str()
            .expect("status")
            .to_owned()
    };
    for id in [&jane, &jane_again, &flooder, &spammer, &linker] {
        assert_eq!(status(id), "rejected", "{id}");
    }
    assert_eq!(status(&bystander), "pending");

    refused(
        &h.replyctl(&mod_token, &["block", "author"]),
        2,
        "error: the following required arguments were not provided:",
    );
    refused_by_server(
        &h.replyctl(&mod_token, &["block", "ip", "not-an-address"]),
        "blocking",
        "INVALID_ARGUMENT",
        "value must be an IPv4 or IPv6 address",
    );
}

async fn replyctl_close_and_reopen_an_article(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = site_add(&h, "news.example.com");
    let moderate = |args: &[&str]| stdout(&h.replyctl(&mod_token, args));
    let submit = |text: &str| {
        h.replyctl(
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
                text,
            ],
        )
    };
    let closed = moderate(&[
        "--output",
        "table",
        "close",
        "story",
        "--note",
        "legal hold",
    ]);
    assert_eq!(closed.trim(), "Closed story to new replies.");
    let again = json(&h.replyctl(&mod_token, &["--output", "json", "close", "story"]));
    assert_eq!(
        (again["closed"].as_bool(), again["changed"].as_bool()),
        (Some(true), Some(false))
    );

    let listed = stdout(&h.replyctl(&site_key, &["--output", "table", "comments", "story"]));
    assert!(listed.contains("closed to new replies"), "{listed}");
    let closed_list = moderate(&["--output", "table", "closed"]);
    assert!(
        closed_list.contains("ARTICLE") && closed_list.contains("story"),
        "{closed_list}"
    );
    let listed = json(&h.replyctl(&site_key, &["--output", "json", "comments", "story"]));
    assert_eq!(listed["closed"], true);
    refused_by_server(
        &submit("Is anyone still reading this?"),
        "submitting the comment",
        "FAILED_PRECONDITION",
        "the article is closed to new replies",
    );

    let reopened = moderate(&["--output", "table", "reopen", "story"]);
    assert_eq!(reopened.trim(), "Opened story to new replies again.");
    let none = json(&h.replyctl(&mod_token, &["--output", "json", "closed"]));
    assert_eq!(none["articles"], serde_json::json!([]));
    stdout(&submit("Glad this is open again."));
    let audit = json(&h.replyctl(&mod_token, &["--output", "json", "audit"]));
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .filter(|action| action.ends_with("_article"))
        .collect();
    assert_eq!(actions, ["reopen_article", "close_article"], "newest first");
}

async fn replyctl_blocks_lists_the_blocklist_and_unblock_takes_an_entry_off(backend: Backend) {
    let h = Harness::new(backend).await;
    let (_, mod_token) = queue_site(&h).await;
    let run = |args: &[&str]| stdout(&h.replyctl(&mod_token, args));
    run(&["block", "ip", "203.0.113.50", "--note", "flooding"]);
    run(&["block", "domain", "cheap-pills.example", "--only", "email"]);

    let table = run(&["--output", "table", "blocks"]);
    for word in [
        "KIND",
        "ip",
        "203.0.113.50",
        "email-domain",
        "cheap-pills.example",
    ] {
        assert!(table.contains(word), "{word} in {table}");
    }
    let listed = json(&h.replyctl(&mod_token, &["--output", "json", "blocks"]));
    let entries = listed["entries"].as_array().expect("entries");
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["email-domain", "ip"], "by kind, then value");
    assert!(
        entries[1]["actor"]
            .as_str()
            .expect("actor")
            .starts_with("rg_mod_")
    );

    let removed = json(&h.replyctl(
        &mod_token,
        &[
            "--output",
            "json",
            "unblock",
            "ip",
            "203.0.113.50",
            "--note",
            "a school",
        ],
    ));
    assert_eq!(removed["removed"], true);
    // Taking off what is not there changes nothing, and says so as a failure.
    refused(
        &h.replyctl(
            &mod_token,
            &["--output", "table", "unblock", "ip", "203.0.113.50"],
        ),
        1,
        "replyctl: ip 203.0.113.50 is not on the blocklist; nothing changed (`replyctl blocks` \
         lists it)",
    );
    let gone = run(&[
        "--output",
        "table",
        "unblock",
        "email-domain",
        "cheap-pills.example",
    ]);
    assert!(gone.contains("Unblocked email-domain"), "{gone}");
    assert!(run(&["--output", "table", "blocks"]).contains("The blocklist is empty."));

    // `unblock domain` takes off what `block domain` put on: both entries.
    run(&["block", "domain", "spam.example"]);
    let both = run(&["--output", "table", "unblock", "domain", "spam.example"]);
    assert_eq!(
        both,
        "Unblocked email-domain spam.example.\nUnblocked website-domain spam.example.\n"
    );
    assert!(run(&["--output", "table", "blocks"]).contains("The blocklist is empty."));
    run(&["block", "domain", "spam.example"]);
    run(&["unblock", "domain", "spam.example", "--only", "website"]);
    let left = json(&h.replyctl(&mod_token, &["--output", "json", "blocks"]));
    assert_eq!(left["entries"][0]["kind"], "email-domain");
    assert_eq!(left["entries"].as_array().map(Vec::len), Some(1));
    refused(
        &h.replyctl(
            &mod_token,
            &["unblock", "domain", "spam.example", "--only", "website"],
        ),
        1,
        "replyctl: website-domain spam.example is not on the blocklist; nothing changed \
         (`replyctl blocks` lists it)",
    );

    refused(
        &h.replyctl(&mod_token, &["unblock", "everything", "x"]),
        2,
        "error: invalid value 'everything' for '<KIND>'",
    );
}

async fn replyctl_export_and_erase_act_on_one_authors_data(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, _) = site_add(&h, "news.example.com");
    let token = moderator_token(&h, "news.example.com", Some("moderate,erase"));
    let mine = submit(
        &h,
        &site_key,
        &[
            "--article",
            "story",
            "--name",
            "Pat",
            "--email",
            "pat@example.net",
            "--ip",
            "198.51.100.9",
            "Mine.",
        ],
    );
    submit(
        &h,
        &site_key,
        &[
            "--article",
            "story",
            "--name",
            "Bea",
            "--email",
            "bea@example.org",
            "Hers.",
        ],
    );

    let export = json(&h.replyctl(&token, &["export", "--email", "Pat@Example.net"]));
    assert_eq!(export["site"], "news.example.com");
    assert_eq!(export["comments"].as_array().map(Vec::len), Some(1));
    let comment = &export["comments"][0];
    assert_eq!(comment["id"], mine.as_str());
    assert_eq!(comment["email"], "pat@example.net");
    assert_eq!(comment["ip"], "198.51.100.9");
    assert_eq!(comment["author_name"], "Pat");
    // An export is JSON even where tables are asked for.
    let export_table = stdout(&h.replyctl(
        &token,
        &["--output", "table", "export", "--email", "pat@example.net"],
    ));
    serde_json::from_str::<Value>(&export_table).expect("JSON");

    // A dry run counts and changes nothing, not even the audit log.
    let counted = stdout(&h.replyctl(
        &token,
        &[
            "--output",
            "table",
            "erase",
            "--email",
            "pat@example.net",
            "--dry-run",
        ],
    ));
    assert_eq!(
        counted,
        "dry run: 1 comment would be erased or anonymised; nothing changed.\n"
    );
    let shown = json(&h.replyctl(&token, &["--output", "json", "show", &mine]));
    assert_ne!(shown["comment"]["comment"]["author_name"], "Anonymous");
    let erasures = json(&h.replyctl(
        &token,
        &["--output", "json", "audit", "--action", "erase_author"],
    ));
    assert_eq!(erasures["entries"].as_array().map(Vec::len), Some(0));

    // Not at a terminal, nothing asks: a script erases at once.
    let erased = stdout(&h.replyctl(
        &token,
        &["--output", "table", "erase", "--email", "pat@example.net"],
    ));
    assert!(
        erased.contains("1 comment erased or anonymised"),
        "{erased}"
    );
    let shown = json(&h.replyctl(&token, &["--output", "json", "show", &mine]));
    assert_eq!(shown["comment"]["comment"]["author_name"], "Anonymous");
    assert_eq!(shown["comment"]["ip"], Value::Null);
    let export = json(&h.replyctl(&token, &["export", "--email", "pat@example.net"]));
    assert_eq!(export["comments"].as_array().map(Vec::len), Some(0));

    refused_by_server(
        &h.replyctl(&token, &["erase", "--email", "not-an-email"]),
        "erasing the author",
        "INVALID_ARGUMENT",
        "--email must be an email address such as jane@example.com",
    );
}

async fn replyctl_audit_lists_every_kind_of_action_newest_first(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, _) = queue_site(&h).await;
    let token = moderator_token(&h, "news.example.com", Some("moderate,reveal-email,erase"));
    let two_links = "See https://a.example and https://b.example";
    let id = submit(
        &h,
        &site_key,
        &[
            "--article",
            "story",
            "--name",
            "Jane",
            "--email",
            "jane@example.com",
            two_links,
        ],
    );
    let spam = submit(
        &h,
        &site_key,
        &[
            "--article",
            "story",
            "--name",
            "Sam",
            "--email",
            "sam@spam.example",
            "--ip",
            "203.0.113.66",
            two_links,
        ],
    );
    stdout(&h.replyctl(
        &token,
        &["--output", "json", "approve", &id, "--note", "fine"],
    ));
    stdout(&h.replyctl(
        &token,
        &["--output", "json", "reveal", &id, "--reason", "a complaint"],
    ));
    stdout(&h.replyctl(
        &token,
        &[
            "--output",
            "json",
            "block",
            "ip",
            "203.0.113.66",
            "--reject-pending",
        ],
    ));
    stdout(&h.replyctl(
        &token,
        &["--output", "json", "export", "--email", "jane@example.com"],
    ));
    stdout(&h.replyctl(
        &token,
        &["--output", "json", "erase", "--email", "jane@example.com"],
    ));
    let doomed = moderator_token(&h, "news.example.com", None);
    let prefix: String = doomed.chars().take(15).collect();
    stdout(&replyguard(&[
        "token",
        "revoke",
        &prefix,
        "--database",
        &h.settings.database.url,
    ]));

    let log = json(&h.replyctl(&token, &["--output", "json", "audit", "--limit", "1000"]));
    assert_eq!(log["more"], false);
    let entries = log["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "token_revoke",
            "token_issue",
            "erase_author",
            "export_author",
            "reject",
            "block",
            "reveal_email",
            "approve",
            "submit",
            "submit",
            "token_issue",
            "token_issue",
            "token_issue",
        ]
    );
    let note = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .and_then(|e| e["note"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(note("token_revoke"), format!("{prefix} (moderator)"));
    assert_eq!(
        note("token_issue"),
        format!("{prefix} (moderator: moderate, policy)")
    );
    assert_eq!(note("erase_author"), "1 comment anonymised, text kept");
    assert_eq!(note("block"), "ip 203.0.113.66");
    assert_eq!(note("reveal_email"), "a complaint");
    assert!(
        !log.to_string().contains("jane@example.com"),
        "no email in the log"
    );
    let rejected = entries
        .iter()
        .find(|e| e["action"] == "reject")
        .expect("reject");
    assert_eq!(rejected["comment_id"], spam.as_str());

    let two = json(&h.replyctl(&token, &["--output", "json", "audit", "--limit", "2"]));
    assert_eq!(two["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(two["more"], true);
    let one_comment = json(&h.replyctl(&token, &["--output", "json", "audit", "--comment", &id]));
    let actions: Vec<&str> = one_comment["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["reveal_email", "approve", "submit"]);

    // One action's entries, typed with a dash or as the log writes it.
    for typed in ["token-issue", "token_issue"] {
        let issued = json(&h.replyctl(&token, &["--output", "json", "audit", "--action", typed]));
        let actions: Vec<&str> = issued["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(actions, ["token_issue"; 4], "{typed}");
    }
    refused(
        &h.replyctl(&token, &["audit", "--action", "aprove"]),
        2,
        "error: invalid value 'aprove' for '--action <ACTION>': did you mean approve? The \
         actions are approve, reject, mark_spam, mark_ham, delete, submit, token_issue, \
         token_revoke, reveal_email, erase_author, export_author, block, unblock, expire, \
         close_article, reopen_article, key_rotate, policy, webhook_add, webhook_remove, \
         webhook_redeliver, report, report_hold, notice_add, notice_remove, mail_pages, edit",
    );

    let table = stdout(&h.replyctl(&token, &["--output", "table", "audit", "--limit", "3"]));
    assert!(
        table.contains("erase_author") && table.contains("operator"),
        "{table}"
    );
}

/// `replyctl spam`, `ham` and `delete` as a moderator types them: a reply marked spam and then
/// ham is listed again, with both decisions in its history; a deleted one is gone.
async fn replyctl_spam_ham_and_delete_move_and_remove_replies(backend: Backend) {
    let h = Harness::new(backend).await;
    let (site_key, mod_token) = site_add(&h, "news.example.com");
    let by = |email: &'static str, text: &'static str| {
        [
            "--article",
            "story",
            "--name",
            "A Reader",
            "--email",
            email,
            text,
        ]
    };
    let kept = submit(
        &h,
        &site_key,
        &by(
            "jane@example.com",
            "Links hold a reply: https://a.example and https://b.example",
        ),
    );
    let gone = submit(
        &h,
        &site_key,
        &by(
            "john@example.com",
            "And again: https://c.example and https://d.example",
        ),
    );
    for (command, id) in [("spam", &kept), ("ham", &kept), ("delete", &gone)] {
        let decided = json(&h.replyctl(&mod_token, &["--output", "json", command, id]));
        assert_eq!(decided["results"][0]["ok"], true, "{command}: {decided}");
    }
    let listed = json(&h.replyctl(&site_key, &["--output", "json", "comments", "story"]));
    let ids: Vec<&str> = listed["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [kept.as_str()],
        "marked ham, it is listed; deleted, it is not"
    );
    let shown = json(&h.replyctl(&mod_token, &["--output", "json", "show", &kept]));
    let actions: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(actions, ["submit", "mark_spam", "mark_ham"]);
    refused_by_server(
        &h.replyctl(&mod_token, &["--output", "json", "show", &gone]),
        &format!("fetching comment {gone}"),
        "NOT_FOUND",
        &format!("no comment {gone}"),
    );
}

backend_tests!(
    flavor = "multi_thread";
    replyctl_spam_ham_and_delete_move_and_remove_replies,
    a_token_issued_with_scopes_can_do_exactly_those_things,
    replyctl_reveal_prints_the_email_and_the_audit_log_keeps_the_reason,
    replyctl_blocks_lists_the_blocklist_and_unblock_takes_an_entry_off,
    replyctl_close_and_reopen_an_article,
    replyctl_block_rejects_pending_replies_of_an_author_an_address_and_a_domain,
    replyctl_export_and_erase_act_on_one_authors_data,
    replyctl_audit_lists_every_kind_of_action_newest_first,
    the_quickstart_works_from_the_command_line,
    tables_are_printed_for_people,
    errors_exit_non_zero_with_one_clear_line,
    ids_are_shown_short_and_every_command_takes_a_unique_start,
    tables_fit_the_terminal_and_show_local_times_with_their_zone,
    operators_issue_and_revoke_tokens,
    replyctl_watch_prints_a_reply_submitted_after_it_started,
    replyctl_review_decides_one_reply_per_line_of_input,
    the_load_generator_reports_rates_latencies_and_errors,
    bulk_decisions_select_by_filter_with_a_dry_run_first,
    all_replies_of_one_author_go_in_one_command_and_ids_come_from_stdin,
);

/// The tests that drive a real terminal: they need `tmux`, which `.ci/run` installs, so they
/// run where the PostgreSQL halves and the drills do (`REPLYGUARD_REQUIRE_POSTGRES=1`), and a
/// fresh machine's `cargo test` lists them as ignored, with the reason.
mod at_a_terminal {
    use super::{
        replyctl_erase_at_a_terminal_asks_first, replyctl_review_at_a_terminal_decides_at_one_key,
    };

    crate::common::backend_tests!(
        needs = "drives a terminal through tmux, as CI does: set REPLYGUARD_REQUIRE_POSTGRES=1 \
                 with tmux and PostgreSQL at hand";
        flavor = "multi_thread";
        replyctl_review_at_a_terminal_decides_at_one_key,
        replyctl_erase_at_a_terminal_asks_first,
    );
}

/// The PostgreSQL counterpart of the file check above.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn the_token_is_stored_only_as_a_digest_in_postgres() {
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
    for token in printed_tokens(&out) {
        assert!(
            haystack.contains(&hex::encode(token_digest(&token))),
            "the digest of {token} is stored"
        );
        let secret_part = &token[token.len() - 20..];
        assert!(
            !haystack.contains(secret_part),
            "a token is stored in plain text"
        );
    }
}

/// Completion scripts and manual pages for both binaries, from their own definitions: each
/// script is valid for its shell where the shell can check it, and names the commands.
#[test]
fn both_binaries_print_completions_and_a_manual_page() {
    for (binary, command) in [
        (env!("CARGO_BIN_EXE_replyguard"), "token"),
        (env!("CARGO_BIN_EXE_replyctl"), "webhook"),
    ] {
        let run = |args: &[&str]| {
            let output = Command::new(binary).args(args).output().expect("runs");
            assert!(output.status.success(), "{args:?}: {output:?}");
            stdout(&output)
        };
        let bash = run(&["completions", "bash"]);
        assert!(bash.contains(command), "{binary}: bash names {command}");
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("completion.bash");
        std::fs::write(&script, &bash).expect("write");
        let checked = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .expect("bash runs");
        assert!(checked.status.success(), "{binary}: {checked:?}");
        assert!(run(&["completions", "zsh"]).starts_with("#compdef "));
        assert!(run(&["completions", "fish"]).contains(command));
        let man = run(&["man"]);
        let name = std::path::Path::new(binary)
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a name");
        assert!(man.contains(&format!(".TH {name} 1")), "{binary}: {man}");
        assert!(
            man.contains(command),
            "{binary}: the manual lists {command}"
        );
    }
}

/// A mistyped policy key, or the API's spelling of one, is answered with the key the command
/// takes, before anything is sent.
#[test]
fn a_mistyped_policy_key_gets_the_nearest_one() {
    for typed in ["hold_threshold", "hold-treshold", "max_links"] {
        let output = Command::new(env!("CARGO_BIN_EXE_replyctl"))
            .args(["policy", "set", typed, "3"])
            .env_remove("REPLYGUARD_TOKEN")
            .output()
            .expect("replyctl runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let wanted = if typed.starts_with("max") {
            "max-links"
        } else {
            "hold-threshold"
        };
        assert!(
            stderr.starts_with(&format!(
                "error: invalid value '{typed}' for '<KEY>': did you mean {wanted}? The keys are mode,"
            )),
            "{stderr}"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_replyctl"))
        .args(["policy", "set", "colour", "3"])
        .output()
        .expect("replyctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: invalid value 'colour' for '<KEY>': expected one of mode,"),
        "{stderr}"
    );
}
