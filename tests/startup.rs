//! Starting the server: what it needs from its settings before it serves.

mod common;

use common::{Backend, TestDatabase};
use replyguard::{
    config::ServeSettings,
    server::{self, StartError},
};

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
