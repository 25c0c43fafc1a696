//! The gRPC surface: credentials in, domain calls, proto answers out.
//!
//! Handlers check permissions first, then call into the domain; they never
//! hold SQL, and they never put an internal cause into a client's error.

pub mod auth;
pub mod codec;
mod comments;
mod convert;
mod error;
mod fields;
pub(crate) mod fuzzing;
pub mod guard;
mod integrations;
mod moderation;
mod paging;
mod prefixes;
pub mod wire;

pub use comments::CommentsApi;
pub use integrations::IntegrationsApi;
pub use moderation::ModerationApi;
