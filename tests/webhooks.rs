//! Webhooks end to end: a real HTTP receiver on port 0, the real server and its worker, on both
//! backends. Each delivery is checked as a receiver would check it: the Standard Webhooks
//! signature computed here, from the specification, with the secret `AddWebhook` gave.

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use common::{Backend, Harness, TestSite, backend_tests, bearer, reply_by};
use hmac::{Hmac, KeyInit, Mac};
use replyguard::{
    domain::Scope,
    proto::{self, integrations_client::IntegrationsClient},
    spam::{Mode, Policy},
};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;
use tonic::{Code, transport::Channel};

type Integrations =
    IntegrationsClient<tonic::service::interceptor::InterceptedService<Channel, common::Bearer>>;

/// One request the receiver was sent.
#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Verifies the signature as the Standard Webhooks specification says.
    fn verify(&self, secret: &str) {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("base64");
        let signed = format!(
            "{}.{}.{}",
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            String::from_utf8_lossy(&self.body)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
        mac.update(signed.as_bytes());
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        let signatures: Vec<&str> = self.header("webhook-signature").split(' ').collect();
        assert!(
            signatures.contains(&expected.as_str()),
            "{signatures:?} does not hold {expected}"
        );
    }
}

/// An HTTP receiver on port 0 that answers each request with the status it is set to.
struct Receiver {
    url: String,
    answer: Arc<AtomicU16>,
    heard: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn start() -> Receiver {
        let answer = Arc::new(AtomicU16::new(200));
        let (tell, heard) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State((answer, tell)): State<(
                        Arc<AtomicU16>,
                        mpsc::UnboundedSender<Received>,
                    )>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let _ = tell.send(Received { headers, body });
                        StatusCode::from_u16(answer.load(Ordering::SeqCst)).expect("a status")
                    },
                ),
            )
            .with_state((Arc::clone(&answer), tell));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, answer, heard }
    }

    fn answer(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    /// The next request, within 20 s.
    async fn next(&mut self, what: &str) -> Received {
        tokio::time::timeout(Duration::from_secs(20), self.heard.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 20 s"))
            .expect("the receiver runs")
    }
}

/// A server that may send to loopback over plain HTTP, as a test's receiver needs.
async fn harness(backend: Backend) -> Harness {
    Harness::configured(backend, |settings| {
        settings.webhook_allow_private = true;
        settings.webhook_allow_http = true;
    })
    .await
}

async fn integrations(h: &Harness, token: &str) -> Integrations {
    let channel = Channel::from_shared(h.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    IntegrationsClient::with_interceptor(channel, bearer(Some(token)))
}

/// An `integrations` token of the site, and the webhook it added for `events`; its id and
/// secret.
async fn add_webhook(
    h: &Harness,
    site: &TestSite,
    url: &str,
    events: &[&str],
) -> (Integrations, String, String) {
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    let mut api = integrations(h, &token).await;
    let added = api
        .add_webhook(proto::AddWebhookRequest {
            url: url.to_owned(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            note: "the newsroom's alerts".to_owned(),
            ..Default::default()
        })
        .await
        .expect("add the webhook")
        .into_inner();
    let id = added.webhook.expect("the webhook").id;
    (api, id, added.secret)
}

const EMAIL: &str = "jane.private@example.org";

async fn every_event_arrives_signed_and_without_personal_data(backend: Backend) {
    let h = harness(backend).await;
    let site = h
        .site_with(
            "news.example.com",
            Policy {
                mode: Mode::ModerateAll,
                flood_interval_seconds: 0,
                ..Policy::default()
            },
        )
        .await;
    let mut receiver = Receiver::start().await;
    let all = [
        "comment.held",
        "comment.spam",
        "comment.approved",
        "comment.rejected",
        "comment.erased",
        "article.closed",
        "article.reopened",
    ];
    let (_, _, secret) = add_webhook(&h, &site, &receiver.url, &all).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut moderation = h.moderation(&site.mod_token).await;

    let submit = async |comments: &mut common::Comments, text: &str| {
        let request = reply_by("story", text, "Jane Reader", EMAIL);
        let ip = request.client.as_ref().expect("client").ip.clone();
        let id = comments
            .submit_comment(request)
            .await
            .expect("submit")
            .into_inner()
            .comment
            .expect("comment")
            .id;
        (id, ip)
    };
    let expect = async |receiver: &mut Receiver, event: &str, comment: Option<&str>| {
        let received = receiver.next(event).await;
        received.verify(&secret);
        assert!(received.header("webhook-id").starts_with("msg_"));
        let payload = received.json();
        assert_eq!(payload["type"], event, "{payload}");
        assert_eq!(payload["data"]["site"], "news.example.com");
        assert_eq!(payload["data"]["article"], "story");
        if let Some(id) = comment {
            assert_eq!(payload["data"]["comment_id"], id, "{payload}");
        }
        String::from_utf8(received.body.to_vec()).expect("UTF-8")
    };

    let (first, ip) = submit(&mut comments, "Held until a moderator reads it.").await;
    let mut bodies = vec![expect(&mut receiver, "comment.held", Some(&first)).await];
    let held = serde_json::from_str::<Value>(&bodies[0]).expect("json");
    assert_eq!(held["data"]["comment"]["status"], "pending");
    assert_eq!(held["data"]["comment"]["author_name"], "Jane Reader");
    assert_eq!(
        held["data"]["comment"]["text"],
        "Held until a moderator reads it."
    );
    common::approve(&mut moderation, std::slice::from_ref(&first)).await;
    bodies.push(expect(&mut receiver, "comment.approved", Some(&first)).await);
    common::decide(
        &mut moderation,
        proto::ModerationAction::Reject,
        std::slice::from_ref(&first),
    )
    .await;
    bodies.push(expect(&mut receiver, "comment.rejected", Some(&first)).await);
    let (second, _) = submit(
        &mut comments,
        "Another reply, to be called spam: write to jane.private@example.org.",
    )
    .await;
    bodies.push(expect(&mut receiver, "comment.held", Some(&second)).await);
    common::decide(
        &mut moderation,
        proto::ModerationAction::MarkSpam,
        std::slice::from_ref(&second),
    )
    .await;
    bodies.push(expect(&mut receiver, "comment.spam", Some(&second)).await);

    let eraser = h.moderator_token(&[site.id], &[Scope::Erase]).await;
    h.moderation(&eraser)
        .await
        .erase_author(proto::EraseAuthorRequest {
            email: EMAIL.to_owned(),
            ..Default::default()
        })
        .await
        .expect("erase");
    // Both of the author's replies, in either order.
    let mut erased = Vec::new();
    for _ in 0..2 {
        let body = expect(&mut receiver, "comment.erased", None).await;
        let payload: Value = serde_json::from_str(&body).expect("json");
        erased.push(
            payload["data"]["comment_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        bodies.push(body);
    }
    erased.sort();
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(erased, both);

    for (closed, event) in [(true, "article.closed"), (false, "article.reopened")] {
        let request = proto::CloseArticleRequest {
            article: "story".to_owned(),
            ..Default::default()
        };
        if closed {
            moderation.close_article(request).await.expect("close");
        } else {
            moderation
                .reopen_article(proto::ReopenArticleRequest {
                    article: "story".to_owned(),
                    ..Default::default()
                })
                .await
                .expect("reopen");
        }
        bodies.push(expect(&mut receiver, event, None).await);
    }

    for body in &bodies {
        assert!(!body.contains(EMAIL), "{body}");
        assert!(!body.contains("example.org"), "{body}");
        assert!(!body.contains(&ip), "{body}");
        assert!(!body.contains("author_hash"), "{body}");
    }
}

async fn a_receiver_that_is_down_is_sent_the_event_once_it_is_back(backend: Backend) {
    let h = harness(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut receiver = Receiver::start().await;
    receiver.answer(503);
    let (mut api, webhook, secret) = add_webhook(
        &h,
        &site,
        &receiver.url,
        &["comment.approved", "comment.held"],
    )
    .await;
    let mut comments = h.comments(&site.site_key).await;
    common::submitted(&mut comments, common::reply("story", "A plain reply.")).await;

    let refused = receiver.next("the first attempt").await;
    receiver.answer(200);
    let retried = receiver.next("the retry").await;
    retried.verify(&secret);
    assert_eq!(
        refused.header("webhook-id"),
        retried.header("webhook-id"),
        "a retry is the same message"
    );
    // Recorded once the worker hears the answer.
    let delivered = async {
        loop {
            let listed = api
                .list_deliveries(proto::ListDeliveriesRequest {
                    webhook_id: webhook.clone(),
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner();
            let delivery = listed.deliveries.first().cloned().expect("a delivery");
            if delivery.state() == proto::DeliveryState::Delivered {
                break delivery;
            }
            common::poll_pause().await;
        }
    };
    let delivery = tokio::time::timeout(Duration::from_secs(10), delivered)
        .await
        .expect("recorded as delivered");
    assert_eq!(delivery.attempts, 2);
    assert_eq!(delivery.last_status, 200);

    // Redelivered on request, with the same id.
    api.redeliver_webhook(proto::RedeliverWebhookRequest {
        id: delivery.id.clone(),
        ..Default::default()
    })
    .await
    .expect("redeliver");
    let again = receiver.next("the redelivery").await;
    again.verify(&secret);
    assert_eq!(again.header("webhook-id"), retried.header("webhook-id"));
}

async fn an_endpoint_that_answers_gone_is_disabled(backend: Backend) {
    let h = harness(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut receiver = Receiver::start().await;
    receiver.answer(410);
    let (mut api, webhook, _) = add_webhook(
        &h,
        &site,
        &receiver.url,
        &["comment.approved", "comment.held"],
    )
    .await;
    let mut comments = h.comments(&site.site_key).await;
    common::submitted(&mut comments, common::reply("story", "The first reply.")).await;
    receiver.next("the attempt").await;
    let disabled = async {
        loop {
            let listed = api
                .list_webhooks(proto::ListWebhooksRequest::default())
                .await
                .expect("list")
                .into_inner();
            if listed
                .webhooks
                .iter()
                .any(|w| w.id == webhook && w.disabled_at.is_some())
            {
                break;
            }
            common::poll_pause().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), disabled)
        .await
        .expect("the endpoint is disabled");
    // Nothing more is queued for it.
    common::submitted(&mut comments, common::reply("story", "A second reply.")).await;
    let listed = api
        .list_deliveries(proto::ListDeliveriesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.deliveries.len(), 1, "{listed:?}");
    assert_eq!(listed.deliveries[0].state(), proto::DeliveryState::Failed);
    assert_eq!(listed.deliveries[0].last_status, 410);
}

async fn endpoints_are_refused_off_https_in_private_ranges_and_without_the_scope(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    let mut api = integrations(&h, &token).await;
    let add = |url: &str, events: &[&str]| proto::AddWebhookRequest {
        url: url.to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        ..Default::default()
    };
    for (url, says) in [
        ("http://hooks.example.com/", "https"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://10.0.0.7/hook", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://169.254.169.254/latest", "not a public address"),
        ("not a url", "is not a URL"),
    ] {
        let status = api
            .add_webhook(add(url, &["comment.held"]))
            .await
            .expect_err(url);
        assert_eq!(status.code(), Code::InvalidArgument, "{url}: {status:?}");
        assert_eq!(common::bad_fields(&status), ["url"], "{url}");
        assert!(status.message().contains(says), "{url}: {status:?}");
    }
    let status = api
        .add_webhook(add("https://hooks.example.com/", &["comment.deleted"]))
        .await
        .expect_err("an unknown event");
    assert_eq!(common::bad_fields(&status), ["events"]);
    let status = api
        .add_webhook(add("https://hooks.example.com/", &[]))
        .await
        .expect_err("no event");
    assert_eq!(common::bad_fields(&status), ["events"]);
    let status = api
        .add_webhook(proto::AddWebhookRequest {
            note: "the night desk\0".to_owned(),
            ..add("https://hooks.example.com/", &["comment.held"])
        })
        .await
        .expect_err("a NUL in the note");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(common::bad_fields(&status), ["note"]);

    // A public https endpoint is taken, and listed without its secret.
    let added = api
        .add_webhook(add("https://hooks.example.com/r", &["comment.held"]))
        .await
        .expect("a public https endpoint")
        .into_inner();
    assert!(added.secret.starts_with("whsec_"));
    let listed = format!(
        "{:?}",
        api.list_webhooks(proto::ListWebhooksRequest::default())
            .await
            .expect("list")
            .into_inner()
    );
    assert!(!listed.contains(&added.secret));

    // A token with every other scope cannot make any of the calls, checked before anything
    // else about the request.
    let others: Vec<Scope> = Scope::ALL
        .into_iter()
        .filter(|s| *s != Scope::Integrations)
        .collect();
    let mut moderator = integrations(&h, &h.moderator_token(&[site.id], &others).await).await;
    let refusals = [
        (
            "AddWebhook",
            moderator
                .add_webhook(proto::AddWebhookRequest::default())
                .await
                .err(),
        ),
        (
            "ListWebhooks",
            moderator
                .list_webhooks(proto::ListWebhooksRequest::default())
                .await
                .err(),
        ),
        (
            "RemoveWebhook",
            moderator
                .remove_webhook(proto::RemoveWebhookRequest::default())
                .await
                .err(),
        ),
        (
            "ListDeliveries",
            moderator
                .list_deliveries(proto::ListDeliveriesRequest::default())
                .await
                .err(),
        ),
        (
            "RedeliverWebhook",
            moderator
                .redeliver_webhook(proto::RedeliverWebhookRequest::default())
                .await
                .err(),
        ),
    ];
    for (call, status) in refusals {
        let status = status.unwrap_or_else(|| panic!("{call} without the scope"));
        assert_eq!(status.code(), Code::PermissionDenied, "{call}: {status:?}");
        assert!(
            status.message().contains("`integrations`"),
            "{call}: {status:?}"
        );
    }
    // Nor another site's token.
    let other = h.site("blog.example.com").await;
    let elsewhere = h.moderator_token(&[other.id], &[Scope::Integrations]).await;
    let status = integrations(&h, &elsewhere)
        .await
        .list_webhooks(proto::ListWebhooksRequest {
            site: "news.example.com".to_owned(),
        })
        .await
        .expect_err("another site");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

/// `--format slack`: a Slack incoming webhook's `{"text"}`, with the command that decides a
/// held reply, signed the same way.
async fn a_slack_endpoint_gets_one_line_with_the_command_to_decide(backend: Backend) {
    let h = harness(backend).await;
    let site = h
        .site_with(
            "news.example.com",
            Policy {
                mode: Mode::ModerateAll,
                ..Policy::default()
            },
        )
        .await;
    let mut receiver = Receiver::start().await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    let secret = integrations(&h, &token)
        .await
        .add_webhook(proto::AddWebhookRequest {
            url: receiver.url.clone(),
            events: vec!["comment.held".to_owned()],
            format: proto::WebhookFormat::Slack.into(),
            ..Default::default()
        })
        .await
        .expect("add")
        .into_inner()
        .secret;
    let mut comments = h.comments(&site.site_key).await;
    let (id, _) = common::submitted(
        &mut comments,
        reply_by(
            "story",
            "Please read this, mail me at jane@example.org",
            "Jane Reader",
            EMAIL,
        ),
    )
    .await;
    let received = receiver.next("the held reply").await;
    received.verify(&secret);
    let body = received.json();
    let text = body["text"].as_str().expect("a text");
    assert!(
        text.starts_with("comment.held on news.example.com, article story: Jane Reader wrote"),
        "{text}"
    );
    assert!(text.contains(&format!("replyctl approve {id}")), "{text}");
    assert!(
        !text.contains("jane@example.org") && !text.contains(EMAIL),
        "{text}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
}

/// `replyguard bench --receive-webhooks` receives, beside its load, every delivery the load
/// causes, and reports them with their delays.
async fn the_load_generator_receives_the_deliveries_its_submissions_cause(backend: Backend) {
    let h = harness(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    // A free port for the generator's receiver, known before the endpoint is added.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    add_webhook(
        &h,
        &site,
        &format!("http://127.0.0.1:{port}/hook"),
        &["comment.held", "comment.spam", "comment.approved"],
    )
    .await;
    let (endpoint, site_key) = (h.endpoint(), site.site_key.clone());
    // On a thread of its own: the server answers on this one meanwhile.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"))
            .args(["bench", "--endpoint", &endpoint, "--token", &site_key])
            .args([
                "--workload",
                "submit",
                "--requests",
                "40",
                "--concurrency",
                "4",
            ])
            .args(["--output", "json", "--receive-webhooks"])
            .arg(format!("127.0.0.1:{port}"))
            .output()
    })
    .await
    .expect("the thread")
    .expect("replyguard bench runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["requests"], 40, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let webhooks = &report["webhooks"];
    assert_eq!(webhooks["received"], 40, "{report}");
    let p50 = webhooks["delay_p50_ms"].as_f64().expect("a delay");
    let max = webhooks["delay_max_ms"].as_f64().expect("a delay");
    assert!(p50 > 0.0 && p50 <= max, "{report}");
}

backend_tests!(
    every_event_arrives_signed_and_without_personal_data,
    a_receiver_that_is_down_is_sent_the_event_once_it_is_back,
    an_endpoint_that_answers_gone_is_disabled,
    endpoints_are_refused_off_https_in_private_ranges_and_without_the_scope,
    a_slack_endpoint_gets_one_line_with_the_command_to_decide,
    the_load_generator_receives_the_deliveries_its_submissions_cause,
);

/// Two replicas on one PostgreSQL database, each with its worker: every event reaches the
/// receiver once.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn two_replicas_deliver_each_event_once() {
    let h = harness(Backend::Postgres).await;
    let replica = h.replica().await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut receiver = Receiver::start().await;
    add_webhook(
        &h,
        &site,
        &receiver.url,
        &["comment.approved", "comment.held"],
    )
    .await;
    let mut through_a = h.comments(&site.site_key).await;
    let mut through_b = Harness::comments_at(&replica, &site.site_key).await;
    const REPLIES: usize = 40;
    for n in 0..REPLIES {
        let comments = if n % 2 == 0 {
            &mut through_a
        } else {
            &mut through_b
        };
        common::submitted(comments, common::reply("story", &format!("Reply {n}."))).await;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..REPLIES {
        let received = receiver.next("a delivery").await;
        *seen
            .entry(received.header("webhook-id").to_owned())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), REPLIES, "each event once: {seen:?}");
    // Each recorded as delivered at its first attempt: an event two workers both sent would
    // show two.
    let mut api = integrations(
        &h,
        &h.moderator_token(&[site.id], &[Scope::Integrations]).await,
    )
    .await;
    let recorded = async {
        loop {
            let listed = api
                .list_deliveries(proto::ListDeliveriesRequest {
                    page_size: 500,
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner()
                .deliveries;
            if listed.len() == REPLIES
                && listed
                    .iter()
                    .all(|d| d.state() == proto::DeliveryState::Delivered)
            {
                break listed;
            }
            common::poll_pause().await;
        }
    };
    let listed = tokio::time::timeout(Duration::from_secs(10), recorded)
        .await
        .expect("every delivery recorded");
    assert!(listed.iter().all(|d| d.attempts == 1), "{listed:?}");
    replica.shutdown().await.expect("replica stops");
}

/// `kill -9` of the server between a change and its delivery: the event is in the database
/// with the change, and the restarted server sends it. Set up as an operator does, with
/// `replyguard token add` and `replyctl webhook add`.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_survives_a_killed_server_and_is_sent_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("replyguard.db").display());
    let (site_key, _) = common::process::add_site(&database, "news.example.com");
    let issued = std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .args([
            "token",
            "add",
            "--site",
            "news.example.com",
            "--role",
            "moderator",
        ])
        .args(["--scopes", "integrations", "--database", &database])
        .output()
        .expect("token add runs");
    assert!(issued.status.success(), "{issued:?}");
    let token = String::from_utf8(issued.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    let env = [
        ("REPLYGUARD_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("REPLYGUARD_WEBHOOK_ALLOW_HTTP", "true"),
    ];
    let (mut server, endpoint) = common::process::serve(&database, &[], &env);
    let mut receiver = Receiver::start().await;
    receiver.answer(503);
    let added = std::process::Command::new(env!("CARGO_BIN_EXE_replyctl"))
        .env("REPLYGUARD_ENDPOINT", &endpoint)
        .env("REPLYGUARD_TOKEN", &token)
        .args(["--output", "json", "webhook", "add", &receiver.url])
        .args(["--events", "comment.approved,comment.held"])
        .output()
        .expect("replyctl runs");
    assert!(added.status.success(), "{added:?}");
    let added: Value = serde_json::from_slice(&added.stdout).expect("JSON");
    let secret = added["secret"].as_str().expect("the secret").to_owned();

    let channel = Channel::from_shared(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    let mut comments = proto::comments_client::CommentsClient::with_interceptor(
        channel.clone(),
        bearer(Some(&site_key)),
    );
    let mut api = IntegrationsClient::with_interceptor(channel, bearer(Some(&token)));
    common::submitted(
        &mut comments,
        common::reply("story", "Sent just before the crash."),
    )
    .await;
    // Killed once the refused first attempt is recorded, before the retry a second later: a
    // kill during an attempt would leave the delivery leased to the dead server for three minutes.
    let refused = async {
        loop {
            let listed = api
                .list_deliveries(proto::ListDeliveriesRequest::default())
                .await
                .expect("list")
                .into_inner()
                .deliveries;
            if listed.first().is_some_and(|d| d.attempts == 1) {
                break;
            }
            common::poll_pause().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("the first attempt is recorded");
    server.kill().expect("SIGKILL");
    server.wait().expect("gone");
    // What the receiver refused before the kill is not a delivery.
    while receiver.heard.try_recv().is_ok() {}
    receiver.answer(200);

    let (mut server, _) = common::process::serve(&database, &[], &env);
    let delivered = receiver.next("the delivery after the restart").await;
    delivered.verify(&secret);
    assert_eq!(delivered.json()["data"]["article"], "story");
    server.kill().expect("SIGKILL");
    server.wait().expect("gone");
}
