//! What an erased comment carries in place of its author's data.

/// The name an erased comment shows.
pub const ERASED_NAME: &str = "Anonymous";

/// The text of an erased comment whose body was removed.
pub const REMOVED_TEXT: &str = "[removed]";

/// What each spam reason of an erased comment says instead of its text.
pub const ERASED_REASON: &str = "erased";

/// The `email_sealed` of an erased comment: empty. Every sealing is longer
/// (nonce and tag alone are 40 bytes), so it cannot be mistaken for one.
pub const ERASED_EMAIL: &[u8] = &[];

/// Whether a stored email is the tombstone of an erasure.
pub fn is_erased(email_sealed: &[u8]) -> bool {
    email_sealed == ERASED_EMAIL
}
