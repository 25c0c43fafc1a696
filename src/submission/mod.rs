//! Submission: a reply as the host sent it, validated into
//! [`crate::domain::reply`]'s values, becomes an assessed, stored comment.
//!
//! The pipeline never stores a reply that did not validate; an author's edit goes through the
//! same validation and assessment, and a policy's dry run replays stored replies through it.

mod edit;
mod pipeline;
mod replay;
mod stored;

pub use edit::{EditError, EditRequest, Edited};
pub use replay::{MAX_TRIAL_DAYS, MovedReply, PolicyTrial, StatusMove, TrialError};

pub use pipeline::{MAX_DEPTH, Place, SubmitError, Submitter, is_mail_token, stored_reply};
