//! The vocabulary every layer shares: where a comment stands and the moves that change it, the
//! audit log's words, a credential's scopes, blocklist entries and their lifetimes, closed
//! articles, readers' reports, authors' edits, an erased comment's marks, a sweep's cutoffs, webhooks' events and
//! deliveries, mail's notices and outbox, and a reply's fields as validated values.
//!
//! It holds types and the rules that make them valid, and calls nothing above it: no storage,
//! no spam rules, no moderation.

mod article;
mod audit;
mod blocks;
mod edit;
mod erased;
mod mail;
pub mod reply;
mod reports;
mod retention;
mod scope;
mod status;
mod webhooks;

pub use article::{ArticleClock, ArticleClosing, ClosedArticle, MAX_CLOSE_AFTER_DAYS};
pub use audit::{
    Access, AccessKind, AuditRecord, BLOCK_ENDED_NOTE, EXPIRED_NOTE, SPAM_DELETED_NOTE,
    SYSTEM_ACTOR, audit_action,
};
pub use blocks::{
    AutoBlock, BlockEntry, BlockKind, BlockLifetime, BlockOutcome, BlockSubject, Blocked, NewBlock,
};
pub use edit::{EDIT_ERASED_NOTE, EditOutcome, EditRefusal, edit_note, edited_status, may_edit};
pub use erased::{ERASED_EMAIL, ERASED_NAME, ERASED_REASON, REMOVED_TEXT, is_erased};
pub use mail::{
    ANSWERS_PER_HOUR, AuthorMail, MAX_DIGEST_MINUTES, Mail, MailKind, MailOutcome, MailPages,
    NOTICE_EVENTS, Notice, ReplyWatch, TOKEN_PLACE,
};
pub use reply::{
    ArticleKey, AuthorName, ClientInfo, CommentBody, Email, FieldViolation, FormInfo,
    IdempotencyKey, RawReply, ReaderId, ValidReply, Website, validate,
};
pub use reports::{
    MAX_REPORT_CHARS, NewReport, ReportOutcome, ReportReason, ReportedComment, parse_report_text,
    parse_reporter,
};
pub use retention::{Cutoffs, SweepReport};
pub use scope::Scope;
pub use status::{Action, CommentStatus, DecisionOutcome, QueueEvent};
pub use webhooks::{AttemptOutcome, Delivery, DeliveryState, Webhook, WebhookEvent, WebhookFormat};
