//! Request fields read into domain values, each refused as `INVALID_ARGUMENT` with a
//! `google.rpc.BadRequest` naming the field when it does not read.
//!
//! A field that several calls take is read here once, so a client sees one answer for one
//! mistake whichever call it makes.

use chrono::{DateTime, SubsecRound, Utc};
use tonic::Status;

use super::{
    convert::{action_from, block_kind_from, status_from},
    error::invalid_field,
};
use crate::{
    domain::{Action, BlockKind, Blocked, CommentStatus, ReportReason},
    domain::{ArticleKey, Email},
    ids::{CommentId, IdPrefix},
    proto,
};

/// The longest note or reason, in characters.
const MAX_NOTE_CHARS: usize = 1000;

/// The id of an entity that has no newtype of its own (a webhook endpoint, a delivery), spaces
/// around it allowed.
pub fn id(field: &'static str, raw: &str) -> Result<uuid::Uuid, Status> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| invalid_field(field, "is not an id"))
}

/// A comment as a person names it: its whole id, or the start of one (`api::prefixes` finds
/// which comment that is).
#[derive(Clone, Copy, Debug)]
pub enum CommentRef {
    Whole(CommentId),
    Start(IdPrefix),
}

/// A comment id or the start of one, spaces around it allowed; `None` when it is neither.
pub fn comment_ref(raw: &str) -> Option<CommentRef> {
    let raw = raw.trim();
    match raw.parse::<CommentId>() {
        Ok(id) => Some(CommentRef::Whole(id)),
        Err(_) => IdPrefix::parse(raw).map(CommentRef::Start),
    }
}

/// A time a request gives, at the precision the store keeps; `None` when unset. Refused outside
/// the years 1970 to 9999, which every backend stores and orders alike.
pub fn time(
    field: &'static str,
    value: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, Status> {
    let Some(value) = value else {
        return Ok(None);
    };
    let latest = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").map(|t| t.to_utc());
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        .filter(|time| time.timestamp() >= 0 && latest.is_ok_and(|latest| *time <= latest))
        .map(|time| Some(time.trunc_subsecs(6)))
        .ok_or_else(|| invalid_field(field, "must be a time between 1970 and 9999"))
}

/// How many days back a policy's dry run replays: 7 when unset.
pub fn trial_days(days: u32) -> Result<u32, Status> {
    match days {
        0 => Ok(7),
        days if days <= crate::submission::MAX_TRIAL_DAYS => Ok(days),
        _ => Err(invalid_field("days", "must be at most 365")),
    }
}

/// An author token as `EditComment` needs it: present. Whether it is one is the signature's to
/// say ([`crate::privacy::author_view::verify`]).
pub fn author_token(raw: &str) -> Result<&str, Status> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(invalid_field("author_token", "is required"));
    }
    Ok(token)
}

/// An action of the audit log, as entries name it; `mark-spam` reads as `mark_spam`.
pub fn audit_action(raw: &str) -> Result<&'static str, Status> {
    crate::domain::audit_action::parse(raw).ok_or_else(|| {
        let known: Vec<&str> = crate::domain::audit_action::all().collect();
        invalid_field(
            "action",
            &format!(
                "is not an action of the audit log; they are {}",
                known.join(", ")
            ),
        )
    })
}

/// An article key, read as a submission's is, so that the key a call names is the key a
/// submission is checked against.
pub fn article(raw: &str) -> Result<ArticleKey, Status> {
    ArticleKey::parse(raw).map_err(|description| invalid_field("article", &description))
}

/// A comment status; UNSPECIFIED is refused like an unknown value, so a call that has a
/// default applies it before.
pub fn comment_status(field: &'static str, value: i32) -> Result<CommentStatus, Status> {
    status_from(value).ok_or_else(|| invalid_field(field, "is not a known status"))
}

/// The action of a decision.
pub fn action(value: i32) -> Result<Action, Status> {
    action_from(value).ok_or_else(|| invalid_field("action", "is required"))
}

/// The kind of a blocklist entry.
pub fn report_reason(value: i32) -> Result<ReportReason, Status> {
    match proto::ReportReason::try_from(value) {
        Ok(proto::ReportReason::Spam) => Ok(ReportReason::Spam),
        Ok(proto::ReportReason::Abuse) => Ok(ReportReason::Abuse),
        Ok(proto::ReportReason::OffTopic) => Ok(ReportReason::OffTopic),
        Ok(proto::ReportReason::PersonalData) => Ok(ReportReason::PersonalData),
        Ok(proto::ReportReason::Illegal) => Ok(ReportReason::Illegal),
        Ok(proto::ReportReason::Unspecified) | Err(_) => Err(invalid_field(
            "reason",
            "must be spam, abuse, off-topic, personal-data or illegal",
        )),
    }
}

pub fn block_kind(value: i32) -> Result<BlockKind, Status> {
    block_kind_from(value).ok_or_else(|| invalid_field("kind", "is required"))
}

/// The value of a blocklist entry of `kind`, in its normal form.
pub fn blocked(kind: BlockKind, raw: &str) -> Result<Blocked, Status> {
    Blocked::parse(kind, raw).map_err(|why| invalid_field("value", why))
}

/// An author's email as a request names it, for erasing, exporting or
/// blocking.
pub fn author_email(raw: &str) -> Result<Email, Status> {
    Email::parse(raw).map_err(|why| invalid_field("email", &why))
}

/// A note for the audit log, trimmed; `None` when empty. Control characters
/// other than newlines and tabs are refused on every backend alike:
/// PostgreSQL cannot store NUL in text.
pub fn audit_note<'a>(field: &'static str, text: &'a str) -> Result<Option<&'a str>, Status> {
    let note = text.trim();
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid_field(
            field,
            "must not contain control characters other than newlines and tabs",
        ));
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(invalid_field(field, "must be at most 1000 characters"));
    }
    Ok(Some(note).filter(|n| !n.is_empty()))
}
