//! Readers' reports of a comment: why a reader flags it, in their words, and who they are to
//! the host, so that one reader counts once. A site's `report-hold` holds an approved comment
//! that enough readers reported; a moderator's decision clears its reports.

use chrono::{DateTime, Utc};

use crate::ids::{CommentId, SiteId};

/// Why a reader reports a comment: the fixed set a notice mechanism needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportReason {
    Spam,
    Abuse,
    OffTopic,
    PersonalData,
    Illegal,
}

impl ReportReason {
    pub const ALL: [ReportReason; 5] = [
        ReportReason::Spam,
        ReportReason::Abuse,
        ReportReason::OffTopic,
        ReportReason::PersonalData,
        ReportReason::Illegal,
    ];

    /// The word stored and shown: `spam`, `abuse`, `off-topic`, `personal-data`, `illegal`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Spam => "spam",
            ReportReason::Abuse => "abuse",
            ReportReason::OffTopic => "off-topic",
            ReportReason::PersonalData => "personal-data",
            ReportReason::Illegal => "illegal",
        }
    }

    /// The inverse of [`ReportReason::as_str`].
    pub fn parse(word: &str) -> Option<ReportReason> {
        ReportReason::ALL.into_iter().find(|r| r.as_str() == word)
    }
}

/// The most characters of a report's text.
pub const MAX_REPORT_CHARS: usize = 1000;
/// The most characters of a reporter's id.
pub const MAX_REPORTER_CHARS: usize = 200;

/// The reader's own words with a report: at most [`MAX_REPORT_CHARS`], no control characters
/// but newlines and tabs, trimmed; empty for none.
pub fn parse_report_text(text: &str) -> Result<&str, &'static str> {
    let text = text.trim();
    if text.chars().count() > MAX_REPORT_CHARS {
        return Err("must be at most 1000 characters");
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters other than newlines and tabs");
    }
    Ok(text)
}

/// The host's id of the reporting reader (an account id, a session): required, at most
/// [`MAX_REPORTER_CHARS`], no control characters. Only its keyed hash is kept.
pub fn parse_reporter(id: &str) -> Result<&str, &'static str> {
    let id = id.trim();
    if id.is_empty() {
        return Err("is required: the host's id of the reporting reader");
    }
    if id.chars().count() > MAX_REPORTER_CHARS {
        return Err("must be at most 200 characters");
    }
    if id.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(id)
}

/// A report to store.
#[derive(Clone, Debug)]
pub struct NewReport<'a> {
    pub site: SiteId,
    pub comment: CommentId,
    /// The keyed hash of the reporter's id.
    pub reporter_hash: [u8; 32],
    pub reason: ReportReason,
    pub text: &'a str,
    /// Who sent it: the site key's prefix.
    pub actor: &'a str,
    /// Hold the comment, if approved, once it has this many reports (`report-hold`).
    pub hold_at: Option<u32>,
    pub at: DateTime<Utc>,
}

/// What storing a report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// No such comment on the site, or one no reader can see.
    NotFound,
    /// Stored, or already stored for this reporter (`added` false).
    Stored { added: bool, held: bool },
}

/// One reported comment, as moderators list them.
#[derive(Clone, Debug)]
pub struct ReportedComment {
    pub comment: CommentId,
    pub article: String,
    pub status: super::CommentStatus,
    pub author_name: String,
    pub body_public: String,
    /// How many readers reported it.
    pub reports: u64,
    /// How many gave each reason, by reason.
    pub reasons: Vec<(ReportReason, u64)>,
    /// The readers' texts, newest first, at most a few.
    pub texts: Vec<String>,
    pub last_reported_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_back_their_words_and_nothing_else() {
        for reason in ReportReason::ALL {
            assert_eq!(ReportReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(ReportReason::parse("rude"), None);
        assert!(parse_reporter("  ").is_err());
        assert!(parse_report_text(&"x".repeat(1001)).is_err());
        assert_eq!(
            parse_report_text(" said my address \n"),
            Ok("said my address")
        );
    }
}
