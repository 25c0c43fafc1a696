//! Submission: a reply as the host sent it, validated into
//! [`crate::domain::reply`]'s values, becomes an assessed, stored comment.
//!
//! The pipeline never stores a reply that did not validate.

mod pipeline;

pub use pipeline::{MAX_DEPTH, Place, SubmitError, Submitter, is_mail_token, stored_reply};
