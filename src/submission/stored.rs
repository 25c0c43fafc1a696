//! A stored reply read back as the reply it was, for assessing it again (an edit, a dry run).

use crate::{
    domain::{CommentBody, RawReply, ValidReply, validate},
    privacy::{PrivacyError, Vault},
    store::StoredComment,
};

/// Why a stored reply cannot be read back as a reply.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// Its email does not open.
    Sealed(PrivacyError),
    /// Its fields no longer validate (a row this release does not understand).
    Invalid,
}

/// `comment` read back as the reply it was, with `body` for its text: validated as a submission
/// is, so that its fields are the values the assessment reads. The email is opened; the form's
/// token and honeypot are not kept, and read as absent.
pub(crate) fn as_reply(
    vault: &Vault,
    comment: &StoredComment,
    body: &CommentBody,
) -> Result<ValidReply, Unreadable> {
    let email = vault
        .decrypt_email(comment.site, &comment.email_sealed)
        .map_err(Unreadable::Sealed)?;
    let parent = comment.parent.map(|p| p.to_string()).unwrap_or_default();
    let raw = RawReply {
        article: &comment.article,
        parent_id: &parent,
        author_name: &comment.author_name,
        author_email: &email,
        author_website: comment.author_website.as_deref().unwrap_or_default(),
        body: body.as_str(),
        ip: comment.ip.as_deref().unwrap_or_default(),
        user_agent: comment.user_agent.as_deref().unwrap_or_default(),
        referrer: comment.referrer.as_deref().unwrap_or_default(),
        ..RawReply::default()
    };
    validate(&raw).map_err(|_| Unreadable::Invalid)
}
