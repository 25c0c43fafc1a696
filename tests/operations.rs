//! What an operator relies on: metrics, served within bounds a caller cannot stretch.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{Backend, Harness, reply};
use replyguard::metrics::{self, Limits};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Far above any limit the tests set: a bound on waiting, never a pause.
const PATIENCE: Duration = Duration::from_secs(20);

/// The whole response to `GET path` on a new connection that asks to be closed after it.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut text = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut text))
        .await
        .expect("answered in time")
        .expect("response");
    text
}

/// Whether the server closed `stream` (end of file, or a reset for bytes it left unread) within
/// [`PATIENCE`], reading whatever it sent before.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut sink = Vec::new();
    match tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => err.kind() == std::io::ErrorKind::ConnectionReset,
        Err(_) => false,
    }
}

#[tokio::test]
async fn metrics_count_calls_and_replies_in_prometheus_text() {
    let mut h = Harness::configured(Backend::Sqlite, |settings| {
        settings.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let site = h.site("news.example.com").await;
    let server = h.server.take().expect("server with metrics");
    let metrics = server.metrics_addr().expect("metrics are served");
    tokio::time::timeout(std::time::Duration::from_secs(30), server.swept())
        .await
        .expect("the first sweep ends");

    let channel = tonic::transport::Channel::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut comments = replyguard::proto::comments_client::CommentsClient::new(channel);
    let mut request = tonic::Request::new(reply("story", "Counted."));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", site.site_key).parse().expect("ascii"),
    );
    comments.submit_comment(request).await.expect("submit");
    comments
        .submit_comment(reply("story", "No credential."))
        .await
        .expect_err("refused");

    let text = get(metrics, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"replyguard_grpc_calls_total{method="SubmitComment",code="UNAUTHENTICATED"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"replyguard_replies_total{status="approved"}"#),
        "{text}"
    );
    assert!(
        text.contains("replyguard_grpc_call_seconds_bucket"),
        "{text}"
    );
    for series in [
        r#"replyguard_retention_sweeps_total{outcome="done"}"#,
        r#"replyguard_retention_swept_total{what="spam_deleted"}"#,
    ] {
        assert!(
            text.contains(series),
            "the sweep at start: {series} in {text}"
        );
    }
    let elsewhere = get(metrics, "/").await;
    assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");

    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shuts down in time")
        .expect("shutdown");
    assert!(
        TcpStream::connect(metrics).await.is_err(),
        "metrics stop with the server"
    );
}

/// A caller that opens a connection and sends nothing, or half a request, would hold it open for
/// good: the server closes it once the limit has passed, and answers others meanwhile.
#[tokio::test]
async fn a_metrics_connection_that_never_finishes_its_request_is_closed_while_others_are_answered()
{
    let limits = Limits {
        idle: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = metrics::serve_with("127.0.0.1:0".parse().expect("addr"), limits)
        .await
        .expect("metrics bind");
    let mut silent = TcpStream::connect(server.addr()).await.expect("connect");
    let mut dribbling = TcpStream::connect(server.addr()).await.expect("connect");
    dribbling
        .write_all(b"GET /metrics HTTP/1.1\r\nHo")
        .await
        .expect("half a request");

    let answered = get(server.addr(), "/metrics").await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    assert!(
        closed_by_server(&mut silent).await,
        "the silent one is closed"
    );
    assert!(
        closed_by_server(&mut dribbling).await,
        "the dribbling one is closed"
    );
    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shuts down in time");
}

/// Connections beyond the bound wait rather than being served, and once the ones holding the
/// server go away, the metrics are served again.
#[tokio::test]
async fn more_metrics_connections_than_the_bound_wait_until_others_go_away() {
    let limits = Limits {
        connections: 2,
        ..Limits::default()
    };
    let server = metrics::serve_with("127.0.0.1:0".parse().expect("addr"), limits)
        .await
        .expect("metrics bind");
    // Each kept alive after a first answer, so it is surely accepted and held.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.expect("answered");
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }

    let mut waiting = tokio::spawn(get(server.addr(), "/metrics"));
    // Not a wait for something to happen: that nothing is answered while both are held.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
    assert!(
        early.is_err(),
        "a third connection was served beyond the bound"
    );

    drop(held);
    let answered = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("served once the others went away")
        .expect("the request task");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .expect("shuts down in time");
}

/// The services a server's reflection lists, asked on one protocol (`v1` or `v1alpha`, whose
/// generated types differ but whose messages are the same).
macro_rules! listed_services {
    ($protocol:ident, $channel:expr) => {{
        use futures_util::StreamExt;
        use tonic_reflection::pb::$protocol;
        let mut client = $protocol::server_reflection_client::ServerReflectionClient::new($channel);
        let request = $protocol::ServerReflectionRequest {
            message_request: Some(
                $protocol::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
            ..Default::default()
        };
        let answer = client
            .server_reflection_info(futures_util::stream::iter([request]))
            .await
            .expect(concat!(stringify!($protocol), " answers"))
            .into_inner()
            .next()
            .await
            .expect("an answer")
            .expect("ok");
        match answer.message_response {
            Some($protocol::server_reflection_response::MessageResponse::ListServicesResponse(
                listed,
            )) => listed
                .service
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<String>>(),
            other => panic!("not a list: {other:?}"),
        }
    }};
}

/// Server reflection lists every service, on the current protocol (`v1`) and on the older one
/// (`v1alpha`) that grpcui, older grpcurl and Postman builds still ask for.
#[tokio::test]
async fn reflection_lists_the_services_on_both_protocols() {
    let h = Harness::new(Backend::Sqlite).await;
    let channel = tonic::transport::Channel::from_shared(h.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    let wanted = [
        "replyguard.v1.Comments",
        "replyguard.v1.Moderation",
        "replyguard.v1.Integrations",
        "grpc.health.v1.Health",
    ];
    for (protocol, names) in [
        ("v1", listed_services!(v1, channel.clone())),
        ("v1alpha", listed_services!(v1alpha, channel.clone())),
    ] {
        for name in wanted {
            assert!(
                names.iter().any(|n| n == name),
                "{protocol} lacks {name}: {names:?}"
            );
        }
    }
}
