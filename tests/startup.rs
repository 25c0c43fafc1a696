//! Starting the server: what it needs from its settings before it serves.

mod common;

use common::{Backend, Harness, TestDatabase, assessed, backend_tests, reply};
use replyguard::{
    config::{Secret, ServeSettings},
    ids::CommentId,
    privacy::{SecretKey, Vault},
    server::{self, StartError},
};

/// Stops the harness's server and starts one on the same database with `key`.
async fn restart_with(h: &mut Harness, key: Option<Secret>) -> Result<(), StartError> {
    h.restart_configured(|settings| settings.secret_key = key)
        .await
}

fn refused_for_the_key(started: Result<(), StartError>) {
    match started {
        Err(err @ StartError::WrongKey) => assert!(
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
);

/// Restored from a backup without its key file, a SQLite database would meet a new key made on
/// the spot: the server refuses to start rather than seal new emails under it, leaves no new key
/// file behind, and starts once the old one is back.
#[tokio::test]
async fn a_sqlite_database_whose_key_file_is_lost_refuses_a_new_one() {
    let mut h = Harness::configured(Backend::Sqlite, |settings| settings.secret_key = None).await;
    let site = h.site("news.example.com").await;
    assessed(&h, &site, reply("story", "Sealed under the key file.")).await;
    let key_file = h.db_path().with_extension("key");
    let backed_up = std::fs::read(&key_file).expect("the key file");
    std::fs::remove_file(&key_file).expect("the key file is lost");

    match restart_with(&mut h, None).await {
        Err(err @ StartError::LostKeyFile { .. }) => assert!(
            err.to_string().contains("restore the key file"),
            "the message says what to do: {err}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started under a new key file"),
    }
    assert!(!key_file.exists(), "the new key file is left behind");

    std::fs::write(&key_file, backed_up).expect("the key file is restored");
    restart_with(&mut h, None)
        .await
        .expect("starts with its key file");
}

#[tokio::test]
async fn a_server_on_postgres_without_a_secret_key_refuses_to_start() {
    // Refused before the database is opened, so PostgreSQL need not be up.
    let url = common::postgres_admin_url();
    let settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), url);
    assert!(settings.secret_key.is_none());

    match server::start(&settings).await {
        Err(err @ StartError::MissingKey) => {
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
