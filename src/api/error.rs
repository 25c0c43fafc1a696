//! The one place where domain errors become `tonic::Status`.
//!
//! Internal causes are logged here and replaced by a generic message: a
//! client learns what it can act on, never how the database failed.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    store::StoreError,
    submission::{FieldViolation, SubmitError},
};

/// `INVALID_ARGUMENT` with a `google.rpc.BadRequest` naming each field.
pub fn invalid(message: &str, violations: &[FieldViolation]) -> Status {
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field, violation.description.clone());
    }
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

pub fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "database unavailable");
            Status::unavailable("the database is unavailable; retry later")
        }
        StoreError::AlreadyExists(what) => Status::already_exists(format!("{what} already exists")),
        other => {
            tracing::error!(error = %other, "storage failed");
            Status::internal("internal error")
        }
    }
}

pub fn submit_status(err: SubmitError) -> Status {
    match err {
        SubmitError::Invalid(violations) => invalid("the reply has invalid fields", &violations),
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
        SubmitError::Duplicate(_) => {
            Status::already_exists("this reply was already submitted for this article")
        }
        SubmitError::Store(err) => store_status(err),
    }
}
