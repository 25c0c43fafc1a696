//! The changes moderators make, as the API asks for them: each applies its rules (which
//! pending replies a block rejects, what an erasure replaces, who may read an email) and hands
//! the store one transaction. Reads of queues and logs go to the store directly.

use std::sync::Arc;

use super::{Decision, Erasure, decide_sharing};
use crate::{
    domain::{
        Access, AccessKind, ArticleClosing, BlockOutcome, BlockSubject, Blocked, DecisionOutcome,
        NewBlock, is_erased,
    },
    ids::{CommentId, SiteId},
    privacy::{AuthorHash, PrivacyError, Vault},
    store::{PolicyEdit, Site, Store, StoreError, StoreResult, StoredComment},
};

/// Applies moderators' changes to one deployment's store.
#[derive(Clone)]
pub struct Moderator {
    store: Arc<dyn Store>,
    vault: Vault,
    /// Decisions also teach the deployment's shared counts (`--shared-learning`).
    shares_lessons: bool,
}

/// Why an email was not revealed.
#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    /// No such comment on the sites the moderator may act on.
    #[error("no comment {0}")]
    NotFound(CommentId),
    /// The author was erased: there is no email left.
    #[error("the author of this comment was erased; there is no email to reveal")]
    Erased,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
}

impl Moderator {
    pub fn new(store: Arc<dyn Store>, vault: Vault) -> Moderator {
        Moderator {
            store,
            vault,
            shares_lessons: false,
        }
    }

    /// The same, whose decisions also teach the deployment's shared counts when `shares`.
    pub fn sharing_lessons(self, shares: bool) -> Moderator {
        Moderator {
            shares_lessons: shares,
            ..self
        }
    }

    /// The author a normalised email names on a site: its keyed hash.
    pub fn author(&self, site: SiteId, normalized_email: &str) -> AuthorHash {
        self.vault.author_hash(site, normalized_email)
    }

    /// Applies one decision to a comment of one of `sites` (see [`decide`]).
    pub async fn decide(
        &self,
        sites: &[SiteId],
        decision: &Decision<'_>,
    ) -> StoreResult<DecisionOutcome> {
        decide_sharing(&*self.store, sites, decision, self.shares_lessons).await
    }

    /// Adds `block` to its site's blocklist; with `reject_pending`, rejects the site's pending
    /// replies the entry catches, in the same transaction.
    pub async fn block(
        &self,
        block: &NewBlock<'_>,
        reject_pending: bool,
    ) -> StoreResult<BlockOutcome> {
        let blocked = block.blocked;
        let catches = |comment: &StoredComment| {
            // Only an email domain needs the email, and only then is it opened.
            let email = match blocked {
                Blocked::EmailDomain(_) => self
                    .vault
                    .decrypt_email(comment.site, &comment.email_sealed)
                    .ok(),
                _ => None,
            };
            blocked.matches(&BlockSubject {
                author_hash: &comment.author_hash,
                ip: comment.ip.as_deref(),
                email: email.as_deref(),
                website: comment.author_website.as_deref(),
            })
        };
        self.store
            .block(block, reject_pending.then_some(&catches))
            .await
    }

    /// Takes an entry off its site's blocklist; false when it was not listed.
    pub async fn unblock(&self, block: &NewBlock<'_>) -> StoreResult<bool> {
        self.store.unblock(block).await
    }

    /// Anonymises every comment of an author on `site`; returns how many.
    pub async fn erase_author(
        &self,
        site: SiteId,
        author_hash: &AuthorHash,
        remove_bodies: bool,
        actor: &str,
    ) -> StoreResult<u64> {
        self.store
            .erase_author(&Erasure {
                site,
                author_hash,
                remove_bodies,
                actor,
            })
            .await
    }

    /// Changes a site's policy: `edit` is given the policy as stored, in the transaction that
    /// holds the site's row, and says what to store and audit instead (see
    /// [`Sites::update_policy`](crate::store::Sites::update_policy)). Returns the site as it is
    /// now.
    pub async fn update_policy(
        &self,
        site: SiteId,
        actor: &str,
        edit: &mut PolicyEdit<'_>,
    ) -> StoreResult<Site> {
        self.store.update_policy(site, actor, edit).await
    }

    /// Closes an article or opens it again; false when it already was so.
    pub async fn set_closed(&self, closing: &ArticleClosing<'_>) -> StoreResult<bool> {
        self.store.close_article(closing).await
    }

    /// The email of comment `id`'s author, for a moderator of the sites `may` allows who gave
    /// `reason`: the read is in the audit log before the email is handed out.
    pub async fn reveal_email(
        &self,
        id: CommentId,
        may: impl Fn(SiteId) -> bool + Send,
        reason: &str,
        actor: &str,
    ) -> Result<String, RevealError> {
        let comment = self
            .store
            .comment(id)
            .await?
            .filter(|c| may(c.site))
            .ok_or(RevealError::NotFound(id))?;
        if is_erased(&comment.email_sealed) {
            return Err(RevealError::Erased);
        }
        let email = self
            .vault
            .decrypt_email(comment.site, &comment.email_sealed)?;
        self.store
            .record_access(&Access {
                site: comment.site,
                kind: AccessKind::RevealEmail,
                comment: Some(id),
                actor,
                note: reason,
            })
            .await?;
        Ok(email)
    }

    /// Every comment of an author on `site`, oldest first: the read is in the audit log before
    /// the comments are handed out.
    pub async fn export_author(
        &self,
        site: SiteId,
        author_hash: &AuthorHash,
        actor: &str,
    ) -> StoreResult<Vec<StoredComment>> {
        let comments = self.store.comments_by_author(site, author_hash).await?;
        let note = match comments.len() {
            1 => "1 comment".to_owned(),
            n => format!("{n} comments"),
        };
        self.store
            .record_access(&Access {
                site,
                kind: AccessKind::ExportAuthor,
                comment: None,
                actor,
                note: &note,
            })
            .await?;
        Ok(comments)
    }
}
