//! The one place where domain errors become `tonic::Status`.
//!
//! Internal causes are logged here and replaced by a generic message: a
//! client learns what it can act on, never how the database failed.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    privacy::PrivacyError,
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
        SubmitError::Store(err) => store_status(err),
    }
}

/// A stored email that does not open: the key or the row is wrong, which the
/// client can do nothing about.
pub fn privacy_status(err: PrivacyError) -> Status {
    tracing::error!(error = %err, "a stored email cannot be opened");
    Status::internal("internal error")
}
