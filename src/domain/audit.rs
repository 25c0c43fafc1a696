//! The audit log's vocabulary: its rows, the words of their actions, and the reads of personal
//! data that leave a row without a change.

use chrono::{DateTime, Utc};

use super::CommentStatus;
use crate::ids::{AuditId, CommentId, SiteId};

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
    /// An integrations token added a webhook endpoint.
    pub const WEBHOOK_ADD: &str = "webhook_add";
    /// An integrations token removed a webhook endpoint.
    pub const WEBHOOK_REMOVE: &str = "webhook_remove";
    /// An integrations token had a delivery sent again.
    pub const WEBHOOK_REDELIVER: &str = "webhook_redeliver";
    /// A reader reported a comment (`ReportComment`), through the host's site key.
    pub const REPORT: &str = "report";
    /// Enough readers reported an approved comment (`report-hold`): it waits for a moderator.
    pub const REPORT_HOLD: &str = "report_hold";
    /// An integrations token had an address told of a site's events by mail.
    pub const NOTICE_ADD: &str = "notice_add";
    /// An integrations token stopped the mails to an address.
    pub const NOTICE_REMOVE: &str = "notice_remove";
    /// An integrations token set the host's pages that readers' mails link to.
    pub const MAIL_PAGES: &str = "mail_pages";
    /// An author changed their reply's text (`EditComment`), through the host's site key; the
    /// note holds both texts as the public sees them.
    pub const EDIT: &str = "edit";

    /// Every word above.
    pub const OTHERS: [&str; 22] = [
        SUBMIT,
        TOKEN_ISSUE,
        TOKEN_REVOKE,
        REVEAL_EMAIL,
        ERASE_AUTHOR,
        EXPORT_AUTHOR,
        BLOCK,
        UNBLOCK,
        EXPIRE,
        CLOSE_ARTICLE,
        REOPEN_ARTICLE,
        KEY_ROTATE,
        POLICY,
        WEBHOOK_ADD,
        WEBHOOK_REMOVE,
        WEBHOOK_REDELIVER,
        REPORT,
        REPORT_HOLD,
        NOTICE_ADD,
        NOTICE_REMOVE,
        MAIL_PAGES,
        EDIT,
    ];

    /// Every word of the audit log's `action`: the decisions' (`approve`, `mark_spam`, …),
    /// then the others.
    pub fn all() -> impl Iterator<Item = &'static str> {
        crate::domain::Action::ALL
            .into_iter()
            .map(crate::domain::Action::as_str)
            .chain(OTHERS)
    }

    /// The word as the log writes it, for `word` as a person may type it (`mark-spam`).
    pub fn parse(word: &str) -> Option<&'static str> {
        let word = word.trim().replace('-', "_");
        all().find(|known| *known == word)
    }
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

/// The actor of the audit rows a sweep writes.
pub const SYSTEM_ACTOR: &str = "system";

/// The note of an expiry's audit row.
pub const EXPIRED_NOTE: &str = "expired";

/// The end of the note of the audit row of a block whose time was up, which the sweep took off.
pub const BLOCK_ENDED_NOTE: &str = "its time was up";

/// The note of the audit row of spam the sweep deleted.
pub const SPAM_DELETED_NOTE: &str = "spam retention";
