//! Submission: a reply as the host sent it becomes a validated domain value,
//! then an assessed, stored comment.
//!
//! Validation never scores, stores or encrypts; the pipeline never stores a
//! reply that did not validate.

mod pipeline;
pub mod validate;

pub use pipeline::{MAX_DEPTH, Place, SubmitError, Submitter, stored_reply};
pub use validate::*;
