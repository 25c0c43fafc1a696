//! Prometheus metrics: calls by method and code with their latency, replies
//! by the status they were given, moderators' decisions, and the retention
//! sweeps with what they removed.
//!
//! Served in the OpenMetrics text format on `REPLYGUARD_METRICS_LISTEN`.
//! Labels come from fixed sets only (known RPC names, status words), never
//! from what a request carries, so a caller cannot grow the series count.

use std::{
    collections::HashMap,
    future::Future,
    io::ErrorKind,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, LazyLock},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    BoxError, Router,
    error_handling::HandleErrorLayer,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
    serve::Listener,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use prost::Message;
use prost_types::FileDescriptorSet;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, oneshot},
    task::JoinHandle,
    time::{Instant, Sleep},
};
use tower::{ServiceBuilder, timeout::TimeoutLayer};

use crate::domain::SweepReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SweptLabels {
    what: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    submitted: Family<StatusLabels, Counter>,
    decisions: Family<ActionLabels, Counter>,
    sweeps: Family<OutcomeLabels, Counter>,
    swept: Family<SweptLabels, Counter>,
    auth_failures: Family<ReasonLabels, Counter>,
    refused: Family<LimitLabels, Counter>,
    webhooks: Family<OutcomeLabels, Counter>,
    block_hits: Family<KindLabels, Counter>,
    auto_blocks: Counter,
    mails: Family<OutcomeLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("replyguard");
    let calls = Family::<CallLabels, Counter>::default();
    let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
        // 0.1 ms to ~3 s.
        Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.0001, 2.0, 16,
        ))
    });
    let submitted = Family::<StatusLabels, Counter>::default();
    let decisions = Family::<ActionLabels, Counter>::default();
    let sweeps = Family::<OutcomeLabels, Counter>::default();
    let swept = Family::<SweptLabels, Counter>::default();
    let auth_failures = Family::<ReasonLabels, Counter>::default();
    let refused = Family::<LimitLabels, Counter>::default();
    let webhooks = Family::<OutcomeLabels, Counter>::default();
    let block_hits = Family::<KindLabels, Counter>::default();
    let auto_blocks = Counter::default();
    let mails = Family::<OutcomeLabels, Counter>::default();
    registry.register("grpc_calls", "gRPC calls by method and code", calls.clone());
    registry.register(
        "grpc_call_seconds",
        "Time to the response head, by method",
        latency.clone(),
    );
    registry.register(
        "replies",
        "Replies stored, by the status they were given",
        submitted.clone(),
    );
    registry.register(
        "decisions",
        "Moderators' decisions, by action",
        decisions.clone(),
    );
    registry.register(
        "retention_sweeps",
        "Retention sweeps, by outcome (done, failed)",
        sweeps.clone(),
    );
    registry.register(
        "retention_swept",
        "What retention sweeps removed: client details, expired pending replies, deleted spam, \
         form nonces, ended blocks",
        swept.clone(),
    );
    registry.register(
        "auth_failures",
        "Calls refused for their credential, by reason (missing, malformed, unknown, \
         wrong_service, throttled)",
        auth_failures.clone(),
    );
    registry.register(
        "limit_refusals",
        "Calls refused by a limit, by limit (in_flight, rate, auth_rate, watches, \
         message_size, deadline)",
        refused.clone(),
    );
    registry.register(
        "webhook_attempts",
        "Webhook delivery attempts, by outcome (delivered, retry, failed, gone)",
        webhooks.clone(),
    );
    // By kind only: a label per entry would put authors' hashes and addresses into the metrics;
    // `replyctl blocks` shows each entry's count.
    registry.register(
        "block_hits",
        "Replies a blocklist entry caught, by the entry's kind (author, ip, email-domain, \
         website-domain)",
        block_hits.clone(),
    );
    registry.register(
        "auto_blocks",
        "Addresses blocked automatically after the site's auto-block-spam spam replies",
        auto_blocks.clone(),
    );
    registry.register(
        "mail_attempts",
        "Attempts at sending a mail over SMTP, by outcome (sent, retry, failed)",
        mails.clone(),
    );
    Metrics {
        block_hits,
        auto_blocks,
        registry,
        webhooks,
        mails,
        calls,
        latency,
        submitted,
        decisions,
        sweeps,
        swept,
        auth_failures,
        refused,
    }
});

/// The methods this server serves, by path (`/replyguard.v1.Moderation/Block`), read once from
/// the services' own descriptors, so that a new RPC is counted under its name without a list
/// here to keep up.
static METHODS: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut methods = HashMap::new();
    for encoded in [
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let files = match FileDescriptorSet::decode(encoded) {
            Ok(set) => set.file,
            Err(err) => {
                tracing::error!(error = %err, "a compiled-in descriptor set does not decode");
                continue;
            }
        };
        for file in files {
            for service in &file.service {
                let prefix = format!("/{}.{}/", file.package(), service.name());
                for method in &service.method {
                    let name = method.name().to_owned();
                    methods.insert(format!("{prefix}{name}"), name);
                }
            }
        }
    }
    methods
});

/// The gRPC method of a path, or `other` for a path this server does not serve.
fn method_name(path: &str) -> &'static str {
    METHODS.get(path).map_or("other", String::as_str)
}

/// The name of a gRPC status code as sent in `grpc-status`.
fn code_name(code: &str) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    code.parse::<usize>()
        .ok()
        .and_then(|n| NAMES.get(n).copied())
        .unwrap_or("UNKNOWN")
}

/// Records one call. `grpc_status` is the `grpc-status` response header,
/// present when the call failed before any message (an OK unary call sends
/// its status in the trailers).
pub fn record_call(path: &str, grpc_status: Option<&str>, elapsed: Duration) {
    let method = method_name(path);
    let code = grpc_status.map_or("OK", code_name);
    METRICS
        .calls
        .get_or_create(&CallLabels { method, code })
        .inc();
    METRICS
        .latency
        .get_or_create(&MethodLabels { method })
        .observe(elapsed.as_secs_f64());
}

/// Records a call refused for its credential.
pub fn record_auth_failure(reason: &'static str) {
    METRICS
        .auth_failures
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

/// Records a call refused by one of the server's limits.
pub fn record_refused(limit: &'static str) {
    METRICS.refused.get_or_create(&LimitLabels { limit }).inc();
}

/// Records a stored reply.
pub fn record_reply(status: &'static str) {
    METRICS
        .submitted
        .get_or_create(&StatusLabels { status })
        .inc();
}

/// Records a reply caught by a blocklist entry of `kind`.
pub fn record_block_hit(kind: &'static str) {
    METRICS.block_hits.get_or_create(&KindLabels { kind }).inc();
}

/// Records an address blocked automatically (`auto-block-spam`).
pub fn record_auto_block() {
    METRICS.auto_blocks.inc();
}

/// Records one webhook delivery attempt.
pub fn record_webhook_attempt(outcome: &'static str) {
    METRICS
        .webhooks
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

/// Records one attempt at sending a mail.
pub fn record_mail_attempt(outcome: &'static str) {
    METRICS
        .mails
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

/// Records an applied decision.
pub fn record_decision(action: &'static str) {
    METRICS
        .decisions
        .get_or_create(&ActionLabels { action })
        .inc();
}

/// Records a finished retention sweep and what it removed.
pub fn record_sweep(report: &SweepReport) {
    METRICS
        .sweeps
        .get_or_create(&OutcomeLabels { outcome: "done" })
        .inc();
    for (what, count) in [
        ("client_details", report.client_details_dropped),
        ("expired_pending", report.expired),
        ("spam_deleted", report.spam_deleted),
        ("form_nonces", report.form_nonces_dropped),
        ("blocks_ended", report.blocks_ended),
        ("mails", report.mails_dropped),
    ] {
        METRICS
            .swept
            .get_or_create(&SweptLabels { what })
            .inc_by(count);
    }
}

/// Records a retention sweep that failed; the next one retries.
pub fn record_failed_sweep() {
    METRICS
        .sweeps
        .get_or_create(&OutcomeLabels { outcome: "failed" })
        .inc();
}

/// Every metric in the OpenMetrics text format.
pub fn render() -> String {
    let mut out = String::new();
    if let Err(err) = encode(&mut out, &METRICS.registry) {
        tracing::error!(error = %err, "cannot encode metrics");
    }
    out
}

/// How the metrics endpoint bounds what its callers can hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once; more wait in the listen queue until one closes.
    pub connections: usize,
    /// How long a connection may take to send a whole request, counted from its opening or from
    /// the last byte of the previous response, and how long a response may stall: a connection
    /// that sends nothing, dribbles its headers or stops reading is closed after it.
    pub idle: Duration,
    /// How long one request may take to answer.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 64,
            idle: Duration::from_secs(10),
            request: Duration::from_secs(10),
        }
    }
}

/// The metrics endpoint, serving until [`MetricsServer::shutdown`].
pub struct MetricsServer {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address it is bound to (the real port when asked for 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and returns once the open ones are closed: idle ones at
    /// once, the others after their response or within [`Limits::idle`].
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        if let Err(join) = self.task.await
            && join.is_panic()
        {
            std::panic::resume_unwind(join.into_panic());
        }
    }
}

/// Serves `GET /metrics` on `addr` with the default [`Limits`]; any other path is 404.
pub async fn serve(addr: SocketAddr) -> std::io::Result<MetricsServer> {
    serve_with(addr, Limits::default()).await
}

/// Serves `GET /metrics` on `addr` within `limits`.
pub async fn serve_with(addr: SocketAddr, limits: Limits) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let listener = Bounded {
        listener,
        permits: Arc::new(Semaphore::new(limits.connections.max(1))),
        idle: limits.idle,
    };
    let app = Router::new().route("/metrics", get(metrics)).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: BoxError| async {
                StatusCode::SERVICE_UNAVAILABLE
            }))
            .layer(TimeoutLayer::new(limits.request)),
    );
    let (shutdown, on_shutdown) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = on_shutdown.await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "metrics endpoint stopped");
        }
    });
    tracing::info!(addr = %bound, "serving metrics");
    Ok(MetricsServer {
        addr: bound,
        shutdown,
        task,
    })
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(),
    )
}

/// A listener that accepts a connection only while it holds one of its permits, and hands it
/// out wrapped in [`Deadline`].
struct Bounded {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    idle: Duration,
}

impl Listener for Bounded {
    type Io = Deadline;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Deadline, SocketAddr) {
        // The semaphore is never closed, but should it be, connections are still served.
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok();
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => return (Deadline::new(stream, permit, self.idle), addr),
                Err(err) if is_connection_error(&err) => {}
                Err(err) => {
                    // Such as EMFILE: accepting again at once would spin while nothing is
                    // freed.
                    tracing::warn!(error = %err, "metrics listener cannot accept; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// A connection that fails its reads and writes once `idle` has passed since it opened or since
/// it last wrote, and gives its permit back when dropped. hyper as `axum::serve` runs it has no
/// timer, so no header read timeout of its own.
struct Deadline {
    stream: TcpStream,
    _permit: Option<OwnedSemaphorePermit>,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(stream: TcpStream, permit: Option<OwnedSemaphorePermit>, idle: Duration) -> Deadline {
        Deadline {
            stream,
            _permit: permit,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(
        ErrorKind::TimedOut,
        "no whole request, or no progress, in time",
    )
}

impl AsyncRead for Deadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    let next = Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(Ok(written))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_and_codes_fold_into_fixed_labels() {
        assert_eq!(
            method_name("/replyguard.v1.Comments/SubmitComment"),
            "SubmitComment"
        );
        assert_eq!(
            method_name("/evil/path-with-a-new-label-each-time"),
            "other"
        );
        assert_eq!(method_name("/replyguard.v1.Comments/"), "other");
        assert_eq!(method_name("/grpc.health.v1.Health/Check"), "Check");
    }

    #[test]
    fn every_rpc_of_every_service_is_counted_under_its_own_name() {
        let moderation = [
            "ListQueue",
            "GetComment",
            "Moderate",
            "WatchQueue",
            "GetPolicy",
            "UpdatePolicy",
            "TryPolicy",
            "EraseAuthor",
            "ListAudit",
            "RevealEmail",
            "Block",
            "ListBlocks",
            "Unblock",
            "ExportAuthor",
            "CloseArticle",
            "ReopenArticle",
            "ListClosedArticles",
            "ListReports",
        ];
        for name in moderation {
            let path = format!("/replyguard.v1.Moderation/{name}");
            assert_eq!(method_name(&path), name);
        }
        let comments = [
            "SubmitComment",
            "ListComments",
            "CountComments",
            "PrepareForm",
            "ReportComment",
            "EditComment",
            "ConfirmEmail",
            "Unsubscribe",
        ];
        for name in comments {
            let path = format!("/replyguard.v1.Comments/{name}");
            assert_eq!(method_name(&path), name);
        }
        let integrations = [
            "AddWebhook",
            "ListWebhooks",
            "RemoveWebhook",
            "ListDeliveries",
            "RedeliverWebhook",
            "AddNotice",
            "ListNotices",
            "RemoveNotice",
            "SetMailPages",
        ];
        for name in integrations {
            let path = format!("/replyguard.v1.Integrations/{name}");
            assert_eq!(method_name(&path), name);
        }
        assert_eq!(
            METHODS.len(),
            moderation.len() + comments.len() + integrations.len() + 2,
            "and Health's two"
        );
        assert_eq!(code_name("3"), "INVALID_ARGUMENT");
        assert_eq!(code_name("99"), "UNKNOWN");
        assert_eq!(code_name("x"), "UNKNOWN");
    }

    #[test]
    fn sweeps_show_by_outcome_with_what_they_removed() {
        record_sweep(&SweepReport {
            spam_deleted: 3,
            ..SweepReport::default()
        });
        record_failed_sweep();
        let text = render();
        for series in [
            r#"replyguard_retention_sweeps_total{outcome="done"}"#,
            r#"replyguard_retention_sweeps_total{outcome="failed"}"#,
            r#"replyguard_retention_swept_total{what="spam_deleted"}"#,
            r#"replyguard_retention_swept_total{what="client_details"}"#,
            r#"replyguard_retention_swept_total{what="blocks_ended"}"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }

    #[test]
    fn block_hits_show_by_kind_and_never_by_value() {
        record_block_hit("ip");
        let text = render();
        assert!(
            text.contains(r#"replyguard_block_hits_total{kind="ip"} "#),
            "{text}"
        );
    }

    #[test]
    fn automatic_blocks_are_counted() {
        record_auto_block();
        let text = render();
        assert!(text.contains("replyguard_auto_blocks_total "), "{text}");
    }

    #[test]
    fn recorded_calls_show_in_the_rendered_text() {
        record_call(
            "/replyguard.v1.Comments/ListComments",
            Some("16"),
            Duration::from_millis(2),
        );
        let text = render();
        assert!(text.contains("replyguard_grpc_calls_total"), "{text}");
        assert!(text.contains(r#"code="UNAUTHENTICATED""#), "{text}");
    }
}
