//! The vocabulary every layer shares: where a comment stands and the moves that change it, the
//! audit log's words, a credential's scopes, blocklist entries, closed articles, an erased
//! comment's marks, a sweep's cutoffs, webhooks' events and deliveries, mail's notices and outbox, and a reply's fields as
//! validated values.
//!
//! It holds types and the rules that make them valid, and calls nothing above it: no storage,
//! no spam rules, no moderation.

mod article;
mod audit;
mod blocks;
mod erased;
mod mail;
pub mod reply;
mod retention;
mod scope;
mod status;
mod webhooks;

pub use article::{ArticleClosing, ClosedArticle};
pub use audit::{
    Access, AccessKind, AuditRecord, EXPIRED_NOTE, SPAM_DELETED_NOTE, SYSTEM_ACTOR, audit_action,
};
pub use blocks::{BlockEntry, BlockKind, BlockOutcome, BlockSubject, Blocked, NewBlock};
pub use erased::{ERASED_EMAIL, ERASED_NAME, ERASED_REASON, REMOVED_TEXT, is_erased};
pub use mail::{
    ANSWERS_PER_HOUR, AuthorMail, MAX_DIGEST_MINUTES, Mail, MailKind, MailOutcome, MailPages,
    NOTICE_EVENTS, Notice, ReplyWatch, TOKEN_PLACE,
};
pub use reply::{
    ArticleKey, AuthorName, ClientInfo, CommentBody, Email, FieldViolation, FormInfo,
    IdempotencyKey, RawReply, ValidReply, Website, validate,
};
pub use retention::{Cutoffs, SweepReport};
pub use scope::Scope;
pub use status::{Action, CommentStatus, DecisionOutcome, QueueEvent};
pub use webhooks::{AttemptOutcome, Delivery, DeliveryState, Webhook, WebhookEvent, WebhookFormat};
