//! Starting the server: what it needs from its settings before it serves, and the files it
//! keeps secrets in, which must be their owner's alone.

mod common;

use std::{
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Output,
};

use common::{Backend, Harness, TestDatabase, assessed, backend_tests, reply};
use replyguard::{
    config::{Secret, ServeSettings},
    deployment::KeyError,
    ids::CommentId,
    privacy::{PrivacyError, SecretKey, Vault},
    secret_files::with_suffix,
    server::{self, StartError},
    store::StoreError,
};

/// Writes `contents` to a new file at `path`, readable by its owner only, as a restore from a
/// backup that keeps modes does.
fn write_owner_only(path: &Path, contents: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("a new file");
    file.write_all(contents).expect("written");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("the file")
        .permissions()
        .mode()
        & 0o777
}

/// The message of a refusal names the file, its mode, and the `chmod` that fixes it.
fn names_the_chmod(message: &str, path: &Path, shown_mode: &str) {
    let expected = format!(
        "{} is readable by others (mode {shown_mode}): run `chmod 600 {}`",
        path.display(),
        path.display()
    );
    assert!(message.contains(&expected), "{expected:?} in {message}");
}

/// Stops the harness's server and starts one on the same database with `key`.
async fn restart_with(h: &mut Harness, key: Option<Secret>) -> Result<(), StartError> {
    h.restart_configured(|settings| settings.key.secret_key = key)
        .await
}

fn refused_for_the_key(started: Result<(), StartError>) {
    match started {
        Err(err @ StartError::Key(KeyError::Wrong)) => assert!(
            err.to_string().contains("REPLYGUARD_SECRET_KEY"),
            "the message says where the key comes from: {err}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started with a key the database was not written with"),
    }
}

/// A replica or a restart given another key would seal emails that no other server can open
/// and key author hashes that match no earlier reply: it refuses to start, and the right key
/// still starts.
async fn a_server_given_another_key_than_its_databases_refuses_to_start(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let (id, ..) = assessed(&h, &site, reply("story", "Sealed under the first key.")).await;

    let another = Secret::from(&SecretKey::generate());
    refused_for_the_key(restart_with(&mut h, Some(another)).await);

    let key = Secret::from(&h.key);
    restart_with(&mut h, Some(key))
        .await
        .expect("the right key starts");
    let id: CommentId = id.parse().expect("id");
    let stored = h.store.comment(id).await.expect("read");
    let stored = stored.expect("the reply is there");
    let email = Vault::new(&h.key).decrypt_email(site.id, &stored.email_sealed);
    assert!(email.is_ok_and(|email| email.starts_with("jane.reader+")));
}

/// A database written before key checks has none stored: a key that cannot open its newest
/// sealed email is refused without storing anything, and the key that can is then stored.
async fn a_database_from_before_key_checks_takes_only_the_key_of_its_emails(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    assessed(&h, &site, reply("story", "Sealed before key checks.")).await;
    h.db.execute("DELETE FROM key_check").await;

    let another = Secret::from(&SecretKey::generate());
    refused_for_the_key(restart_with(&mut h, Some(another)).await);
    assert_eq!(h.store.key_check().await.expect("read"), None);

    let key = Secret::from(&h.key);
    restart_with(&mut h, Some(key))
        .await
        .expect("the right key starts");
    let check = h.store.key_check().await.expect("read");
    assert_eq!(check.as_deref(), Some(&Vault::new(&h.key).key_check()[..]));
}

backend_tests!(
    a_server_given_another_key_than_its_databases_refuses_to_start,
    a_database_from_before_key_checks_takes_only_the_key_of_its_emails,
    a_secret_key_file_gives_the_server_its_key,
);

/// Restored from a backup without its key file, a SQLite database would meet a new key made on
/// the spot: the server refuses to start rather than seal new emails under it, leaves no new key
/// file behind, and starts once the old one is back.
#[tokio::test]
async fn a_sqlite_database_whose_key_file_is_lost_refuses_a_new_one() {
    let mut h =
        Harness::configured(Backend::Sqlite, |settings| settings.key.secret_key = None).await;
    let site = h.site("news.example.com").await;
    assessed(&h, &site, reply("story", "Sealed under the key file.")).await;
    let key_file = h.db_path().with_extension("key");
    let backed_up = std::fs::read(&key_file).expect("the key file");
    std::fs::remove_file(&key_file).expect("the key file is lost");

    match restart_with(&mut h, None).await {
        Err(err @ StartError::Key(KeyError::LostFile { .. })) => assert!(
            err.to_string().contains("restore the key file"),
            "the message says what to do: {err}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started under a new key file"),
    }
    assert!(!key_file.exists(), "the new key file is left behind");

    write_owner_only(&key_file, &backed_up);
    restart_with(&mut h, None)
        .await
        .expect("starts with its key file");
}

#[tokio::test]
async fn a_server_on_postgres_without_a_secret_key_refuses_to_start() {
    // Refused before the database is opened, so PostgreSQL need not be up.
    let url = common::postgres_admin_url();
    let settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), url);
    assert!(settings.key.secret_key.is_none());

    match server::start(&settings).await {
        Err(err @ StartError::Key(KeyError::Missing)) => {
            assert!(
                err.to_string().contains("REPLYGUARD_SECRET_KEY"),
                "the message names the setting: {err}"
            );
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a PostgreSQL server started without a shared secret key"),
    }
}

#[tokio::test]
async fn a_server_on_sqlite_without_a_secret_key_keeps_one_beside_the_database() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), db.url.clone());

    let server = server::start(&settings).await.expect("server starts");
    server.shutdown().await.expect("clean shutdown");
    assert!(
        db.sqlite_path().with_extension("key").exists(),
        "the key file beside the database"
    );
}

/// One process serves a SQLite database: a second server on the same file would not hear the
/// first's new replies or changes, so it is refused, and starts once the first has stopped.
#[tokio::test]
async fn a_second_server_on_one_sqlite_file_is_refused() {
    let mut h = Harness::new(Backend::Sqlite).await;
    let mut settings = h.settings.clone();
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    match server::start(&settings).await {
        Err(err @ StartError::InUse { .. }) => assert!(
            err.to_string().contains("PostgreSQL"),
            "the message says what serves several: {err}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("two servers on one SQLite file"),
    }
    h.restart().await;
}

/// A key file anyone on the machine can read opens every stored email: the server refuses it as
/// ssh refuses such a private key, says how to fix it, and starts once it is fixed.
#[tokio::test]
async fn a_key_file_others_can_read_stops_the_server_with_the_chmod_that_fixes_it() {
    let mut h =
        Harness::configured(Backend::Sqlite, |settings| settings.key.secret_key = None).await;
    let key_file = h.db_path().with_extension("key");
    chmod(&key_file, 0o644);

    match restart_with(&mut h, None).await {
        Err(err @ StartError::Key(KeyError::Unusable(PrivacyError::Exposed(_)))) => {
            names_the_chmod(&err.to_string(), &key_file, "0644");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started with a key file others can read"),
    }
    assert_eq!(
        mode(&key_file),
        0o644,
        "the mode is the operator's to change"
    );

    chmod(&key_file, 0o640);
    match restart_with(&mut h, None).await {
        Err(err @ StartError::Key(KeyError::Unusable(PrivacyError::Exposed(_)))) => assert!(
            err.to_string().contains("readable by its group"),
            "a group that can read it is refused too: {err}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started with a key file its group can read"),
    }

    chmod(&key_file, 0o600);
    restart_with(&mut h, None)
        .await
        .expect("starts once the key file is private");
}

/// After a rotation the old key stays in `….key.previous`, which the server reads: it is held to
/// the same rule.
#[tokio::test]
async fn a_previous_key_file_others_can_read_stops_the_server_too() {
    let mut h =
        Harness::configured(Backend::Sqlite, |settings| settings.key.secret_key = None).await;
    let previous = with_suffix(&h.db_path().with_extension("key"), ".previous");
    write_owner_only(&previous, SecretKey::generate().to_base64().as_bytes());
    chmod(&previous, 0o644);

    match restart_with(&mut h, None).await {
        Err(err @ StartError::Key(KeyError::Unusable(PrivacyError::Exposed(_)))) => {
            names_the_chmod(&err.to_string(), &previous, "0644");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started with a previous key file others can read"),
    }
    chmod(&previous, 0o600);
    restart_with(&mut h, None)
        .await
        .expect("starts once the file is private");
}

/// A SQLite database holds every reader's sealed email and keyed hashes: one others can read
/// (as an older release left it, or a copy made carelessly) is refused with the fix.
#[tokio::test]
async fn a_sqlite_database_others_can_read_stops_the_server_with_the_chmod_that_fixes_it() {
    let mut h = Harness::new(Backend::Sqlite).await;
    let key = Secret::from(&h.key);
    let database = h.db_path();
    chmod(&database, 0o644);

    match restart_with(&mut h, Some(key.clone())).await {
        Err(err @ StartError::Store(StoreError::Exposed(_))) => {
            names_the_chmod(&err.to_string(), &database, "0644");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started on a database others can read"),
    }
    chmod(&database, 0o600);
    restart_with(&mut h, Some(key))
        .await
        .expect("starts once the database is private");
}

/// A first start makes the database, its `-wal` and `-shm`, and the key file readable by their
/// owner only, whatever the umask lets other files be.
#[tokio::test]
async fn a_fresh_sqlite_deployment_keeps_its_files_readable_by_their_owner_only() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), db.url.clone());
    let server = server::start(&settings).await.expect("server starts");

    let database = db.sqlite_path();
    let files: Vec<PathBuf> = vec![
        with_suffix(&database, "-wal"),
        with_suffix(&database, "-shm"),
        database.with_extension("key"),
        database,
    ];
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    server.shutdown().await.expect("clean shutdown");
}

/// The key can come from a file named by `--secret-key-file` / `REPLYGUARD_SECRET_KEY_FILE`,
/// held to the same rule as the key file beside a SQLite database, and it must be the
/// database's key like any other.
async fn a_secret_key_file_gives_the_server_its_key(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    assessed(&h, &site, reply("story", "Sealed under the key.")).await;
    let file = h.db.dir.path().join("given.key");
    write_owner_only(&file, format!("{}\n", h.key.to_base64()).as_bytes());
    let from_file = |settings: &mut ServeSettings| {
        settings.key.secret_key = None;
        settings.key.secret_key_file = Some(file.clone());
    };

    h.restart_configured(from_file)
        .await
        .expect("starts with the key from the file");
    if backend == Backend::Sqlite {
        assert!(
            !h.db_path().with_extension("key").exists(),
            "no key file is made beside the database when one is given"
        );
    }

    chmod(&file, 0o644);
    match h.restart_configured(from_file).await {
        Err(err @ StartError::Key(KeyError::Unusable(PrivacyError::Exposed(_)))) => {
            names_the_chmod(&err.to_string(), &file, "0644");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started with a key file others can read"),
    }

    let another = h.db.dir.path().join("another.key");
    write_owner_only(&another, SecretKey::generate().to_base64().as_bytes());
    let refused = h
        .restart_configured(|settings| {
            settings.key.secret_key = None;
            settings.key.secret_key_file = Some(another.clone());
        })
        .await;
    refused_for_the_key(refused);
}

/// Runs the real `replyguard` with `args` and `env`, nothing else of the caller's settings.
fn replyguard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"));
    for (name, _) in std::env::vars() {
        if name.starts_with("REPLYGUARD_") {
            command.env_remove(name);
        }
    }
    command.args(args).envs(env.iter().copied());
    command.output().expect("replyguard runs")
}

/// A port in use stops `replyguard serve` before it makes anything: no database, lock or key file
/// is left behind to puzzle over, or to be taken for the deployment's.
#[test]
fn a_busy_port_leaves_no_database_or_key_file_behind() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = busy.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("a directory");
    let url = format!("sqlite://{}", dir.path().join("replyguard.db").display());

    let refused = replyguard(&["serve", "--listen", &addr, "--database", &url], &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the directory")
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `ps` shows a command line to every user of the machine: a key given as a flag is refused
/// with where to put it instead, while the same key from the environment or a file is taken.
#[tokio::test]
async fn a_secret_key_on_the_command_line_is_refused_and_taken_from_the_environment() {
    let h = Harness::new(Backend::Sqlite).await;
    let site = h.site("news.example.com").await;
    assessed(&h, &site, reply("story", "Sealed under the key.")).await;
    let key = h.key.to_base64();
    let url = h.settings.database.url.clone();

    for args in [
        vec!["key", "check", "--database", &url, "--secret-key", &key],
        vec!["serve", "--database", &url, "--secret-key", &key],
        vec!["serve", "--database", &url, "--previous-secret-key", &key],
    ] {
        let refused = replyguard(&args, &[]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{args:?} was taken");
        assert!(
            stderr.contains("on the command line shows the key")
                && stderr.contains("_SECRET_KEY in the environment")
                && stderr.contains("-file FILE"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains(&key),
            "the refusal repeats the key: {stderr}"
        );
    }

    let from_env = replyguard(
        &["key", "check", "--database", &url],
        &[("REPLYGUARD_SECRET_KEY", &key)],
    );
    assert!(
        from_env.status.success(),
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );
    assert!(String::from_utf8_lossy(&from_env.stdout).contains("the key is the one"));

    let file = h.db.dir.path().join("given.key");
    write_owner_only(&file, key.as_bytes());
    let file = file.display().to_string();
    for (args, env) in [
        (
            vec![
                "key",
                "check",
                "--database",
                &url,
                "--secret-key-file",
                &file,
            ],
            vec![],
        ),
        (
            vec!["key", "check", "--database", &url],
            vec![("REPLYGUARD_SECRET_KEY_FILE", file.as_str())],
        ),
    ] {
        let from_file = replyguard(&args, &env);
        assert!(
            from_file.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&from_file.stderr)
        );
    }
}
