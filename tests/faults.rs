//! PostgreSQL going away under load: calls fail fast with UNAVAILABLE (the
//! store's acquire timeout ends them, not the server's deadline), no
//! acknowledged reply is lost, and the service recovers by itself.
//!
//! The database "goes away" behind a proxy of this test's own, so no other
//! test loses its connections.

mod common;

use std::{net::SocketAddr, str::FromStr, time::Duration};

use common::{Backend, Harness, TestDatabase, proxy::Proxy, reply_by};
use replyguard::{
    config::{Secret, ServeSettings},
    privacy::SecretKey,
    proto, server,
    store::StoreOptions,
};
use sqlx::postgres::PgConnectOptions;
use tonic::{Code, Status};

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn calls_fail_fast_while_postgres_is_away_and_recover_when_it_returns() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let upstream = PgConnectOptions::from_str(&db.url).expect("url");
    let upstream: SocketAddr = format!("{}:{}", upstream.get_host(), upstream.get_port())
        .parse()
        .expect("a host:port");
    let proxy = Proxy::start(upstream).await;
    let mut url = url::Url::parse(&db.url).expect("url");
    url.set_port(Some(proxy.addr().port())).expect("port");
    url.set_host(Some("127.0.0.1")).expect("host");

    let key = SecretKey::generate();
    let mut settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), url.to_string());
    settings.key.secret_key = Some(Secret::from(&key));
    let running = server::start(&settings).await.expect("server starts");
    // Sites and tokens straight into the same schema.
    let h_store = replyguard::store::open(&db.url).await.expect("store");
    let site = h_store
        .create_site("news.example.com", &Default::default())
        .await
        .expect("site");
    let (site_key, host) =
        replyguard::tools::cli::issue(replyguard::store::Role::Host, vec![site.id]);
    h_store.insert_token(&host).await.expect("token");
    let comments = Harness::comments_at(&running, &site_key).await;

    let submit = |i: usize| {
        let mut client = comments.clone();
        async move {
            client
                .submit_comment(reply_by(
                    "story",
                    &format!("Reply number {i}."),
                    &format!("Reader {i}"),
                    &format!("reader{i}@example.com"),
                ))
                .await
                .map(|r| r.into_inner().comment.expect("comment").id)
        }
    };
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        acknowledged.push(submit(i).await.expect("before the outage"));
    }

    // Failing fast means the store gives up on the database by itself and answers
    // UNAVAILABLE: at once when a connection is refused or breaks, and within its acquire
    // timeout (short, well within the server's deadline for a call) when none can be had. A
    // call left waiting for the database would be ended by that deadline instead, with
    // DEADLINE_EXCEEDED. The callers set no deadline of their own.
    let acquire = StoreOptions::default().acquire_timeout;
    let deadline = Duration::from_secs(settings.limits.request_timeout_seconds.into());
    assert_eq!(acquire, Duration::from_secs(5));
    assert!(acquire * 4 <= deadline, "{acquire:?} against {deadline:?}");
    let unavailable = |status: &Status| {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(
            status.message(),
            "the database is unavailable; retry later",
            "{status:?}"
        );
    };
    // Only so that a hung call fails the test instead of stalling it: twice the deadline.
    let patience = deadline * 2;

    proxy.cut();
    let during: Vec<_> = (10..30).map(|i| tokio::spawn(submit(i))).collect();
    for call in during {
        let status = tokio::time::timeout(patience, call)
            .await
            .expect("the call answers instead of hanging")
            .expect("no panic")
            .expect_err("every call during the outage is refused");
        unavailable(&status);
    }
    let mut lister = comments.clone();
    let status = lister
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect_err("no database, no listing");
    unavailable(&status);

    proxy.restore();
    acknowledged.push(submit(99).await.expect("the service recovers by itself"));
    let listed = lister
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            page_size: 200,
            ..Default::default()
        })
        .await
        .expect("listing works again")
        .into_inner();
    let mut listed: Vec<String> = listed.comments.into_iter().map(|c| c.id).collect();
    listed.sort();
    acknowledged.sort();
    assert_eq!(listed, acknowledged, "every acknowledged reply is there");
    running.shutdown().await.expect("shutdown");
}
