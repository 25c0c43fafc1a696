//! The host's own keys: the article a reply belongs to, the submission a retry repeats, and the
//! signed-in reader the host vouches for.

use super::checks::{at_most_bytes, no_control_chars, required};

/// The host's key for the article a reply belongs to, such as its URL path or database id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArticleKey(String);

impl ArticleKey {
    pub const MAX_BYTES: usize = 200;

    pub fn parse(raw: &str) -> Result<ArticleKey, String> {
        at_most_bytes(raw, Self::MAX_BYTES)?;
        let key = required(raw)?;
        at_most_bytes(&key, Self::MAX_BYTES)?;
        no_control_chars(&key)?;
        Ok(ArticleKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The host's key for one submission, so a retried request is not stored twice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_BYTES: usize = 128;

    pub fn parse(raw: &str) -> Result<IdempotencyKey, String> {
        at_most_bytes(raw, Self::MAX_BYTES)?;
        let key = required(raw)?;
        at_most_bytes(&key, Self::MAX_BYTES)?;
        if !key.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            return Err("must contain only printable ASCII characters".to_owned());
        }
        Ok(IdempotencyKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The host's own id of a signed-in reader it has verified (an account id): what a reader's
/// trust rests on when the host gives it. Only its keyed hash is kept, and it never prints: its
/// `Debug` hides it, so it cannot reach a log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReaderId(String);

impl ReaderId {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<ReaderId, String> {
        let id = required(raw)?;
        if id.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        no_control_chars(&id)?;
        Ok(ReaderId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ReaderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReaderId(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_article_key_at_the_limit_passes_and_one_byte_more_fails() {
        assert!(ArticleKey::parse(&"a".repeat(ArticleKey::MAX_BYTES)).is_ok());
        assert_eq!(
            ArticleKey::parse(&"a".repeat(ArticleKey::MAX_BYTES + 1)),
            Err("must be at most 200 bytes".to_owned())
        );
        // The limit is the database's, so it counts bytes: 101 two-byte characters are too many.
        assert!(ArticleKey::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn an_article_key_with_a_nul_or_other_control_character_is_refused() {
        for key in ["a\0b", "a\u{7}b", "line\nbreak", "\u{0}"] {
            assert_eq!(
                ArticleKey::parse(key),
                Err("must not contain control characters".to_owned()),
                "{key:?}"
            );
        }
    }

    #[test]
    fn an_idempotency_key_must_be_short_printable_ascii() {
        assert!(IdempotencyKey::parse("order 42/retry-1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(129)),
            Err("must be at most 128 bytes".to_owned())
        );
        for key in ["clé", "a\tb", "a\0b"] {
            assert_eq!(
                IdempotencyKey::parse(key),
                Err("must contain only printable ASCII characters".to_owned()),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_reader_id_is_trimmed_bounded_and_never_printed() {
        let id = ReaderId::parse("  account-17 ").expect("valid");
        assert_eq!(id.as_str(), "account-17");
        assert_eq!(format!("{id:?}"), "ReaderId(…)");
        assert!(ReaderId::parse(&"a".repeat(ReaderId::MAX_CHARS)).is_ok());
        assert!(ReaderId::parse(&"a".repeat(ReaderId::MAX_CHARS + 1)).is_err());
        assert!(ReaderId::parse("acct\u{0}1").is_err());
        assert!(ReaderId::parse(" ").is_err());
    }
}
