//! An author's edit of their own reply (`EditComment`): within the site's edit window, the new
//! text is validated, masked and assessed as a submission's, and stored with both texts in the
//! audit log.
//!
//! What the assessment found about the moment the reply was sent (its form, its timing, the
//! author's record then) is kept from the stored reasons; what it finds in the text is found
//! again. An edit never takes a reply out of the queue ([`crate::domain::edited_status`]).

use tracing::instrument;

use super::{
    Submitter,
    stored::{Unreadable, as_reply},
};
use crate::{
    domain::{
        ArticleKey, CommentBody, CommentStatus, EditOutcome, EditRefusal, FieldViolation,
        edit_note, edited_status, is_erased, may_edit,
    },
    ids::CommentId,
    privacy::{AuthorHash, KeptText, PrivacyError, mask_contacts},
    spam::{self, Facts, LearnedStats, Replay, SUBMISSION_RULES},
    store::{self, CommentEdit, FactsAbout, Site, StoreError, StoredComment},
};

/// An edit as the host sends it for its reader.
#[derive(Clone, Copy, Debug)]
pub struct EditRequest<'a> {
    /// The reply to change.
    pub comment: CommentId,
    /// The reply the author token was issued for: its author is the token's.
    pub token_comment: CommentId,
    /// The new text, as sent.
    pub body: &'a str,
    /// Who sent it: the site key's prefix.
    pub actor: &'a str,
}

/// Why an edit was not stored.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The new text breaks the rules of a reply's text.
    #[error("invalid edit")]
    Invalid(Vec<FieldViolation>),
    /// No such reply on the site, or its author was erased.
    #[error("no such comment")]
    NotFound,
    /// The author token is another author's.
    #[error("the author token is not this reply's author's")]
    NotTheAuthor,
    /// The site's edit window does not allow it, or the reply is no longer the author's to
    /// change.
    #[error(transparent)]
    Refused(#[from] EditRefusal),
    /// The article is closed to new replies, and so to edits.
    #[error("the article is closed")]
    Closed,
    /// The new text is an earlier reply's of the same author under the same article.
    #[error("duplicate of {0}")]
    Duplicate(CommentId),
    /// The reply changed while the edit was made (a moderator decided on it): nothing changed.
    #[error("the reply changed meanwhile")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
}

/// What an edit came to.
#[derive(Clone, Debug)]
pub struct Edited {
    /// The reply as it is now.
    pub comment: StoredComment,
    /// False when the new text was the text already: nothing was stored or audited.
    pub changed: bool,
}

impl Submitter {
    /// Changes the text of a reply of `site` for its author, as [`EditError`] allows.
    #[instrument(skip_all, fields(site = %site.name, comment = %edit.comment))]
    pub async fn edit(&self, site: &Site, edit: &EditRequest<'_>) -> Result<Edited, EditError> {
        let body = CommentBody::parse(edit.body).map_err(|description| {
            EditError::Invalid(vec![FieldViolation {
                field: "body",
                description,
            }])
        })?;
        let visible =
            |comment: &StoredComment| comment.site == site.id && !is_erased(&comment.email_sealed);
        let comment = self
            .store
            .comment(edit.comment)
            .await?
            .filter(visible)
            .ok_or(EditError::NotFound)?;
        let token_author = if edit.token_comment == comment.id {
            Some(comment.author_hash.clone())
        } else {
            self.store
                .comment(edit.token_comment)
                .await?
                .filter(visible)
                .map(|earlier| earlier.author_hash)
        };
        if token_author.as_deref() != Some(comment.author_hash.as_slice()) {
            return Err(EditError::NotTheAuthor);
        }
        let now = store::now();
        may_edit(
            site.policy.edit_window_seconds,
            comment.created_at,
            comment.status,
            now,
        )?;
        let article = ArticleKey::parse(&comment.article).map_err(|_| corrupt(&comment))?;
        if self
            .store
            .article_clock(site.id, &article)
            .await?
            .is_closed(now, None)
        {
            return Err(EditError::Closed);
        }
        if comment.raw_body(&self.vault)? == body.as_str() {
            return Ok(Edited {
                comment,
                changed: false,
            });
        }
        let reply =
            as_reply(&self.vault, &comment, &body).map_err(|unreadable| match unreadable {
                Unreadable::Sealed(err) => EditError::Privacy(err),
                Unreadable::Invalid => corrupt(&comment),
            })?;
        let author_hash = <[u8; 32]>::try_from(comment.author_hash.as_slice())
            .map(AuthorHash)
            .map_err(|_| corrupt(&comment))?;
        let text = spam::Analysis::of(&reply);
        let body_public = mask_contacts(reply.body.as_str());
        let about = FactsAbout {
            author_hash: &author_hash,
            article: &reply.article,
            ip: comment.ip.as_deref(),
            body_public: &body_public,
        };
        let stored = self.store.facts(site.id, &about, &text.features).await?;
        if let Some(earlier) = stored.duplicate_of.filter(|earlier| *earlier != comment.id) {
            return Err(EditError::Duplicate(earlier));
        }
        // The author's record before this reply, as the submission counted it (over the reader
        // the host vouched for, if it did): what the store counts, less the reply itself.
        let (approved, spam, rejected) = match &comment.reader_hash {
            Some(reader) => {
                let record = self.store.reader_record(site.id, reader).await?;
                (record.approved, record.spam, record.rejected)
            }
            None => (
                stored.author_approved,
                stored.author_spam,
                stored.author_rejected,
            ),
        };
        let approved = match comment.status {
            CommentStatus::Approved => approved.saturating_sub(1),
            _ => approved,
        };
        let shared = if self.reads_shared {
            self.store.shared_learned(site.id, &text.features).await?
        } else {
            LearnedStats::new()
        };
        let facts = Facts {
            author: Some(author_hash),
            author_approved: approved,
            author_spam: spam,
            author_rejected: rejected,
            // As the submission read it: a vouched-for reader's trust does not rest on it.
            author_confirmed: comment.reader_hash.is_none() && stored.author_confirmed,
            ip_spam: stored.ip_spam,
            recent: &stored.recent,
            learned: &stored.learned,
            shared: &shared,
            ..Facts::default()
        };
        let policy = &site.policy;
        let replay = Replay::new(policy.clone(), policy.clone(), SUBMISSION_RULES);
        let assessment = replay.assess(&self.assessor, &reply, &text, &facts, &comment.reasons);
        let assessed = policy.initial_status_for(&assessment, approved, spam);
        let kept = KeptText::new(
            &self.vault,
            site.id,
            comment.id,
            reply.body.as_str(),
            body_public,
        );
        let after = StoredComment {
            status: edited_status(comment.status, assessed),
            body: kept.body,
            body_sealed: kept.body_sealed,
            body_public: kept.body_public,
            body_html: kept.body_html,
            fingerprint: Some(text.fingerprint),
            features: text.features,
            score: assessment.score,
            verdict: assessment.verdict,
            reasons: assessment.reasons,
            updated_at: now,
            ..comment.clone()
        };
        let note = edit_note(&comment.body_public, &after.body_public);
        let change = CommentEdit {
            before: &comment,
            after: &after,
            actor: edit.actor,
            note: &note,
        };
        match self.store.edit_comment(&change).await? {
            EditOutcome::Applied => {
                tracing::info!(from = %comment.status, to = %after.status, score = after.score, "reply edited");
                Ok(Edited {
                    comment: after,
                    changed: true,
                })
            }
            EditOutcome::Changed => Err(EditError::Changed),
        }
    }
}

/// A stored reply whose fields no longer read as a reply's.
fn corrupt(comment: &StoredComment) -> EditError {
    EditError::Store(StoreError::Corrupt(format!(
        "comment {} no longer reads as a reply",
        comment.id
    )))
}
