//! Submission: a reply as the host sent it, validated into
//! [`crate::domain::reply`]'s values, becomes an assessed, stored comment.
//!
//! The pipeline never stores a reply that did not validate; an author's edit goes through the
//! same validation and assessment.

mod edit;
mod pipeline;

pub use edit::{EditError, EditRequest, Edited};

pub use pipeline::{MAX_DEPTH, Place, SubmitError, Submitter, is_mail_token, stored_reply};
