//! Retention: a reply's client details (IP address, user agent, referrer)
//! and the host's idempotency key are kept for a limited time, pending
//! replies that nobody decided can expire to rejected, spam can be deleted
//! once it has sat in the spam queue long enough, the nonces of used form
//! tokens are forgotten once the tokens have expired, blocks given a time end,
//! and mails leave the outbox a week after they were queued.
//!
//! The server sweeps once when it starts and then every hour. A sweep only
//! ever removes what is older than its cutoffs or expires replies, so running
//! it again, or on several replicas at once, changes nothing more: a reply
//! expires, or is deleted, once, with one audit row.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::{sync::watch, task::JoinHandle, time::MissedTickBehavior};

use crate::{
    domain::{Cutoffs, SweepReport},
    metrics,
    spam::form::TOKEN_LIFETIME,
    store::{self, Store},
};

/// How often the server sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// How long the nonce of a used form token is kept: the token's lifetime, after which it is
/// refused as expired whatever its nonce, and a day more for replicas whose clocks disagree.
pub const FORM_NONCE_RETENTION: Duration = Duration::from_secs(TOKEN_LIFETIME.as_secs() + 86_400);

/// How long a mail stays in the outbox: long enough to see what came of it, past the day and a
/// half of its retries and past the day a confirmation's limit looks back.
pub const MAIL_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// How long what is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Days a reply keeps its IP address, user agent, referrer and the
    /// host's idempotency key.
    pub client_details_days: u32,
    /// Days a reply may wait for a moderator before it is rejected; `None`
    /// keeps it pending for good.
    pub expire_pending_days: Option<u32>,
    /// Days a reply stays in the spam queue before it is deleted, counted
    /// from when it became spam; `None` keeps spam for good.
    pub delete_spam_days: Option<u32>,
}

impl Retention {
    /// The cutoffs of a sweep at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        let before = |age: TimeDelta| {
            now.checked_sub_signed(age)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let days = |days: u32| before(TimeDelta::days(i64::from(days)));
        Cutoffs {
            client_details_before: days(self.client_details_days),
            expire_pending_before: self.expire_pending_days.map(days),
            delete_spam_before: self.delete_spam_days.map(days),
            form_nonces_before: before(
                TimeDelta::from_std(FORM_NONCE_RETENTION).unwrap_or(TimeDelta::MAX),
            ),
            mails_before: before(TimeDelta::from_std(MAIL_RETENTION).unwrap_or(TimeDelta::MAX)),
        }
    }
}

/// The server's sweeping task.
pub struct Sweeper {
    task: JoinHandle<()>,
    sweeps: watch::Receiver<u64>,
}

impl Sweeper {
    /// Sweeps now, then every [`SWEEP_INTERVAL`], until stopped.
    pub fn start(store: Arc<dyn Store>, retention: Retention) -> Sweeper {
        let (done, sweeps) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                // The first tick is immediate: one sweep at start.
                ticks.tick().await;
                sweep_once(store.as_ref(), &retention).await;
                done.send_modify(|count| *count += 1);
            }
        });
        Sweeper { task, sweeps }
    }

    /// Resolves once a sweep has finished since the start (at once if one
    /// has).
    pub async fn swept(&self) {
        let mut sweeps = self.sweeps.clone();
        // An error means the task ended; then there is nothing to wait for.
        let _ = sweeps.wait_for(|count| *count > 0).await;
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn sweep_once(store: &dyn Store, retention: &Retention) {
    let now = store::now();
    match store.sweep(now, &retention.cutoffs(now)).await {
        Ok(report) => {
            metrics::record_sweep(&report);
            if report == SweepReport::default() {
                tracing::debug!("retention sweep: nothing to do");
            } else {
                tracing::info!(
                    client_details_dropped = report.client_details_dropped,
                    expired = report.expired,
                    spam_deleted = report.spam_deleted,
                    form_nonces_dropped = report.form_nonces_dropped,
                    blocks_ended = report.blocks_ended,
                    mails_dropped = report.mails_dropped,
                    "retention sweep"
                );
            }
        }
        Err(err) => {
            metrics::record_failed_sweep();
            tracing::warn!(error = %err, "retention sweep failed; the next one retries");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_lie_whole_days_before_now() {
        let now = DateTime::parse_from_rfc3339("2026-03-31T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("a time");
        let retention = Retention {
            client_details_days: 30,
            expire_pending_days: Some(7),
            delete_spam_days: Some(15),
        };
        let cutoffs = retention.cutoffs(now);
        assert_eq!(
            cutoffs.client_details_before.to_rfc3339(),
            "2026-03-01T12:00:00+00:00"
        );
        assert_eq!(
            cutoffs
                .expire_pending_before
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some("2026-03-24T12:00:00+00:00")
        );
        assert_eq!(
            cutoffs
                .delete_spam_before
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some("2026-03-16T12:00:00+00:00")
        );
        // A token's two days, and one more.
        assert_eq!(
            cutoffs.form_nonces_before.to_rfc3339(),
            "2026-03-28T12:00:00+00:00"
        );
        let keep = Retention {
            expire_pending_days: None,
            delete_spam_days: None,
            ..retention
        };
        assert_eq!(keep.cutoffs(now).expire_pending_before, None);
        assert_eq!(keep.cutoffs(now).delete_spam_before, None);
    }
}
