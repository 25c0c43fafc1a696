//! An author's edit of their own reply (`EditComment`): when one may be made, and where it
//! leaves the reply.
//!
//! An edit never takes a reply out of the queue: its new text is assessed as a new reply's
//! would be, and a reply that waits for a moderator keeps waiting (or becomes spam), while an
//! approved one stays approved only when the new text would be approved too. So an author cannot
//! get a held reply past a moderator by editing it, nor slip new text past the assessment.

use chrono::{DateTime, Duration, Utc};

use super::CommentStatus;

/// Why an edit may not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditRefusal {
    /// The site's `edit-window-seconds` is 0.
    #[error("the site does not let authors edit their replies")]
    Off,
    /// The window after the reply was received has passed.
    #[error("the edit window ended at {ended_at}")]
    WindowPassed { ended_at: DateTime<Utc> },
    /// A moderator or the assessment refused the reply (spam, rejected): its text is no longer
    /// the author's to change.
    #[error("a {0} reply cannot be edited")]
    NotEditable(CommentStatus),
}

/// Whether the author of a reply received at `received_at`, now at `status`, may change its
/// text at `now` on a site whose edit window is `window_seconds` long.
pub fn may_edit(
    window_seconds: u32,
    received_at: DateTime<Utc>,
    status: CommentStatus,
    now: DateTime<Utc>,
) -> Result<(), EditRefusal> {
    if window_seconds == 0 {
        return Err(EditRefusal::Off);
    }
    let ended_at = received_at + Duration::seconds(i64::from(window_seconds));
    if now > ended_at {
        return Err(EditRefusal::WindowPassed { ended_at });
    }
    match status {
        CommentStatus::Approved | CommentStatus::Pending => Ok(()),
        other => Err(EditRefusal::NotEditable(other)),
    }
}

/// Where an edit leaves a reply that stood at `current`, when its new text, assessed as a new
/// reply, would start at `assessed`: spam is spam; an approved reply otherwise takes the new
/// status; a waiting one keeps waiting.
pub fn edited_status(current: CommentStatus, assessed: CommentStatus) -> CommentStatus {
    match (current, assessed) {
        (_, CommentStatus::Spam) => CommentStatus::Spam,
        (CommentStatus::Approved, assessed) => assessed,
        (current, _) => current,
    }
}

/// The note of an edit's audit row: both texts, as the public sees them (contact details
/// masked), so that the log holds what was said without an address a reader typed.
pub fn edit_note(before_public: &str, after_public: &str) -> String {
    format!("before: {before_public}\nafter: {after_public}")
}

/// What is left of an edit's note once its author was erased.
pub const EDIT_ERASED_NOTE: &str = "text erased with its author";

/// What became of an edit the store was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditOutcome {
    /// Stored, with its audit row.
    Applied,
    /// The reply changed after the edit read it (a moderator's decision, a report's hold, another
    /// edit): nothing was stored.
    Changed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_is_allowed_only_within_the_window_of_a_visible_or_waiting_reply() {
        let received = Utc::now();
        let soon = received + Duration::seconds(60);
        assert_eq!(
            may_edit(0, received, CommentStatus::Approved, soon),
            Err(EditRefusal::Off)
        );
        assert_eq!(
            may_edit(60, received, CommentStatus::Approved, soon),
            Ok(())
        );
        assert_eq!(may_edit(60, received, CommentStatus::Pending, soon), Ok(()));
        assert_eq!(
            may_edit(59, received, CommentStatus::Approved, soon),
            Err(EditRefusal::WindowPassed {
                ended_at: received + Duration::seconds(59)
            })
        );
        assert_eq!(
            may_edit(60, received, CommentStatus::Spam, soon),
            Err(EditRefusal::NotEditable(CommentStatus::Spam))
        );
        assert_eq!(
            may_edit(60, received, CommentStatus::Rejected, soon),
            Err(EditRefusal::NotEditable(CommentStatus::Rejected))
        );
    }

    #[test]
    fn an_edit_never_takes_a_reply_out_of_the_queue() {
        use CommentStatus::*;
        assert_eq!(edited_status(Approved, Approved), Approved);
        assert_eq!(edited_status(Approved, Pending), Pending);
        assert_eq!(edited_status(Approved, Spam), Spam);
        assert_eq!(edited_status(Pending, Approved), Pending);
        assert_eq!(edited_status(Pending, Spam), Spam);
    }
}
