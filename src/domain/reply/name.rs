//! The name an author signs with: shown to every reader, so it must look like what it is and
//! carry no contact details.

use super::checks::{at_most_chars, no_control_chars, required};
use crate::privacy;

/// The name an author signs with, shown to every reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorName(String);

impl AuthorName {
    /// Counted in characters, not bytes, so names in any script get the same room.
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<AuthorName, String> {
        let name = required(raw)?;
        at_most_chars(&name, Self::MAX_CHARS)?;
        no_control_chars(&name)?;
        // Overrides and isolates can make a name display as someone else's, or reorder the
        // text printed after it on the page.
        if name.chars().any(is_bidi_control) {
            return Err("must not contain bidirectional override or isolate characters".to_owned());
        }
        if name.chars().all(is_invisible) {
            return Err("must contain a visible character".to_owned());
        }
        // Every reader sees the name; the form promises the email is never shown.
        if privacy::mask_contacts(&name) != name {
            return Err(
                "must not contain an email address or phone number: the name is shown to every \
                 reader"
                    .to_owned(),
            );
        }
        Ok(AuthorName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing yet are not whitespace, so `trim` keeps them: a name made only
/// of these looks empty on the page.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_of_exactly_100_multibyte_characters_passes_and_101_fail() {
        assert!(AuthorName::parse(&"é".repeat(100)).is_ok());
        assert!(AuthorName::parse(&"🦀".repeat(100)).is_ok());
        assert_eq!(
            AuthorName::parse(&"é".repeat(101)),
            Err("must be at most 100 characters".to_owned())
        );
    }

    #[test]
    fn emoji_names_are_fine() -> Result<(), String> {
        for name in ["🦀 Ferris", "👨‍👩‍👧", "🏳️‍🌈", "Zoë 🌻"] {
            assert_eq!(AuthorName::parse(name)?.as_str(), name);
        }
        Ok(())
    }

    #[test]
    fn a_name_with_control_characters_is_refused() {
        for name in ["Jane\0", "Jane\nDoe", "Jane\u{1b}[31m", "Jane\u{85}Doe"] {
            assert_eq!(
                AuthorName::parse(name),
                Err("must not contain control characters".to_owned()),
                "{name:?}"
            );
        }
    }

    #[test]
    fn a_name_with_a_bidirectional_override_is_refused() {
        for name in ["Jane\u{202E}eoD", "\u{2066}admin\u{2069}", "\u{202A}x"] {
            assert!(AuthorName::parse(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn a_name_of_only_zero_width_characters_is_refused() {
        for name in ["\u{200B}", "\u{200B}\u{200D}\u{FEFF}", "\u{3164}"] {
            assert_eq!(
                AuthorName::parse(name),
                Err("must contain a visible character".to_owned()),
                "{name:?}"
            );
        }
        assert!(AuthorName::parse("Jane\u{200B}").is_ok());
    }

    #[test]
    fn a_name_with_an_email_address_or_phone_number_is_refused() {
        for name in [
            "jane@example.com",
            "Jane (jane.doe@example.org)",
            "Jane, call 020 7946 0958",
        ] {
            assert_eq!(
                AuthorName::parse(name).map_err(|e| e.starts_with("must not contain an email")),
                Err(true),
                "{name:?}"
            );
        }
        for name in [
            "Jane @ the library",
            "J. Doe, 1984",
            "Agent 007",
            "jane.example.com",
        ] {
            assert!(AuthorName::parse(name).is_ok(), "{name:?}");
        }
    }
}
