//! replyguard: a comment-moderation service.
//!
//! A reply flows straight down: [`api`] receives it and checks the
//! credential, [`submission`] turns it into [`domain`] values, [`spam`]
//! scores it, [`store`] keeps it, [`moderation`] decides on it. [`privacy`]
//! keeps emails encrypted and masked everywhere on the way, and [`webhooks`] tells a site's
//! endpoints what happened, and [`mail`] mails the people who asked to be told.
//! docs/ARCHITECTURE.md says which module may call which.
//! [`server`] puts them together; [`tools`] are the operator's commands
//! beside it, and [`deployment`] the secret key both must agree on.

pub mod api;
pub mod config;
pub mod deployment;
pub mod domain;
pub mod ids;
pub mod mail;
pub mod metrics;
pub mod moderation;
pub mod privacy;
/// Key files and the SQLite database: their owner's alone, or refused.
pub mod secret_files;
pub mod server;
pub mod spam;
pub mod store;
pub mod submission;
pub mod telemetry;
pub mod tls;
pub mod tools;
pub mod webhooks;

/// The generated gRPC types of `proto/replyguard/v1/replyguard.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("replyguard.v1");
    pub use crate::api::wire::ListCommentsResponse;

    /// The encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("replyguard_descriptor");
}
