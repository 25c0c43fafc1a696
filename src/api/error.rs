//! The one place where domain errors become `tonic::Status`.
//!
//! Each domain error converts with `From`, so a handler's `?` answers it.
//!
//! Internal causes are logged here and replaced by a generic message: a
//! client learns what it can act on, never how the database failed.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    domain::{EditRefusal, FieldViolation},
    moderation::RevealError,
    privacy::PrivacyError,
    store::StoreError,
    submission::{EditError, SubmitError, TrialError},
};

/// `INVALID_ARGUMENT` with a `google.rpc.BadRequest` naming each field.
pub fn invalid(message: &str, violations: &[FieldViolation]) -> Status {
    bad_request(
        message,
        violations
            .iter()
            .map(|v| (v.field.to_owned(), v.description.clone())),
    )
}

/// At most this many violations go into one `BadRequest`. Details travel in the response's
/// trailers, and a client refuses trailers over 16 KiB (hyper's default) as a protocol error,
/// losing the status itself; a policy update can hold thousands of bad entries.
const MAX_VIOLATIONS: usize = 40;

/// A field name built from the request is cut at this many bytes, for the same reason.
const MAX_FIELD_BYTES: usize = 100;

/// `INVALID_ARGUMENT` with a `google.rpc.BadRequest` of `(field, description)` pairs, for
/// fields whose names are built from the request (`policy.rules.linkz`).
pub fn bad_request(
    message: &str,
    violations: impl IntoIterator<Item = (String, String)>,
) -> Status {
    let mut details = ErrorDetails::new();
    let mut count = 0;
    for (mut field, description) in violations {
        count += 1;
        if count > MAX_VIOLATIONS {
            continue;
        }
        if field.len() > MAX_FIELD_BYTES {
            let mut end = MAX_FIELD_BYTES;
            while !field.is_char_boundary(end) {
                end -= 1;
            }
            field.truncate(end);
            field.push('…');
        }
        details.add_bad_request_violation(field, description);
    }
    let message = if count > MAX_VIOLATIONS {
        format!("{message}; the first {MAX_VIOLATIONS} of {count} are named")
    } else {
        message.to_owned()
    };
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// `INVALID_ARGUMENT` for one bad field.
pub fn invalid_field(field: &'static str, description: &str) -> Status {
    invalid(
        &format!("{field} {description}"),
        &[FieldViolation {
            field,
            description: description.to_owned(),
        }],
    )
}

/// A storage failure: worth a retry when the database is unreachable, the name that exists when
/// a uniqueness rule was broken, and otherwise an internal error whose cause stays in the log.
impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Status::unavailable("the database is unavailable; retry later")
            }
            StoreError::AlreadyExists(what) => {
                Status::already_exists(format!("{what} already exists"))
            }
            StoreError::ArticleClosed => article_closed_status(),
            StoreError::DiskFull(cause) => {
                tracing::error!(error = %cause, "the database is out of disk space; writes fail until space is freed");
                let mut details = ErrorDetails::new();
                details.set_error_info("DISK_FULL", "replyguard", HashMap::new());
                Status::with_error_details(
                    Code::Unavailable,
                    "the database is out of disk space: nothing was stored; retry later with \
                     the same idempotency key",
                    details,
                )
            }
            other => {
                tracing::error!(error = %other, "storage failed");
                Status::internal("internal error")
            }
        }
    }
}

/// A refused reply, with what the host needs to tell its reader: the fields to correct, when to
/// retry, or which earlier reply this one repeats.
impl From<SubmitError> for Status {
    fn from(err: SubmitError) -> Self {
        match err {
            SubmitError::Invalid(violations) => {
                invalid("the reply has invalid fields", &violations)
            }
            SubmitError::Flood { retry_after } => {
                let mut details = ErrorDetails::new();
                // Whole seconds, rounded up: retrying at once would only fail again.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                details.set_retry_info(Some(std::time::Duration::from_secs(seconds)));
                Status::with_error_details(
                    Code::ResourceExhausted,
                    format!("you are replying too fast; wait {seconds} s"),
                    details,
                )
            }
            SubmitError::Duplicate(earlier) => {
                // The earlier reply's id, which the host was given when it sent that one, so it
                // can point the reader to it.
                let mut details = ErrorDetails::new();
                details.set_resource_info(
                    "replyguard.v1.Comment",
                    earlier.to_string(),
                    "",
                    "the same author sent this text for this article before",
                );
                Status::with_error_details(
                    Code::AlreadyExists,
                    "this reply was already submitted for this article",
                    details,
                )
            }
            SubmitError::Closed => article_closed_status(),
            SubmitError::Store(err) => err.into(),
        }
    }
}

/// An edit that was not made, with what the host needs to tell its reader: the text to correct,
/// that the reply is not theirs, or that its time to change has passed.
impl From<EditError> for Status {
    fn from(err: EditError) -> Self {
        match err {
            EditError::Invalid(violations) => invalid("the edit has invalid fields", &violations),
            EditError::NotFound => Status::not_found("no such comment"),
            EditError::NotTheAuthor => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "NOT_THE_AUTHOR",
                    "replyguard",
                    HashMap::from([("field".to_owned(), "author_token".to_owned())]),
                );
                Status::with_error_details(
                    Code::PermissionDenied,
                    "the author token is not this reply's author's",
                    details,
                )
            }
            EditError::Refused(refusal) => {
                let kind = match refusal {
                    EditRefusal::Off | EditRefusal::WindowPassed { .. } => "EDIT_WINDOW",
                    EditRefusal::NotEditable(_) => "NOT_EDITABLE",
                };
                let description = refusal.to_string();
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation(kind, "comment_id", &description);
                Status::with_error_details(Code::FailedPrecondition, description, details)
            }
            EditError::Closed => article_closed_status(),
            EditError::Duplicate(earlier) => SubmitError::Duplicate(earlier).into(),
            EditError::Changed => Status::aborted(
                "the reply changed while it was edited (a moderator decided on it): read it \
                 again and retry",
            ),
            EditError::Store(err) => err.into(),
            EditError::Privacy(err) => err.into(),
        }
    }
}

/// A dry run that did not finish: the database's answer, or an internal error logged here.
impl From<TrialError> for Status {
    fn from(err: TrialError) -> Self {
        match err {
            TrialError::Store(err) => err.into(),
            TrialError::Interrupted(cause) => {
                tracing::error!(error = %cause, "a policy's dry run stopped");
                Status::internal("internal error")
            }
        }
    }
}

/// `FAILED_PRECONDITION` with a `google.rpc.PreconditionFailure` of type `ARTICLE_CLOSED`: a
/// moderator closed the article, or the site's `close-after-days` did, and a retry will not help
/// until it is opened again.
pub fn article_closed_status() -> Status {
    let mut details = ErrorDetails::new();
    details.add_precondition_failure_violation(
        "ARTICLE_CLOSED",
        "article",
        "the article is closed to new replies",
    );
    Status::with_error_details(
        Code::FailedPrecondition,
        "the article is closed to new replies",
        details,
    )
}

/// A stored email that does not open: the key or the row is wrong, which the
/// client can do nothing about. Opening an email is the one thing a handler asks of
/// [`crate::privacy`] that can fail.
impl From<PrivacyError> for Status {
    fn from(err: PrivacyError) -> Self {
        tracing::error!(error = %err, "a stored email cannot be opened");
        Status::internal("internal error")
    }
}

/// A reveal that cannot be made: the comment is not the moderator's to read, or has no email
/// left.
impl From<RevealError> for Status {
    fn from(err: RevealError) -> Status {
        match err {
            RevealError::NotFound(_) => Status::not_found(err.to_string()),
            RevealError::Erased => Status::failed_precondition(err.to_string()),
            RevealError::Store(err) => err.into(),
            RevealError::Privacy(err) => err.into(),
        }
    }
}
