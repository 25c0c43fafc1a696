//! Prometheus metrics: calls by method and code with their latency, replies
//! by the status they were given, moderators' decisions, and the retention
//! sweeps with what they removed.
//!
//! Served in the OpenMetrics text format on `REPLYGUARD_METRICS_LISTEN`.
//! Labels come from fixed sets only (known RPC names, status words), never
//! from what a request carries, so a caller cannot grow the series count.

use std::{collections::HashMap, net::SocketAddr, sync::LazyLock, time::Duration};

use http_body_util::Full;
use hyper::{Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use prost::Message;
use prost_types::FileDescriptorSet;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::moderation::SweepReport;

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
         form nonces",
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
    Metrics {
        registry,
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
        assert_eq!(method_name("/replyguard.v1.Comments/"), "other");
        assert_eq!(method_name("/grpc.health.v1.Health/Check"), "Check");
    }

    #[test]
    fn every_rpc_of_both_services_is_counted_under_its_own_name() {
        let moderation = [
            "ListQueue",
            "GetComment",
            "Moderate",
            "WatchQueue",
            "GetPolicy",
            "UpdatePolicy",
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
        ];
        for name in moderation {
            let path = format!("/replyguard.v1.Moderation/{name}");
            assert_eq!(method_name(&path), name);
        }
        for name in [
            "SubmitComment",
            "ListComments",
            "CountComments",
            "PrepareForm",
        ] {
            let path = format!("/replyguard.v1.Comments/{name}");
            assert_eq!(method_name(&path), name);
        }
        assert_eq!(METHODS.len(), moderation.len() + 4 + 2, "and Health's two");
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
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
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
