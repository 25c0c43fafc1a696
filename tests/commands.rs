//! The operator's commands as processes, each checked for what README.md and docs/ promise
//! of it: `migrate` leaves a migrated database, changes nothing the second time and refuses a
//! database it cannot use or that a newer replyguard migrated, `key generate` writes a key its
//! owner alone may read and never over a file, `spam-eval` prints its report, and `serve`
//! starts, answers, and exits cleanly on SIGTERM.

mod common;

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use common::{Backend, TestDatabase, backend_tests, process, reply};
use replyguard::privacy::read_key_file;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// The real `replyguard` binary with `args`, told nothing by the environment.
fn replyguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .env_remove("REPLYGUARD_DATABASE_URL")
        .env_remove("REPLYGUARD_SECRET_KEY")
        .env_remove("REPLYGUARD_SECRET_KEY_FILE")
        .args(args)
        .output()
        .expect("replyguard runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A run that exits 1 with `message` as its one line on stderr.
fn refused_with(output: &Output, message: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    assert_eq!(stderr(output).trim_end(), message);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The versions of the migrations in `migrations/<backend>/`, from their file names.
fn migration_files(backend: Backend) -> Vec<i64> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
    let mut versions: Vec<i64> = std::fs::read_dir(&dir)
        .expect("the migrations")
        .map(|entry| {
            let name = entry.expect("an entry").file_name();
            let name = name.to_string_lossy();
            let (version, _) = name.split_once('_').expect("NNNN_name.sql");
            version.parse().expect("a version")
        })
        .collect();
    versions.sort_unstable();
    versions
}

/// The migrations the database records as applied.
async fn applied(db: &TestDatabase) -> Vec<i64> {
    let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    match db.backend {
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_all(&mut conn).await
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_all(&mut conn).await
        }
    }
    .expect("read the applied migrations")
}

async fn migrate_leaves_a_migrated_database_once_and_refuses_a_newer_one(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let migrated = replyguard(&["migrate", "--database", &db.url]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert_eq!(stderr(&migrated), "migrations applied\n");
    let versions = migration_files(backend);
    let every: Vec<i64> = (1..=versions.len() as i64).collect();
    assert_eq!(versions, every, "numbered from 1 without a gap");
    assert_eq!(
        versions,
        migration_files(match backend {
            Backend::Sqlite => Backend::Postgres,
            Backend::Postgres => Backend::Sqlite,
        }),
        "the same numbers on both backends"
    );
    assert_eq!(applied(&db).await, versions);
    if backend == Backend::Sqlite {
        assert_eq!(
            mode(&db.sqlite_path()),
            0o600,
            "a file it creates is its owner's"
        );
    }
    let rows = db.rows().await;
    assert!(
        rows.iter().any(|row| row.starts_with("_sqlx_migrations: ")),
        "{rows:?}"
    );

    let again = replyguard(&["migrate", "--database", &db.url]);
    assert!(again.status.success(), "{}", stderr(&again));
    db.assert_unchanged(&rows).await;

    // A database a newer replyguard migrated is left to that replyguard.
    let future = "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                  execution_time) VALUES (20990101000000, 'from the future', TRUE, ";
    match backend {
        Backend::Sqlite => db.execute(&format!("{future}X'00', 0)")).await,
        Backend::Postgres => db.execute(&format!("{future}'\\x00'::bytea, 0)")).await,
    }
    let rows = db.rows().await;
    refused_with(
        &replyguard(&["migrate", "--database", &db.url]),
        "replyguard: the database schema is newer than this replyguard (migration \
         20990101000000); upgrade replyguard",
    );
    db.assert_unchanged(&rows).await;
}

backend_tests!(flavor = "multi_thread"; migrate_leaves_a_migrated_database_once_and_refuses_a_newer_one);

#[test]
fn migrate_refuses_a_database_url_it_cannot_use() {
    refused_with(
        &replyguard(&["migrate", "--database", "mysql://db.example/replies"]),
        "replyguard: unsupported database URL (expected sqlite:// or postgres://): \
         mysql://db.example/replies",
    );
    refused_with(
        &replyguard(&[
            "migrate",
            "--database",
            "postgres://db.example:five/replies",
        ]),
        "replyguard: cannot use the PostgreSQL URL: error with configuration: invalid port number",
    );
    // Nothing listens on port 1: refused once the pool's acquire timeout has passed.
    refused_with(
        &replyguard(&[
            "migrate",
            "--database",
            "postgres://postgres@127.0.0.1:1/replies",
        ]),
        "replyguard: database unavailable: pool timed out while waiting for an open connection",
    );
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no such directory").join("replyguard.db");
    refused_with(
        &replyguard(&[
            "migrate",
            "--database",
            &format!("sqlite://{}", missing.display()),
        ]),
        &format!(
            "replyguard: {}: No such file or directory (os error 2)",
            missing.display()
        ),
    );
    assert!(!missing.exists());
}

#[test]
fn key_generate_writes_a_key_its_owner_alone_may_read_and_never_over_a_file() {
    let dir = tempfile::tempdir().expect("dir");
    let (first, second) = (dir.path().join("first.key"), dir.path().join("second.key"));
    for path in [&first, &second] {
        let made = replyguard(&["key", "generate", &path.to_string_lossy()]);
        assert!(made.status.success(), "{}", stderr(&made));
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    // Each is a key the server reads (32 bytes in base64, the file checked as it checks
    // one), and each is new.
    let key = read_key_file(&first).expect("a key file");
    let other = read_key_file(&second).expect("a key file");
    assert_ne!(key.to_base64(), other.to_base64());

    let written = std::fs::read(&first).expect("read");
    refused_with(
        &replyguard(&["key", "generate", &first.to_string_lossy()]),
        &format!(
            "replyguard: key file: {}: File exists (os error 17)",
            first.display()
        ),
    );
    assert_eq!(
        std::fs::read(&first).expect("read"),
        written,
        "the file is kept"
    );
    assert_eq!(mode(&first), 0o600);
}

#[test]
fn spam_eval_prints_its_report_on_a_labelled_file() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/news-replies.csv");
    let report = replyguard(&[
        "spam-eval",
        &file.to_string_lossy(),
        "--built-in-prior",
        "--protocol",
        "cold",
    ]);
    assert!(report.status.success(), "{}", stderr(&report));
    let text = stdout(&report);
    // The file's own counts, and the views of the report; not its figures, which follow the
    // rules.
    for line in [
        "policy: default (auto, hold at 1, spam at 5); positive = labelled spam",
        "== news-replies.csv (50 comments, 0 refused by validation; the built-in prior)",
        "-- cold: judged 50 (10 spam, 40 ham); 0 repeated texts left out",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    for row in [
        "status",
        "spam",
        "ham",
        "caught (not approved)",
        "spam status",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(row)),
            "{row:?} in {text}"
        );
    }
    assert!(
        !text.contains("-- learning"),
        "only the cold protocol: {text}"
    );

    let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/no-such-file.csv");
    refused_with(
        &replyguard(&["spam-eval", &missing.to_string_lossy(), "--built-in-prior"]),
        &format!(
            "replyguard: {}: No such file or directory (os error 2)",
            missing.display()
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_answers_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("replyguard.db");
    let database = format!("sqlite://{}", path.display());
    let (site_key, _) = process::add_site(&database, "news.example.com");
    let (child, endpoint) = process::serve(&database, &[], &[]);

    let channel = tonic::transport::Channel::from_shared(endpoint.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "replyguard.v1.Comments".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");
    let mut comments = process::comments(&endpoint, &site_key).await;
    let (id, _) = common::submitted(&mut comments, reply("story", "Served by the binary.")).await;
    drop(comments);

    let status = process::terminate(child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    // The key file beside the database, made on the first start, is its owner's alone.
    assert_eq!(mode(&path.with_extension("key")), 0o600);
    // What it acknowledged is there for the next start.
    let (child, endpoint) = process::serve(&database, &[], &[]);
    let mut comments = process::comments(&endpoint, &site_key).await;
    let listed = comments
        .list_comments(replyguard::proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<String> = listed.comments.into_iter().map(|c| c.id).collect();
    assert_eq!(ids, [id]);
    drop(comments);
    assert!(process::terminate(child, Duration::from_secs(30)).success());
}
