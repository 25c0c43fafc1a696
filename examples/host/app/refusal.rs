//! What a refused `SubmitComment` means to the reader who sent the form.
//!
//! replyguard answers a refusal with a gRPC status and `google.rpc` details (the "richer error
//! model"); every language's gRPC library reads them (`tonic_types::StatusExt` here,
//! `grpc_status` in Python, `status.FromError(err).Details()` in Go). A host shows each kind its
//! own way: the fields to correct beside the fields, how long to wait, the earlier reply, or
//! that the article is closed. Anything else is the host's problem, not the reader's: it is
//! logged, and the reader is asked to try again.

use axum::http::StatusCode;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Why a reply was not taken.
pub enum Refusal {
    /// `INVALID_ARGUMENT` with a `BadRequest`: each field and what is wrong with it (its
    /// description reads after the field's name: "must be an email address such as …").
    Fields(Vec<(String, String)>),
    /// `RESOURCE_EXHAUSTED` with a `RetryInfo`: the author (or their address) replied moments
    /// ago; this many seconds until they may again.
    Wait { seconds: u64 },
    /// `ALREADY_EXISTS` with a `ResourceInfo` naming the reply the author sent before.
    Duplicate { earlier: String },
    /// `FAILED_PRECONDITION` with a `PreconditionFailure` of type `ARTICLE_CLOSED`.
    Closed,
    /// Anything else: a wrong site key, replyguard unreachable, a bug.
    Unexpected,
}

impl Refusal {
    pub fn of(status: &Status) -> Refusal {
        match status.code() {
            Code::InvalidArgument => {
                let fields: Vec<(String, String)> = status
                    .get_details_bad_request()
                    .map(|bad| {
                        bad.field_violations
                            .into_iter()
                            .map(|v| (v.field, v.description))
                            .collect()
                    })
                    .unwrap_or_default();
                if fields.is_empty() {
                    Refusal::Unexpected
                } else {
                    Refusal::Fields(fields)
                }
            }
            Code::ResourceExhausted => match status
                .get_details_retry_info()
                .and_then(|retry| retry.retry_delay)
            {
                Some(delay) => Refusal::Wait {
                    seconds: delay.as_secs().max(1),
                },
                // A request over the size limit: nothing the reader can wait out.
                None => Refusal::Unexpected,
            },
            Code::AlreadyExists => match status.get_details_resource_info() {
                Some(info) => Refusal::Duplicate {
                    earlier: info.resource_name,
                },
                None => Refusal::Unexpected,
            },
            Code::FailedPrecondition
                if status
                    .get_details_precondition_failure()
                    .is_some_and(|failure| {
                        failure
                            .violations
                            .iter()
                            .any(|v| v.r#type == "ARTICLE_CLOSED")
                    }) =>
            {
                Refusal::Closed
            }
            _ => Refusal::Unexpected,
        }
    }

    /// The HTTP status of the page that shows the form again.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Refusal::Fields(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Wait { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Duplicate { .. } | Refusal::Closed => StatusCode::CONFLICT,
            Refusal::Unexpected => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What the reader calls a field of the request, for the messages beside it.
pub fn label(field: &str) -> &str {
    match field {
        "author.name" => "Name",
        "author.email" => "Email",
        "author.website" => "Website",
        "body" => "Comment",
        "parent_id" => "The comment you reply to",
        other => other,
    }
}
