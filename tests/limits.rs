//! What one caller may cost the server, tried as a caller would: oversized messages, a token's
//! rate, made-up tokens, calls in flight, deadlines, and watches that must end on revocation,
//! on a lost scope and on shutdown.

mod common;

use std::{
    process::Child,
    time::{Duration, Instant},
};

use common::{Backend, Harness, backend_tests, process, watcher::Watcher};
use prost::Message;
use replyguard::{
    api::guard::{COMMENTS_MAX_MESSAGE_BYTES, MODERATION_MAX_MESSAGE_BYTES},
    metrics, proto,
    spam::{MAX_LIST_ENTRIES, MAX_TERM_CHARS},
    store,
};
use tonic::{Code, Request, Status, codegen::http::uri::PathAndQuery, transport::Channel};
use tonic_types::StatusExt;

/// How long after its cause a watch may take to end.
const WATCH_ENDS_WITHIN: Duration = Duration::from_secs(1);

/// A `CountComments` call whose request never finishes arriving: it stays in flight until the
/// server ends it. `timeout` is sent as `grpc-timeout` without the client enforcing it.
async fn hanging_call(
    endpoint: String,
    token: String,
    timeout: Option<&'static str>,
) -> Result<proto::CountCommentsResponse, Status> {
    let channel = Channel::from_shared(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = Request::new(futures_util::stream::pending::<proto::CountCommentsRequest>());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    if let Some(timeout) = timeout {
        request
            .metadata_mut()
            .insert("grpc-timeout", timeout.parse().expect("ascii"));
    }
    grpc.client_streaming(
        request,
        PathAndQuery::from_static("/replyguard.v1.Comments/CountComments"),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A hanging call that holds the only place of a server whose `max_calls_in_flight` is 1,
/// once a second call has been refused for it. A hanging call that lost the place to the
/// probing call ends at once, and is made again.
async fn hold_the_only_place(
    h: &Harness,
    token: &str,
) -> (
    tokio::task::JoinHandle<Result<proto::CountCommentsResponse, Status>>,
    Status,
) {
    let mut probe = h.comments(token).await;
    let deadline = Instant::now() + ADMITTED_WITHIN;
    loop {
        assert!(Instant::now() < deadline, "no call held the only place");
        let hanging = tokio::spawn(hanging_call(h.endpoint(), token.to_owned(), None));
        while !hanging.is_finished() {
            match probe
                .count_comments(proto::CountCommentsRequest::default())
                .await
            {
                Ok(_) => common::poll_pause().await,
                Err(refused) if !hanging.is_finished() => return (hanging, refused),
                Err(_) => {}
            }
        }
    }
}

/// How long a place a call gave back may take to be free again.
const ADMITTED_WITHIN: Duration = Duration::from_secs(10);

/// Calls `call` until it is answered, while it is refused with `RESOURCE_EXHAUSTED`, for at
/// most [`ADMITTED_WITHIN`].
async fn until_admitted<T>(what: &str, mut call: impl AsyncFnMut() -> Result<T, Status>) -> T {
    let deadline = Instant::now() + ADMITTED_WITHIN;
    loop {
        match call().await {
            Ok(answer) => return answer,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{what}: {status:?}");
                assert!(Instant::now() < deadline, "{what}: still refused");
                common::poll_pause().await;
            }
        }
    }
}

fn retry_after(status: &Status) -> Duration {
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .unwrap_or_else(|| panic!("RetryInfo in {status:?}"))
}

async fn a_request_larger_than_its_service_takes_is_resource_exhausted(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let huge = common::reply("story", &"word ".repeat(COMMENTS_MAX_MESSAGE_BYTES / 4));
    let status = comments
        .submit_comment(huge)
        .await
        .expect_err("larger than the service takes");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains(&COMMENTS_MAX_MESSAGE_BYTES.to_string()),
        "{status:?}"
    );
    let mut moderation = h.moderation(&site.mod_token).await;
    let status = moderation
        .moderate(proto::ModerateRequest {
            ids: vec!["x".repeat(1024); MODERATION_MAX_MESSAGE_BYTES / 1024 + 1],
            ..Default::default()
        })
        .await
        .expect_err("larger than the service takes");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Nothing was stored, and the connection still serves.
    let listed = comments
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_count, 0);
}

#[test]
fn the_largest_valid_requests_fit_their_services_limits() {
    let longest = |chars: usize| "字".repeat(chars);
    let submit = proto::SubmitCommentRequest {
        article: "a".repeat(200),
        parent_id: "p".repeat(36),
        author: Some(proto::Author {
            name: longest(100),
            email: "e".repeat(254),
            website: "w".repeat(2_000),
        }),
        body: "é".repeat(65_525 / 2),
        client: Some(proto::ClientInfo {
            ip: "i".repeat(45),
            user_agent: "u".repeat(512),
            referrer: "r".repeat(2_000),
        }),
        form: Some(proto::FormInfo {
            token: "t".repeat(1_000),
            honeypot: "h".repeat(1_000),
        }),
        idempotency_key: "k".repeat(128),
        notify_replies: true,
        article_published_at: Some(prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: i32::MAX,
        }),
        reader_id: "字".repeat(200),
    };
    let count = proto::CountCommentsRequest {
        articles: vec!["a".repeat(200); 500],
    };
    let edit = proto::EditCommentRequest {
        comment_id: "c".repeat(36),
        author_token: "t".repeat(82),
        body: "é".repeat(65_525 / 2),
    };
    for (name, size) in [
        ("SubmitComment", submit.encoded_len()),
        ("CountComments", count.encoded_len()),
        ("EditComment", edit.encoded_len()),
    ] {
        assert!(size < COMMENTS_MAX_MESSAGE_BYTES, "{name}: {size} bytes");
    }
    let list = vec![longest(MAX_TERM_CHARS); MAX_LIST_ENTRIES];
    let policy = proto::UpdatePolicyRequest {
        policy: Some(proto::Policy {
            blocked_terms: list.clone(),
            moderation_terms: list.clone(),
            blocked_ips: list.clone(),
            blocked_email_domains: list.clone(),
            blocked_websites: list.clone(),
            allowed_scripts: list,
            ..Default::default()
        }),
        ..Default::default()
    };
    let size = policy.encoded_len();
    assert!(
        size < MODERATION_MAX_MESSAGE_BYTES,
        "UpdatePolicy: {size} bytes"
    );
}

async fn a_token_past_its_rate_is_told_when_to_retry(backend: Backend) {
    let h = Harness::configured(backend, |settings| settings.limits.moderator_rate = 1).await;
    let site = h.site("news.example.com").await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let mut refused = None;
    // A rate of one a second allows a burst of two.
    for _ in 0..3 {
        if let Err(status) = moderation
            .list_queue(proto::ListQueueRequest::default())
            .await
        {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("the third call at once is over the rate");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let wait = retry_after(&status);
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );

    // Another token is not held back by this one's rate.
    let other = h
        .moderator_token(&[site.id], &replyguard::domain::Scope::DEFAULT)
        .await;
    h.moderation(&other)
        .await
        .list_queue(proto::ListQueueRequest::default())
        .await
        .expect("another token's call");
}

async fn made_up_tokens_are_refused_and_cannot_starve_a_real_caller(backend: Backend) {
    let h = Harness::configured(backend, |settings| settings.limits.auth_failure_rate = 5).await;
    let site = h.site("news.example.com").await;
    let mut real = h.comments(&site.site_key).await;
    real.count_comments(proto::CountCommentsRequest {
        articles: vec!["story".into()],
    })
    .await
    .expect("the real caller, before the flood");

    let malformed = h
        .comments("not-a-token")
        .await
        .count_comments(proto::CountCommentsRequest::default())
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), Code::Unauthenticated);
    assert!(malformed.message().contains("malformed"), "{malformed:?}");

    let mut throttled = None;
    for _ in 0..100 {
        let made_up = replyguard::privacy::generate_token("rg_site_");
        let status = h
            .comments(&made_up)
            .await
            .count_comments(proto::CountCommentsRequest::default())
            .await
            .expect_err("a made-up token");
        match status.code() {
            Code::Unauthenticated => {}
            Code::ResourceExhausted => {
                throttled = Some(status);
                break;
            }
            other => panic!("{other:?}: {status:?}"),
        }
    }
    let throttled = throttled.expect("an address sending unknown tokens is barred");
    assert!(retry_after(&throttled) > Duration::ZERO);
    assert!(
        metrics::render().contains(r#"replyguard_auth_failures_total{reason="throttled"}"#),
        "{}",
        metrics::render()
    );

    // The real caller, from the same address, is served all along.
    for _ in 0..10 {
        real.count_comments(proto::CountCommentsRequest {
            articles: vec!["story".into()],
        })
        .await
        .expect("the real caller, during the flood");
    }
}

async fn a_call_beyond_the_servers_calls_in_flight_is_refused_at_once(backend: Backend) {
    let h = Harness::configured(backend, |settings| settings.limits.max_calls_in_flight = 1).await;
    let site = h.site("news.example.com").await;
    let (hanging, refused) = hold_the_only_place(&h, &site.site_key).await;
    let mut comments = h.comments(&site.site_key).await;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(retry_after(&refused) > Duration::ZERO);
    hanging.abort();
    let _ = hanging.await;
    // The place is free again once the call is gone.
    until_admitted("a call once the hanging one is gone", async || {
        comments
            .count_comments(proto::CountCommentsRequest::default())
            .await
    })
    .await;
}

async fn no_call_outlives_its_deadline(backend: Backend) {
    let h = Harness::configured(backend, |settings| {
        settings.limits.request_timeout_seconds = 1;
    })
    .await;
    let site = h.site("news.example.com").await;
    // (A shorter `grpc-timeout` would be enforced by the tonic client itself first; the
    // guard's unit tests show the shorter one wins.)
    let status = hanging_call(h.endpoint(), site.site_key.clone(), None)
        .await
        .expect_err("the server's deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let status = hanging_call(h.endpoint(), site.site_key.clone(), Some("1H"))
        .await
        .expect_err("the server's deadline wins over a longer one");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("1000 ms"), "{status:?}");
}

/// The next message of a watch that must end, within [`WATCH_ENDS_WITHIN`].
async fn watch_end(
    watch: &mut tonic::Streaming<proto::WatchQueueResponse>,
    since: Instant,
) -> Status {
    let ended = tokio::time::timeout_at((since + WATCH_ENDS_WITHIN).into(), watch.message())
        .await
        .expect("the watch ends in time");
    ended.expect_err("the watch ends with an error")
}

async fn a_watch_ends_when_its_token_is_revoked(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut watch = h.watch(&site.mod_token).await;
    let prefix: String = site.mod_token.chars().take(15).collect();
    let revoked = store::revoke_tokens_everywhere(h.store.as_ref(), &prefix).await;
    assert_eq!(revoked.expect("revoke"), 1);
    let status = watch_end(&mut watch, Instant::now()).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

async fn a_watch_ends_when_its_token_loses_the_moderate_scope(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut watch = h.watch(&site.mod_token).await;
    h.db.execute("DELETE FROM token_scopes WHERE scope = 'moderate'")
        .await;
    let status = watch_end(&mut watch, Instant::now()).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("moderate"), "{status:?}");
}

async fn a_token_holds_a_bounded_number_of_watches(backend: Backend) {
    let h = Harness::configured(backend, |settings| {
        settings.limits.max_watches_per_token = 1
    })
    .await;
    let site = h.site("news.example.com").await;
    let first = h.watch(&site.mod_token).await;
    let status = h
        .moderation(&site.mod_token)
        .await
        .watch_queue(proto::WatchQueueRequest::default())
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    drop(first);
    // The ended watch gives its place back once the server sees it go.
    let mut moderation = h.moderation(&site.mod_token).await;
    until_admitted("a watch once the first has ended", async || {
        moderation
            .watch_queue(proto::WatchQueueRequest::default())
            .await
    })
    .await;
}

async fn shutdown_ends_open_watches_with_unavailable(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut watch = h.watch(&site.mod_token).await;
    let server = h.server.take().expect("running");
    let stopped = tokio::spawn(server.shutdown());
    let status = watch_end(&mut watch, Instant::now()).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    stopped.await.expect("joins").expect("clean shutdown");
}

async fn shutdown_ends_within_its_grace_period_when_a_caller_hangs(backend: Backend) {
    let mut h = Harness::configured(backend, |settings| {
        settings.limits.request_timeout_seconds = 3_600;
        settings.limits.shutdown_grace_seconds = 1;
        settings.limits.max_calls_in_flight = 1;
    })
    .await;
    let site = h.site("news.example.com").await;
    let _watch = h.watch(&site.mod_token).await;
    let (hanging, _) = hold_the_only_place(&h, &site.site_key).await;
    let server = h.server.take().expect("running");
    tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("the server stops after its grace period, not when the caller lets it")
        .expect("shutdown");
    assert!(!hanging.is_finished(), "the caller still hangs");
    hanging.abort();
}

backend_tests!(
    a_request_larger_than_its_service_takes_is_resource_exhausted,
    a_token_past_its_rate_is_told_when_to_retry,
    made_up_tokens_are_refused_and_cannot_starve_a_real_caller,
    a_call_beyond_the_servers_calls_in_flight_is_refused_at_once,
    no_call_outlives_its_deadline,
    a_watch_ends_when_its_token_is_revoked,
    a_watch_ends_when_its_token_loses_the_moderate_scope,
    a_token_holds_a_bounded_number_of_watches,
    shutdown_ends_open_watches_with_unavailable,
    shutdown_ends_within_its_grace_period_when_a_caller_hangs,
);

/// `replyguard serve` as the operator runs it, on a SQLite file of its own; its address is
/// read from its log.
struct Serve {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(grace_seconds: u32) -> (Serve, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("sqlite://{}", dir.path().join("replyguard.db").display());
        let (_, mod_token) = process::add_site(&database, "news.example.com");
        let grace = grace_seconds.to_string();
        let (child, endpoint) =
            process::serve(&database, &["--shutdown-grace-seconds", &grace], &[]);
        (
            Serve {
                child,
                endpoint,
                _dir: dir,
            },
            mod_token,
        )
    }

    /// Sends SIGTERM and waits, at most `bound`, for the process to exit.
    fn terminate(self, bound: Duration) -> std::process::ExitStatus {
        process::terminate(self.child, bound)
    }
}

#[test]
fn sigterm_stops_the_server_with_a_watch_open() {
    // A grace period longer than the bound: the process must end because the watch ended,
    // not because the grace period ran out.
    let (serve, mod_token) = Serve::start(60);
    let _watcher = Watcher::start(&serve.endpoint, &mod_token);
    let status = serve.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}
