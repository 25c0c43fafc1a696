//! Everything that can make `replyctl` fail after its arguments parsed, and how
//! each failure is told to the user: one line on stderr, plus the server's
//! field violations when it sent any.

use std::{fmt::Write as _, io};

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A failure of one `replyctl` run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server could not be reached.
    #[error("cannot connect to {endpoint}: {}{}", chain(source), next_step(source))]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },

    /// The TLS settings or their files cannot be used.
    #[error(transparent)]
    Tls(#[from] replyguard::tls::TlsError),

    /// A command that calls the server was given no token.
    #[error(
        "no token: set REPLYGUARD_TOKEN or pass --token (a moderator token, or for `submit` and \
         `comments` a site key; `replyguard site add` and `replyguard token add` issue them)"
    )]
    NoToken,

    /// The token cannot be sent as a header value. The message must not
    /// quote the token.
    #[error("invalid value for '--token <TOKEN>': a token is printable ASCII")]
    BadToken,

    /// A call was answered with an error status.
    #[error("{what}: {}", status_line(status))]
    Rpc { what: String, status: Status },

    /// Some comments of a decision were not changed; each is listed, with
    /// its reason, in the output already.
    #[error("{action}: {failed} of {total} comments failed")]
    PartlyFailed {
        action: &'static str,
        failed: usize,
        total: usize,
    },

    /// `policy set` or `policy try` (the subcommand named first) was given a value that does
    /// not fit its key. A usage error, reported the way the argument parser reports its own.
    #[error("{1}")]
    PolicyValue(&'static str, String),

    /// A decision named no comments: no ids, no `-`, no filter. Refused
    /// rather than read as "every pending comment".
    #[error("give comment ids, `-` to read them from stdin, or a filter such as --author-hash")]
    NothingChosen,

    /// `unblock` named an entry the blocklist does not have.
    #[error("{kind} {value} is not on the blocklist; nothing changed (`replyctl blocks` lists it)")]
    NotBlocked { kind: String, value: String },

    /// Ctrl-C could not be listened for, so `watch` could not stop cleanly.
    #[error("listening for Ctrl-C: {0}")]
    Signal(#[source] io::Error),

    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

impl CliError {
    /// A wrapper for `map_err` that names what was being done.
    pub fn rpc(what: impl Into<String>) -> impl FnOnce(Status) -> Self {
        move |status| Self::Rpc {
            what: what.into(),
            status,
        }
    }

    /// The message for stderr, without the program name: one line, then one
    /// indented line per field violation or retry hint the server attached.
    pub fn report(&self) -> String {
        let mut report = self.to_string();
        if let Self::Rpc { status, .. } = self {
            if let Some(bad_request) = status.get_details_bad_request() {
                for violation in bad_request.field_violations {
                    // A status about one field already says what its violation says.
                    let said = format!("{} {}", violation.field, violation.description);
                    if status.message().trim() == said.trim() {
                        continue;
                    }
                    let _ = write!(
                        report,
                        "\n  {}: {}",
                        as_typed(&violation.field),
                        in_typed_words(&violation.description)
                    );
                }
            }
            if let Some(delay) = status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay)
            {
                let _ = write!(report, "\n  retry in {} s", delay.as_secs_f64().ceil());
            }
        }
        report
    }

    /// True when stdout was closed by its reader (`replyctl queue | head`),
    /// which is how such a pipeline normally ends, not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// The canonical name of a gRPC status code, as in the gRPC documentation.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The policy's fields as `UpdatePolicy` names them; `policy set` takes them with dashes.
const POLICY_FIELDS: [&str; 19] = [
    "hold_threshold",
    "spam_threshold",
    "max_links",
    "flood_interval_seconds",
    "min_form_seconds",
    "require_form_token",
    "hold_new_authors",
    "report_hold",
    "edit_window_seconds",
    "close_after_days",
    "auto_block_spam",
    "auto_block_window_minutes",
    "auto_block_hours",
    "blocked_terms",
    "moderation_terms",
    "blocked_ips",
    "blocked_email_domains",
    "blocked_websites",
    "allowed_scripts",
];

/// A request field as the command line takes it: `site` is `--site`,
/// `policy.hold_threshold` is `hold-threshold`, `policy.rules.links.weight` is `rule.links`.
fn as_typed(field: &str) -> String {
    if let Some(key) = field.strip_prefix("policy.") {
        if let Some(rule) = key.strip_prefix("rules.") {
            let name = rule.strip_suffix(".weight").unwrap_or(rule);
            return format!("rule.{name}");
        }
        return key.replace('_', "-");
    }
    match field {
        "site" => "--site",
        "note" => "--note",
        "reason" => "--reason",
        "email" => "--email",
        "comment_id" => "--comment",
        "action" => "--action",
        "id" | "ids" => "ID",
        other => other,
    }
    .to_owned()
}

/// A server's description with the policy's fields named as `policy set` takes them.
fn in_typed_words(description: &str) -> String {
    POLICY_FIELDS
        .iter()
        .fold(description.to_owned(), |text, field| {
            text.replace(field, &field.replace('_', "-"))
        })
}

/// `CODE: message` on one line, however the server wrapped its message; a message about one
/// field names it as the command line does.
fn status_line(status: &Status) -> String {
    let mut message = status
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if let Some((field, rest)) = message.split_once(' ') {
        let typed = as_typed(field);
        if typed != field
            && status.get_details_bad_request().is_some_and(|bad| {
                bad.field_violations.len() == 1 && bad.field_violations[0].field == field
            })
        {
            message = format!("{typed} {rest}");
        }
    }
    if message.is_empty() {
        code_name(status.code()).to_owned()
    } else {
        format!("{}: {message}", code_name(status.code()))
    }
}

/// An error and its causes on one line; transport errors keep the useful part
/// ("connection refused") in their sources.
/// What to do about a connection that failed, when the failure says: nothing listens there.
fn next_step(error: &tonic::transport::Error) -> &'static str {
    if chain(error).contains("Connection refused") {
        "; is `replyguard serve` running there? (--endpoint or REPLYGUARD_ENDPOINT names another)"
    } else {
        ""
    }
}

fn chain(error: &tonic::transport::Error) -> String {
    let mut line = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = cause {
        let text = current.to_string();
        // "transport error" says nothing the endpoint in front of it does not,
        // and some layers repeat their source's text in their own message.
        if text != "transport error" && !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = current.source();
    }
    line
}
