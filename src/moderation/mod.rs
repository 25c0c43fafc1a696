//! Moderation: the states a comment moves through, the decisions that move
//! it, and the audit record each decision leaves.
//!
//! A state is one enum stored as one column; a decision and its audit row are
//! always written in one transaction by the store, never separately. The
//! same holds for every other change a moderator or the operator makes
//! (blocks, closed articles, erasures, expiries, token changes); only reads
//! of personal data (a reveal, an export) leave an audit row without a change.

mod article;
mod block;
mod decide;
mod erase;
mod moderator;
mod retention;
mod scope;

use std::fmt;

pub use article::{ArticleClosing, ClosedArticle};
pub use block::{BlockEntry, BlockKind, BlockOutcome, BlockSubject, Blocked, NewBlock};
pub use decide::{decide, lesson_of};
pub use erase::{
    ERASED_EMAIL, ERASED_NAME, ERASED_REASON, ErasedComment, Erasure, REMOVED_TEXT, is_erased,
};
pub use moderator::{Moderator, RevealError};
pub use retention::{
    Cutoffs, EXPIRED_NOTE, FORM_NONCE_RETENTION, Retention, SPAM_DELETED_NOTE, SWEEP_INTERVAL,
    SYSTEM_ACTOR, SweepReport, Sweeper,
};
pub use scope::Scope;

use chrono::{DateTime, Utc};

use crate::ids::{AuditId, CommentId, SiteId};

/// Where a comment stands in its site's queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommentStatus {
    /// Waiting for a moderator.
    Pending,
    /// Visible to the public.
    Approved,
    /// Judged spam.
    Spam,
    /// Refused by a moderator.
    Rejected,
}

impl CommentStatus {
    /// Every status, in queue order.
    pub const ALL: [CommentStatus; 4] = [
        CommentStatus::Pending,
        CommentStatus::Approved,
        CommentStatus::Spam,
        CommentStatus::Rejected,
    ];

    /// The word stored in the database and printed by tools.
    pub fn as_str(self) -> &'static str {
        match self {
            CommentStatus::Pending => "pending",
            CommentStatus::Approved => "approved",
            CommentStatus::Spam => "spam",
            CommentStatus::Rejected => "rejected",
        }
    }

    /// The inverse of [`CommentStatus::as_str`].
    pub fn parse(word: &str) -> Option<CommentStatus> {
        CommentStatus::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

impl fmt::Display for CommentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A moderator's decision on one comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Approve,
    Reject,
    MarkSpam,
    MarkHam,
    Delete,
}

impl Action {
    /// The status the comment ends in; `None` when it is removed.
    pub fn target(self) -> Option<CommentStatus> {
        match self {
            Action::Approve | Action::MarkHam => Some(CommentStatus::Approved),
            Action::Reject => Some(CommentStatus::Rejected),
            Action::MarkSpam => Some(CommentStatus::Spam),
            Action::Delete => None,
        }
    }

    /// The word written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::MarkSpam => "mark_spam",
            Action::MarkHam => "mark_ham",
            Action::Delete => "delete",
        }
    }
}

/// One decision as the store applies it to one comment.
#[derive(Clone, Debug)]
pub struct Decision<'a> {
    pub comment: CommentId,
    pub action: Action,
    /// Who decided: the token's prefix.
    pub actor: &'a str,
    pub note: Option<&'a str>,
    /// The state the moderator saw; the decision fails if it changed since.
    pub expected: Option<CommentStatus>,
}

/// What became of one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// Applied; the comment went from one state to another (or was removed).
    Applied {
        from: CommentStatus,
        to: Option<CommentStatus>,
    },
    /// No such comment on the sites the moderator may act on.
    NotFound,
    /// The comment's state was not the one the moderator expected.
    Conflict { actual: CommentStatus },
}

/// One row of the audit log.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub id: AuditId,
    pub comment: Option<CommentId>,
    pub actor: String,
    pub action: String,
    pub from_status: Option<CommentStatus>,
    pub to_status: Option<CommentStatus>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A comment arrived in a queue. Stores publish these after the commit, to
/// every replica's watchers, so a moderator never hears of an uncommitted reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueEvent {
    pub site: SiteId,
    pub comment: CommentId,
    pub status: CommentStatus,
}

/// The `action` words of audit rows that are not decisions.
pub mod audit_action {
    /// A reply was stored (by a site key, or by `replyguard seed`).
    pub const SUBMIT: &str = "submit";
    /// The operator issued a credential.
    pub const TOKEN_ISSUE: &str = "token_issue";
    /// The operator revoked a credential.
    pub const TOKEN_REVOKE: &str = "token_revoke";
    /// A moderator read an author's email in clear.
    pub const REVEAL_EMAIL: &str = "reveal_email";
    /// A moderator erased an author's personal data.
    pub const ERASE_AUTHOR: &str = "erase_author";
    /// A moderator exported an author's personal data.
    pub const EXPORT_AUTHOR: &str = "export_author";
    /// A moderator added an entry to a blocklist.
    pub const BLOCK: &str = "block";
    /// A moderator took an entry off a blocklist.
    pub const UNBLOCK: &str = "unblock";
    /// A pending reply waited too long and was rejected.
    pub const EXPIRE: &str = "expire";
    /// A moderator closed an article to new replies.
    pub const CLOSE_ARTICLE: &str = "close_article";
    /// A moderator opened a closed article to new replies again.
    pub const REOPEN_ARTICLE: &str = "reopen_article";
    /// The operator moved the deployment to a new secret key (`replyguard key rotate`).
    pub const KEY_ROTATE: &str = "key_rotate";
    /// A site's policy changed.
    pub const POLICY: &str = "policy";
}

/// A read of personal data: the one kind of audit row written without a
/// change, before the data is handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// One comment's email, in clear.
    RevealEmail,
    /// Every comment and personal datum of one author.
    ExportAuthor,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::RevealEmail => audit_action::REVEAL_EMAIL,
            AccessKind::ExportAuthor => audit_action::EXPORT_AUTHOR,
        }
    }
}

/// The audit row of one read of personal data.
#[derive(Clone, Debug)]
pub struct Access<'a> {
    pub site: SiteId,
    pub kind: AccessKind,
    /// The comment read, for a reveal.
    pub comment: Option<CommentId>,
    /// Who read: the token's prefix.
    pub actor: &'a str,
    /// Why (a reveal's reason) or how much (an export's count); never the
    /// data itself.
    pub note: &'a str,
}
