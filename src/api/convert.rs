//! Domain values to proto messages.
//!
//! The public [`proto::Comment`] is built from public fields only; the sealed
//! email and the author hash can reach only a moderator's [`proto::QueueItem`],
//! and an email in clear only a [`proto::AuthorComment`] of an export.

use chrono::{DateTime, Utc};

use crate::{
    moderation::{Action, AuditRecord, BlockEntry, BlockKind, CommentStatus, is_erased},
    privacy::{Vault, mask_email},
    proto,
    spam::{Reason, Verdict},
    store::{Site, StoredComment},
};

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn status(status: CommentStatus) -> proto::CommentStatus {
    match status {
        CommentStatus::Pending => proto::CommentStatus::Pending,
        CommentStatus::Approved => proto::CommentStatus::Approved,
        CommentStatus::Spam => proto::CommentStatus::Spam,
        CommentStatus::Rejected => proto::CommentStatus::Rejected,
    }
}

/// The domain status of a proto status; `None` for UNSPECIFIED or unknown.
pub fn status_from(value: i32) -> Option<CommentStatus> {
    match proto::CommentStatus::try_from(value).ok()? {
        proto::CommentStatus::Unspecified => None,
        proto::CommentStatus::Pending => Some(CommentStatus::Pending),
        proto::CommentStatus::Approved => Some(CommentStatus::Approved),
        proto::CommentStatus::Spam => Some(CommentStatus::Spam),
        proto::CommentStatus::Rejected => Some(CommentStatus::Rejected),
    }
}

pub fn action_from(value: i32) -> Option<Action> {
    match proto::ModerationAction::try_from(value).ok()? {
        proto::ModerationAction::Unspecified => None,
        proto::ModerationAction::Approve => Some(Action::Approve),
        proto::ModerationAction::Reject => Some(Action::Reject),
        proto::ModerationAction::MarkSpam => Some(Action::MarkSpam),
        proto::ModerationAction::MarkHam => Some(Action::MarkHam),
        proto::ModerationAction::Delete => Some(Action::Delete),
    }
}

fn verdict(verdict: Verdict) -> proto::Verdict {
    match verdict {
        Verdict::Approve => proto::Verdict::Approve,
        Verdict::Hold => proto::Verdict::Hold,
        Verdict::Spam => proto::Verdict::Spam,
    }
}

fn reason(reason: &Reason) -> proto::SpamReason {
    proto::SpamReason {
        rule: reason.rule.clone(),
        weight: reason.weight,
        reason: reason.reason.clone(),
        log_only: reason.log_only,
    }
}

/// A comment as the public sees it.
pub fn public_comment(comment: &StoredComment) -> proto::Comment {
    proto::Comment {
        id: comment.id.to_string(),
        article: comment.article.clone(),
        parent_id: comment.parent.map(|p| p.to_string()).unwrap_or_default(),
        author_name: comment.author_name.clone(),
        author_website: comment.author_website.clone().unwrap_or_default(),
        avatar_seed: comment.avatar_seed.clone(),
        body: comment.body_public.clone(),
        body_html: comment.body_html.clone(),
        created_at: Some(timestamp(comment.created_at)),
        depth: comment.depth,
        status: status(comment.status).into(),
    }
}

/// A comment as a moderator sees it: masked email, raw text, assessment.
pub fn queue_item(site: &Site, comment: &StoredComment, vault: &Vault) -> proto::QueueItem {
    let masked_email = if is_erased(&comment.email_sealed) {
        // An erased author has no email left to mask.
        String::new()
    } else {
        match vault.decrypt_email(comment.site, &comment.email_sealed) {
            Ok(email) => mask_email(&email),
            Err(err) => {
                tracing::error!(comment = %comment.id, error = %err, "cannot open a stored email");
                "•••".to_owned()
            }
        }
    };
    proto::QueueItem {
        comment: Some(public_comment(comment)),
        site: site.name.clone(),
        masked_email,
        author_hash: hex::encode(&comment.author_hash),
        raw_body: comment.body.clone(),
        ip: comment.ip.clone().unwrap_or_default(),
        user_agent: comment.user_agent.clone().unwrap_or_default(),
        assessment: Some(proto::Assessment {
            score: comment.score,
            verdict: verdict(comment.verdict).into(),
            reasons: comment.reasons.iter().map(reason).collect(),
        }),
        updated_at: Some(timestamp(comment.updated_at)),
    }
}

pub fn audit_entry(record: &AuditRecord) -> proto::AuditEntry {
    let optional = |s: Option<CommentStatus>| s.map_or(proto::CommentStatus::Unspecified, status);
    proto::AuditEntry {
        id: record.id.to_string(),
        action: record.action.clone(),
        actor: record.actor.clone(),
        note: record.note.clone().unwrap_or_default(),
        from_status: optional(record.from_status).into(),
        to_status: optional(record.to_status).into(),
        created_at: Some(timestamp(record.created_at)),
        comment_id: record.comment.map(|c| c.to_string()).unwrap_or_default(),
    }
}

/// The domain kind of a proto kind; `None` for UNSPECIFIED or unknown.
pub fn block_kind_from(value: i32) -> Option<BlockKind> {
    match proto::BlockKind::try_from(value).ok()? {
        proto::BlockKind::Unspecified => None,
        proto::BlockKind::Author => Some(BlockKind::Author),
        proto::BlockKind::Ip => Some(BlockKind::Ip),
        proto::BlockKind::EmailDomain => Some(BlockKind::EmailDomain),
        proto::BlockKind::WebsiteDomain => Some(BlockKind::WebsiteDomain),
    }
}

fn block_kind(kind: BlockKind) -> proto::BlockKind {
    match kind {
        BlockKind::Author => proto::BlockKind::Author,
        BlockKind::Ip => proto::BlockKind::Ip,
        BlockKind::EmailDomain => proto::BlockKind::EmailDomain,
        BlockKind::WebsiteDomain => proto::BlockKind::WebsiteDomain,
    }
}

pub fn block_entry(entry: &BlockEntry) -> proto::BlockEntry {
    proto::BlockEntry {
        kind: block_kind(entry.blocked.kind()).into(),
        value: entry.blocked.value(),
        actor: entry.actor.clone(),
        created_at: Some(timestamp(entry.created_at)),
    }
}

/// One comment of an author's export, with the email opened by the caller.
pub fn author_comment(comment: &StoredComment, email: String) -> proto::AuthorComment {
    proto::AuthorComment {
        id: comment.id.to_string(),
        article: comment.article.clone(),
        parent_id: comment.parent.map(|p| p.to_string()).unwrap_or_default(),
        status: status(comment.status).into(),
        created_at: Some(timestamp(comment.created_at)),
        author_name: comment.author_name.clone(),
        email,
        website: comment.author_website.clone().unwrap_or_default(),
        body: comment.body.clone(),
        ip: comment.ip.clone().unwrap_or_default(),
        user_agent: comment.user_agent.clone().unwrap_or_default(),
        referrer: comment.referrer.clone().unwrap_or_default(),
    }
}
