//! Prometheus metrics: calls by method and code with their latency, replies
//! by the status they were given, and moderators' decisions.
//!
//! Served in the OpenMetrics text format on `REPLYGUARD_METRICS_LISTEN`.
//! Labels come from fixed sets only (known RPC names, status words), never
//! from what a request carries, so a caller cannot grow the series count.

use std::{net::SocketAddr, sync::LazyLock, time::Duration};

use http_body_util::Full;
use hyper::{Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use tokio::{net::TcpListener, task::JoinHandle};

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

struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    submitted: Family<StatusLabels, Counter>,
    decisions: Family<ActionLabels, Counter>,
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
    Metrics {
        registry,
        calls,
        latency,
        submitted,
        decisions,
    }
});

/// The gRPC method of a path, from the fixed set this server serves.
fn method_name(path: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "/replyguard.v1.Comments/SubmitComment",
        "/replyguard.v1.Comments/ListComments",
        "/replyguard.v1.Comments/CountComments",
        "/replyguard.v1.Comments/PrepareForm",
        "/replyguard.v1.Moderation/ListQueue",
        "/replyguard.v1.Moderation/GetComment",
        "/replyguard.v1.Moderation/Moderate",
        "/replyguard.v1.Moderation/WatchQueue",
        "/replyguard.v1.Moderation/GetPolicy",
        "/replyguard.v1.Moderation/UpdatePolicy",
        "/replyguard.v1.Moderation/EraseAuthor",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
    ];
    KNOWN
        .iter()
        .find(|known| **known == path)
        .and_then(|known| known.rsplit('/').next())
        .unwrap_or("other")
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

/// Records a stored reply.
pub fn record_reply(status: &'static str) {
    METRICS
        .submitted
        .get_or_create(&StatusLabels { status })
        .inc();
}

/// Records an applied decision.
pub fn record_decision(action: &'static str) {
    METRICS
        .decisions
        .get_or_create(&ActionLabels { action })
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

/// Serves `GET /metrics` (any path, in fact) on `addr` until the process ends.
pub async fn serve(addr: SocketAddr) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics listener");
                    continue;
                }
            };
            tokio::spawn(async move {
                let service = service_fn(|_request| async {
                    Response::builder()
                        .header(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )
                        .body(Full::new(Bytes::from(render())))
                });
                if let Err(err) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %err, "metrics connection");
                }
            });
        }
    });
    tracing::info!(addr = %bound, "serving metrics");
    Ok((bound, task))
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
        assert_eq!(code_name("3"), "INVALID_ARGUMENT");
        assert_eq!(code_name("99"), "UNKNOWN");
        assert_eq!(code_name("x"), "UNKNOWN");
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
