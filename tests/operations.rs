//! What an operator relies on: metrics.

mod common;

use common::{Backend, Harness, reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    let mut stream = tokio::net::TcpStream::connect(metrics)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("response");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
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
    server.shutdown().await.expect("shutdown");
}
