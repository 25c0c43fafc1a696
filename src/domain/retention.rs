//! What a retention sweep removes, and what it reports.

use chrono::{DateTime, Utc};

/// What one sweep removes: what is older than these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoffs {
    /// Replies created before this lose their client details and idempotency key.
    pub client_details_before: DateTime<Utc>,
    /// Pending replies created before this, if set, expire to rejected.
    pub expire_pending_before: Option<DateTime<Utc>>,
    /// Spam whose status last changed before this, if set, is deleted.
    pub delete_spam_before: Option<DateTime<Utc>>,
    /// Form token nonces used before this are forgotten.
    pub form_nonces_before: DateTime<Utc>,
    /// Mails queued before this leave the outbox, whatever became of them: each holds its
    /// recipient's address, sealed, and one still waiting then was never going to be sent
    /// (its retries ended long before, or no server of the deployment sends mail).
    pub mails_before: DateTime<Utc>,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Replies whose client details or idempotency key were dropped.
    pub client_details_dropped: u64,
    /// Pending replies that expired to rejected.
    pub expired: u64,
    /// Spam deleted.
    pub spam_deleted: u64,
    /// Nonces of used form tokens forgotten.
    pub form_nonces_dropped: u64,
    /// Blocklist entries whose time (`--for`) was up, taken off.
    pub blocks_ended: u64,
    /// Mails dropped from the outbox.
    pub mails_dropped: u64,
}
