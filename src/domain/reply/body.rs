//! The text of a reply: line breaks made `\n`, no other control characters, and a length
//! that fits every backend.

use super::checks::{at_most_chars, required, sent_within_chars};

/// The text of a reply, with line breaks as `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub const MAX_CHARS: usize = 10_000;
    /// The size of WordPress's `comment_content` limit, so replies can move between the two.
    pub const MAX_BYTES: usize = 65_525;

    pub fn parse(raw: &str) -> Result<CommentBody, String> {
        sent_within_chars(raw, Self::MAX_CHARS)?;
        let body = required(&raw.replace("\r\n", "\n").replace('\r', "\n"))?;
        if body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(
                "must not contain control characters other than newlines and tabs".to_owned(),
            );
        }
        at_most_chars(&body, Self::MAX_CHARS)?;
        Ok(CommentBody(body))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// A character is at most 4 bytes, so the character limit alone keeps a body within the byte
// limit; should either constant change, this stops the build rather than let it slip.
const _: () = assert!(CommentBody::MAX_CHARS * 4 <= CommentBody::MAX_BYTES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_exactly_the_limit_passes_and_one_more_character_fails() {
        let at_limit = "é".repeat(CommentBody::MAX_CHARS);
        assert!(CommentBody::parse(&at_limit).is_ok());
        assert_eq!(
            CommentBody::parse(&format!("{at_limit}é")),
            Err("must be at most 10000 characters".to_owned())
        );
    }

    #[test]
    fn a_body_of_four_byte_characters_at_the_limit_fits_the_byte_limit() -> Result<(), String> {
        let body = CommentBody::parse(&"🦀".repeat(CommentBody::MAX_CHARS))?;
        assert!(body.as_str().len() <= CommentBody::MAX_BYTES);
        Ok(())
    }

    #[test]
    fn body_line_endings_become_newlines_and_tabs_survive() -> Result<(), String> {
        let body = CommentBody::parse("  one\r\ntwo\rthree\n\tfour  \r\n")?;
        assert_eq!(body.as_str(), "one\ntwo\nthree\n\tfour");
        Ok(())
    }

    #[test]
    fn a_body_with_nul_or_other_control_characters_is_refused() {
        for body in [
            "a\0b",
            "bell\u{7}",
            "esc\u{1b}[2J",
            "\u{7f}",
            "form\u{c}feed",
        ] {
            assert_eq!(
                CommentBody::parse(body),
                Err("must not contain control characters other than newlines and tabs".to_owned()),
                "{body:?}"
            );
        }
    }
}
