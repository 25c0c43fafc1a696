//! Moderation: the rules of every change a moderator makes (decisions, blocks,
//! erasures, closed articles, reads of personal data) and of the retention
//! sweep. The vocabulary they speak is [`crate::domain`]'s.
//!
//! A change and its audit row are always one transaction of the store, which
//! applies what these rules say; handlers call [`Moderator`], never the
//! store's writes. Only reads of personal data (a reveal, an export) leave an
//! audit row without a change.

mod decide;
mod erase;
mod moderator;
mod retention;

pub use decide::{decide, decide_sharing, lesson_of};
pub use erase::Erasure;
pub use moderator::{Moderator, RevealError};
pub use retention::{FORM_NONCE_RETENTION, Retention, SWEEP_INTERVAL, Sweeper};

use crate::{
    domain::{Action, CommentStatus},
    ids::CommentId,
};

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
