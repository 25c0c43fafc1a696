//! Webhooks: a site's moderation events, sent to the endpoints its integrators add, signed as
//! Standard Webhooks does, retried for a day, and never carrying an email, an address or a
//! hash of either.
//!
//! The changes queue their events in their own transactions (the store's outbox); the
//! [`Worker`] sends what is due. [`target`] keeps endpoints off the service's own network,
//! [`sign`] makes the headers receivers verify, [`payload`] the bodies.

pub mod payload;
pub mod sign;
pub mod target;
mod worker;

pub use target::{TargetError, Targets};
pub use worker::{RETRY_SCHEDULE, Worker};
