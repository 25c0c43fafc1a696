//! A comment as another system's export holds it, before it is made a replyguard reply: what
//! every format's reader yields, one at a time.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

use crate::domain::CommentStatus;

/// One comment of an export, its fields as the export gives them.
///
/// No `Debug`: it holds the author's email in clear.
#[derive(Clone, Default)]
pub struct SourceComment {
    /// Its id in the export, unique within the export's format.
    pub id: String,
    /// Its parent's id in the export, if it answers one.
    pub parent: Option<String>,
    /// The address of the page it is on.
    pub link: String,
    /// The page's id in the export (`--article-key id`).
    pub article_id: String,
    pub author: String,
    pub email: String,
    pub website: String,
    pub ip: String,
    pub user_agent: String,
    /// When it was written; `None` when the export gives no time that can be read.
    pub created: Option<DateTime<Utc>>,
    /// Its status in replyguard's terms; `None` when the export's is unknown.
    pub status: Option<CommentStatus>,
    /// Its text, as the export holds it.
    pub text: String,
    /// Whether `text` is HTML (with entities) rather than plain text.
    pub html: bool,
    /// What replyguard's own export kept of the comment, to keep again.
    pub kept: Option<Kept>,
}

/// What a replyguard export keeps of a comment beside what every export has.
#[derive(Clone, Default)]
pub struct Kept {
    /// Its id, kept when it is a UUID.
    pub id: Option<uuid::Uuid>,
    /// When its status last changed.
    pub updated: Option<DateTime<Utc>>,
    /// What its avatar is drawn from, so that it looks the same.
    pub avatar_seed: Option<String>,
    /// Its score, verdict and reasons.
    pub assessment: Option<(f64, crate::spam::Verdict, Vec<crate::spam::Reason>)>,
}

/// A site's setting, from replyguard's own export.
pub enum Setting {
    Policy(Box<crate::spam::Policy>),
    /// An article closed to new replies, from the time it closed (or closes).
    Closed {
        article: String,
        at: chrono::DateTime<chrono::Utc>,
    },
    /// A blocklist entry: its kind and value, the moderator's note and when it ends.
    Block {
        block: String,
        value: String,
        note: String,
        expires_at: Option<DateTime<Utc>>,
    },
    /// The host's pages readers' mails link to.
    MailPages(crate::domain::MailPages),
    /// A moderator's notice: the address and what it is told of.
    Notice {
        email: String,
        events: Vec<String>,
        digest_minutes: u32,
    },
}

/// What a reader yields: a comment, or something it skipped and why.
pub enum Item {
    Comment(Box<SourceComment>),
    Setting(Setting),
    /// Something left out, and why; with the comment's id when it was one, so that its replies
    /// need not wait for a parent that will never be stored.
    Skipped {
        id: Option<String>,
        reason: &'static str,
    },
}

/// Why a reader stopped before the end of its input.
#[derive(Debug)]
pub enum ReadError {
    /// The input cannot be read as its format.
    Malformed(String),
    /// Whoever takes the items stopped taking them.
    Stopped,
}

impl ReadError {
    pub fn malformed(what: impl std::fmt::Display) -> Self {
        ReadError::Malformed(what.to_string())
    }
}

/// Where a reader sends each item; `Err(Stopped)` ends the reading.
pub type Emit<'a> = dyn FnMut(Item) -> Result<(), ReadError> + 'a;

/// A time as exports write it: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` in UTC. Kept to the
/// microsecond, as both databases keep it.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc).trunc_subsecs(6));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| at.and_utc().trunc_subsecs(6))
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_read_in_each_exports_form() {
        let at = |s| parse_time(s).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2014-01-14 17:32:12"),
            Some("2014-01-14T17:32:12+00:00".into())
        );
        assert_eq!(
            at("2013-10-10T19:20:29Z"),
            Some("2013-10-10T19:20:29+00:00".into())
        );
        assert_eq!(
            at("2021-03-17T12:09:47.722181Z"),
            Some("2021-03-17T12:09:47.722181+00:00".into())
        );
        assert_eq!(at("0000-00-00 00:00:00"), None);
        assert_eq!(at(""), None);
    }
}
