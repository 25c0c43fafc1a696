//! The worker that sends what the outbox holds: it claims the deliveries that are due (replicas
//! share them, each claimed by one at a time), sends each with a timeout, and records what came
//! of it, so that a delivery is retried on the schedule until it succeeds or a day has passed.

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::Arc,
    time::Duration,
};

use chrono::{TimeDelta, Utc};
use futures_util::{StreamExt, stream};
use tokio::{sync::watch, task::JoinHandle};
use tokio_rustls::rustls;

use super::{Targets, payload::Payload, sign};
use crate::{
    domain::{AttemptOutcome, Delivery, Webhook},
    ids::SiteId,
    metrics,
    privacy::Vault,
    store::Store,
};

/// How long after each failed attempt the next is made: from a second to eight hours, for 32
/// hours in all; after the last, the delivery has failed.
pub const RETRY_SCHEDULE: [Duration; 12] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(4 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
];

/// How often the worker looks for due deliveries when the last look found fewer than a batch.
const POLL: Duration = Duration::from_millis(250);
/// How many deliveries one look claims. Each look is two turns of the database's writer (the
/// claim and the outcomes), which submissions wait behind on SQLite: 256 a look made submit with
/// an endpoint 0.76–0.94 of submit without one (median 0.86), 64 made 0.52–0.79 (median 0.75),
/// alternated in one run on a busy machine (docs/BENCHMARKS.md).
const BATCH: u32 = 256;
/// How many requests are in flight at once.
const CONCURRENCY: usize = 16;
/// The longest one request may take, from connecting to the end of the response's head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim keeps other workers off a delivery: longer than a whole look's requests.
const LEASE: Duration = Duration::from_secs(180);

// A look's deliveries are sent `CONCURRENCY` at a time, each within `REQUEST_TIMEOUT`: all of
// them end before their claim does, so no other replica sends one while it is in flight.
const _: () = assert!(
    (BATCH as u64).div_ceil(CONCURRENCY as u64) * REQUEST_TIMEOUT.as_secs() < LEASE.as_secs()
);

/// Sends the deliveries that are due.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    vault: Vault,
    client: reqwest::Client,
}

impl Worker {
    /// A worker whose requests go only where `targets` allow.
    pub fn new(store: Arc<dyn Store>, vault: Vault, targets: Targets) -> Result<Worker, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::warn!("no trusted root certificates found: https webhooks will fail");
        }
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("webhook TLS: {err}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(targets.resolver())
            // A redirect could lead anywhere; the endpoint's URL is where it goes.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("replyguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("webhook client: {err}"))?;
        Ok(Worker {
            store,
            vault,
            client,
        })
    }

    /// Runs until `closing` turns true.
    pub fn spawn(self, mut closing: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let claimed = self.round().await;
                if claimed < BATCH as usize {
                    tokio::select! {
                        _ = closing.wait_for(|closing| *closing) => break,
                        _ = tokio::time::sleep(POLL) => {}
                    }
                } else if *closing.borrow() {
                    break;
                }
            }
        })
    }

    /// Claims and sends one batch; how many it claimed.
    pub async fn round(&self) -> usize {
        let now = Utc::now();
        let lease_until = now + TimeDelta::from_std(LEASE).unwrap_or(TimeDelta::MAX);
        let claimed = match self.store.claim_deliveries(now, lease_until, BATCH).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the webhook outbox");
                return 0;
            }
        };
        let count = claimed.len();
        // Each site's name once per batch, not once per delivery.
        let mut sites: HashMap<SiteId, Result<String, String>> = HashMap::new();
        for (delivery, _) in &claimed {
            if let Entry::Vacant(slot) = sites.entry(delivery.site) {
                let name = match self.store.site_by_id(delivery.site).await {
                    Ok(Some(site)) => Ok(site.name),
                    Ok(None) => Err("the site no longer exists".to_owned()),
                    Err(err) => Err(format!("cannot read the site: {err}")),
                };
                slot.insert(name);
            }
        }
        let sites = &sites;
        let attempts: Vec<(Delivery, AttemptOutcome)> = stream::iter(claimed)
            .map(|(delivery, endpoint)| async move {
                let site = sites.get(&delivery.site).map_or(Err("no site"), |name| {
                    name.as_deref().map_err(String::as_str)
                });
                let outcome = self.attempt(&delivery, &endpoint, site).await;
                metrics::record_webhook_attempt(match &outcome {
                    AttemptOutcome::Delivered { .. } => "delivered",
                    AttemptOutcome::Gone => "gone",
                    AttemptOutcome::Failed {
                        retry_at: Some(_), ..
                    } => "retry",
                    AttemptOutcome::Failed { retry_at: None, .. } => "failed",
                });
                (delivery, outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        if let Err(err) = self.store.record_attempts(&attempts).await {
            // The leases run out and the deliveries are sent again: at least once.
            tracing::warn!(error = %err, deliveries = attempts.len(), "cannot record webhook attempts");
        }
        count
    }

    /// Sends one delivery once.
    async fn attempt(
        &self,
        delivery: &Delivery,
        endpoint: &Webhook,
        site: Result<&str, &str>,
    ) -> AttemptOutcome {
        let failed = |status: Option<u16>, error: String| {
            let retry_at = RETRY_SCHEDULE
                .get(delivery.attempts as usize)
                .and_then(|wait| TimeDelta::from_std(*wait).ok())
                .map(|wait| Utc::now() + wait);
            AttemptOutcome::Failed {
                status,
                error,
                retry_at,
            }
        };
        let site = match site {
            Ok(name) => name,
            Err(why) => return failed(None, why.to_owned()),
        };
        let comment = match delivery.comment {
            Some(id) => match self.store.comment(id).await {
                Ok(comment) => comment,
                Err(err) => return failed(None, format!("cannot read the comment: {err}")),
            },
            None => None,
        };
        let body = Payload::of(delivery, site, comment.as_ref()).body(endpoint.format);
        let id = format!("msg_{}", delivery.id.simple());
        let timestamp = Utc::now().timestamp();
        let secret = self.vault.webhook_secret(endpoint.site, endpoint.id);
        let signature = sign::signature(&secret, &id, timestamp, &body);
        let sent = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => AttemptOutcome::Delivered {
                status: response.status().as_u16(),
            },
            Ok(response) if response.status() == reqwest::StatusCode::GONE => AttemptOutcome::Gone,
            Ok(response) => failed(
                Some(response.status().as_u16()),
                format!("the endpoint answered {}", response.status()),
            ),
            Err(err) => failed(None, describe(&err)),
        }
    }
}

/// A failed request in a few words, with its cause (a refused address says so).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "no answer within 10 s".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
