//! `replyguard bench --receive-webhooks ADDR`: an HTTP receiver beside the load, so that one run
//! measures what a configured endpoint costs a submission and how fast its deliveries follow.
//! It answers every delivery `204 No Content` and keeps, of each, when it arrived and how long
//! after its event (the payload's `timestamp`, written when the change committed).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The deliveries received so far: when each arrived, and its delay after its event.
#[derive(Default)]
struct Received {
    arrivals: Vec<Instant>,
    delays: Vec<Duration>,
}

/// A running receiver; dropping it stops it.
pub struct Sink {
    received: Arc<Mutex<Received>>,
    server: tokio::task::JoinHandle<()>,
}

/// What the receiver saw of one run's deliveries.
#[derive(Debug, Serialize)]
pub struct WebhookFigures {
    pub received: u64,
    /// Received while the load ran.
    pub received_during_run: u64,
    /// From the first delivery to the last.
    pub seconds: f64,
    pub per_second: f64,
    /// From the event's commit to the delivery's arrival.
    pub delay_p50_ms: f64,
    pub delay_p99_ms: f64,
    pub delay_max_ms: f64,
    /// How long after the load ended the last delivery came.
    pub last_after_run_ms: f64,
}

#[derive(Deserialize)]
struct Event {
    timestamp: DateTime<Utc>,
}

impl Sink {
    /// Listens at `addr`.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Sink> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let received = Arc::new(Mutex::new(Received::default()));
        let app = Router::new()
            .route("/{*path}", post(receive))
            .route("/", post(receive))
            .with_state(Arc::clone(&received));
        let server = tokio::spawn(async move {
            // The receiver ends with the run; an accept error ends it early, and the figures
            // say how many arrived.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { received, server })
    }

    /// Waits until no delivery has arrived for `quiet` (the deliveries of the run have
    /// drained), then sums them up; `run_started` and `run_ended` bound the load.
    pub async fn settle(
        self,
        run_started: Instant,
        run_ended: Instant,
        quiet: Duration,
    ) -> WebhookFigures {
        loop {
            let last = self.lock().arrivals.last().copied();
            let idle = last.map_or(run_ended, |last| last.max(run_ended)).elapsed();
            if idle >= quiet {
                break;
            }
            tokio::time::sleep(quiet - idle).await;
        }
        self.server.abort();
        let mut received = self.lock();
        let Received { arrivals, delays } = &mut *received;
        delays.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pct = |p: f64| {
            delays
                .get(((delays.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .map_or(0.0, |d| ms(*d))
        };
        let (first, last) = (arrivals.first().copied(), arrivals.last().copied());
        let seconds = match (first, last) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        let count = arrivals.len() as u64;
        WebhookFigures {
            received: count,
            received_during_run: arrivals
                .iter()
                .filter(|at| **at >= run_started && **at <= run_ended)
                .count() as u64,
            seconds,
            per_second: if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            },
            delay_p50_ms: pct(0.50),
            delay_p99_ms: pct(0.99),
            delay_max_ms: delays.last().map_or(0.0, |d| ms(*d)),
            last_after_run_ms: last
                .map_or(0.0, |last| ms(last.saturating_duration_since(run_ended))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One delivery: counted, with its delay when its payload carries a readable `timestamp`
/// (a Slack-format delivery does not).
async fn receive(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> StatusCode {
    let arrived = Instant::now();
    let delay = serde_json::from_slice::<Event>(&body)
        .ok()
        .and_then(|event| (Utc::now() - event.timestamp).to_std().ok());
    let mut received = received
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    received.arrivals.push(arrived);
    received.delays.extend(delay);
    StatusCode::NO_CONTENT
}
