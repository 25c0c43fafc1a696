//! Where a comment stands, the moves a moderator makes, and what becomes of them.

use std::fmt;

use crate::ids::{CommentId, SiteId};

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
    /// Every decision.
    pub const ALL: [Action; 5] = [
        Action::Approve,
        Action::Reject,
        Action::MarkSpam,
        Action::MarkHam,
        Action::Delete,
    ];

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
    /// The comment is already where the decision would put it: nothing was written, no audit
    /// row, no lesson.
    Unchanged { status: CommentStatus },
}

/// A comment arrived in a queue. Stores publish these after the commit, to
/// every replica's watchers, so a moderator never hears of an uncommitted reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueEvent {
    pub site: SiteId,
    pub comment: CommentId,
    pub status: CommentStatus,
}
